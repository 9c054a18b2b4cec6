"""``ganvoice train`` (also ``ganvoice-train``): train a generator from a TOML recipe."""

from __future__ import annotations

from pathlib import Path

import click

from ganvoice.train.config import deep_merge, load_recipe, parse_assignment
from ganvoice.train.trainer import RunOptions, run_training


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Recipe TOML.")
@click.option(
    "--data", required=True, type=click.Path(path_type=Path), help="manifest.jsonl (or its folder)."
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder (checkpoints, logs).")
@click.option("--resume", is_flag=True, help="Continue from the latest checkpoint in --out (if any).")
@click.option("--max-steps", type=int, default=None, help="Train until this step (overrides the recipe).")
@click.option("--init", type=click.Path(path_type=Path), default=None, help="Fine-tune from a checkpoint.")
@click.option(
    "--continue",
    "continue_from",
    type=click.Path(path_type=Path),
    default=None,
    help="Go on from a (compact) checkpoint's step and LR schedule, e.g. the one committed to the repo.",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option(
    "--set", "assignments", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a recipe value (TOML)."
)
@click.option("--progress/--no-progress", default=True, help="Show the progress bar.")
def train(
    config_path: Path,
    data: Path,
    out: Path,
    resume: bool,
    max_steps: int | None,
    init: Path | None,
    continue_from: Path | None,
    device: str,
    threads: int | None,
    assignments: tuple[str, ...],
    progress: bool,
) -> None:
    """Train a generator from a recipe (see recipes/*.toml); Ctrl-C saves a checkpoint and exits."""
    overrides: dict = {}
    for text in assignments:
        overrides = deep_merge(overrides, parse_assignment(text))
    if max_steps is not None:
        overrides = deep_merge(overrides, {"train": {"max_steps": max_steps}})
    recipe = load_recipe(config_path, overrides)
    if init is not None and continue_from is not None:
        raise click.UsageError("--init starts a new schedule, --continue goes on with one: choose one")
    options = RunOptions(
        data=data,
        out=out,
        resume=resume,
        init=init,
        continue_from=continue_from,
        device=device,
        progress=progress,
        threads=threads,
    )
    result = run_training(recipe, options)
    click.echo(f"step {result.step} ({result.stopped}); checkpoint: {result.checkpoint}")
