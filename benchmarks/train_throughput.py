"""Training throughput per recipe: steps/s and audio-seconds/s, spectral-only and GAN steps.

Runs the trainer's real step function (``ganvoice.train.step.train_step``) on random batches shaped like
the recipe's (no disk I/O, so it measures compute), after a few warm-up steps.
Prints JSON, then a Markdown table.

    python benchmarks/train_throughput.py --recipes fast seed-mlp --steps 10 --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ganvoice.train.config import load_recipe
from ganvoice.train.step import train_step
from ganvoice.train.trainer import DistInfo, build_state, make_setup, select_device

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def measure(name: str, phase: str, steps: int, warmup: int, device: torch.device, batch: int | None) -> dict:
    overrides = {"data": {"batch_size": batch}} if batch else {}
    recipe = load_recipe(RECIPES / f"{name}.toml", overrides)
    recipe.train.gan_start_step = 0 if phase == "gan" else 1 << 62
    state = build_state(recipe, device)
    setup = make_setup(recipe, state, device)
    generator = state.generator
    b, n = recipe.data.batch_size, recipe.data.segment_samples
    cond = torch.randn(b, generator.channels, n // generator.hop_length, device=device)
    real = 0.3 * torch.randn(b, n, device=device).clamp(-3, 3) / 3
    for _ in range(warmup):
        train_step(state, cond, real, setup)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(state, cond, real, setup)
    _sync(device)
    seconds = time.perf_counter() - start
    rate = steps / seconds
    sample_rate = recipe_sample_rate(recipe)
    return {
        "recipe": name,
        "phase": phase,
        "device": device.type,
        "batch_size": b,
        "segment_samples": n,
        "steps_per_s": round(rate, 3),
        "audio_seconds_per_s": round(rate * b * n / sample_rate, 2),
        "generator_params": sum(p.numel() for p in generator.parameters()),
        "discriminator_params": sum(p.numel() for p in state.discriminators.parameters())
        if state.discriminators is not None
        else 0,
    }


def recipe_sample_rate(recipe) -> int:
    from ganvoice.models.base import make_config

    return make_config(recipe.generator.variant, recipe.generator.config).spec.sample_rate


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def table(rows: list[dict]) -> str:
    head = "| recipe | phase | device | batch | steps/s | audio s/s | G params | D params |"
    lines = [head, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['recipe']} | {r['phase']} | {r['device']} | {r['batch_size']} | {r['steps_per_s']:.3f} | "
            f"{r['audio_seconds_per_s']:.2f} | {r['generator_params'] / 1e6:.2f} M | "
            f"{r['discriminator_params'] / 1e6:.2f} M |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=sorted(p.stem for p in RECIPES.glob("*.toml")))
    parser.add_argument("--phases", nargs="+", default=["spectral", "gan"], choices=["spectral", "gan"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None, help="override the recipes' batch size")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as the trainer does on the CPU
    device = select_device(args.device, DistInfo())
    rows = []
    for name in args.recipes:
        recipe = load_recipe(RECIPES / f"{name}.toml")
        for phase in args.phases:
            noise = recipe.generator.config.get("conditioning", "") == "noise" or name == "seed-mlp"
            if phase == "spectral" and noise:
                continue  # unconditional recipes have no spectral phase
            rows.append(measure(name, phase, args.steps, args.warmup, device, args.batch_size))
            print(json.dumps(rows[-1]), flush=True)
    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()},
        "torch": torch.__version__,
        "results": rows,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
