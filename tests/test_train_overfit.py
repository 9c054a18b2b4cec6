"""A tiny overfit: one clip, a few hundred spectral-only steps on the CPU, mel L1 at least halves."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from synthetic_corpus import write_corpus

from ganvoice.train.config import load_recipe
from ganvoice.train.trainer import RunOptions, run_training

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
STEPS = 300


def test_one_clip_overfits(tmp_path):
    torch.set_num_threads(1)
    manifest = write_corpus(tmp_path / "corpus", [("chirp", 0.6, "train", "a")])
    row = json.loads(manifest.read_text())
    row["split"] = "val"  # the same clip validates
    manifest.write_text(manifest.read_text() + json.dumps(row) + "\n")
    recipe = load_recipe(
        RECIPES / "fast.toml",
        {
            "generator": {"config": {"dim": 32, "intermediate_dim": 64, "num_blocks": 2}},
            "data": {"segment_samples": 4096, "batch_size": 2, "num_workers": 0, "augment": False},
            "optim": {"lr_g": 5e-3},
            "train": {
                "max_steps": STEPS,
                "gan_start_step": STEPS,  # spectral only: mel L1 + MR-STFT
                "val_every": STEPS // 6,
                "log_every": STEPS // 6,
                "tensorboard": False,
            },
        },
    )
    result = run_training(recipe, RunOptions(data=manifest, out=tmp_path / "run", progress=False))
    mel = [h["mel"] for h in result.history]
    first, last = mel[0], sum(mel[-10:]) / 10
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    curve = [(row["step"], round(row["val/mel_l1"], 3)) for row in log if "val/mel_l1" in row]
    print(f"train mel L1 {first:.3f} -> {last:.3f}; validation curve {curve}")
    assert last <= 0.5 * first
    assert curve[-1][1] <= 0.5 * mel[0]
