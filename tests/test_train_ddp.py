"""Plain DDP with 2 gloo processes on the CPU: both ranks finish in step with identical weights."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from synthetic_corpus import write_corpus

from ganvoice.train import checkpoint as ckpt
from ganvoice.train.config import load_recipe
from ganvoice.train.trainer import RunOptions, run_training

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
WORLD = 2
OVERRIDES = {
    "generator": {"config": {"dim": 16, "intermediate_dim": 32, "num_blocks": 1, "head_n_fft": 512}},
    "discriminators": {
        "mpd": {"periods": [2], "channels": [4, 8]},
        "mrd": {"resolutions": [[256, 64, 256]], "channels": 4, "layers": 2},
    },
    "data": {"segment_samples": 2048, "batch_size": 2, "num_workers": 0, "val_clips": 2},
    "train": {"max_steps": 3, "gan_start_step": 1, "val_every": 2, "tensorboard": False},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, manifest: str, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
    )
    recipe = load_recipe(RECIPES / "fast.toml", OVERRIDES)
    result = run_training(
        recipe, RunOptions(data=Path(manifest), out=Path(out), progress=False, device="cpu")
    )
    weights = {
        "generator": result.state.generator.state_dict(),
        "discriminators": result.state.discriminators.state_dict(),
        "step": result.step,
        "losses": result.history,
    }
    torch.save(weights, Path(out).parent / f"rank{rank}.pt")


def test_ddp_two_gloo_processes(tmp_path):
    manifest = write_corpus(tmp_path / "corpus")
    out = tmp_path / "run"
    mp.spawn(_worker, args=(_free_port(), str(manifest), str(out)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    assert ranks[0]["step"] == ranks[1]["step"] == 3
    for part in ("generator", "discriminators"):
        for key, value in ranks[0][part].items():
            torch.testing.assert_close(value, ranks[1][part][key], rtol=0, atol=0, msg=f"{part}.{key}")
    # the ranks saw different data (their own shard) but ended with the same weights
    assert ranks[0]["losses"][0]["mel"] != ranks[1]["losses"][0]["mel"]
    assert ckpt.latest_checkpoint(out).name == "step_000000003.pt"
