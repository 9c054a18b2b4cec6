"""Quality per compute: what lifts a model above Griffin-Lim on speech it never heard, and at what speed.

Rows, side by side in one run (JSON + Markdown + PNG under ``--out``), each evaluated by ``ganvoice eval``'s
code streaming one frame per call on the held-out ``test`` split (klettres en/en_GB) and on ``val``, next to
Griffin-Lim-32 on the same clips, with the model's offline speed on one ONNX Runtime thread:

- ``consistency``: one trained checkpoint exported with K unrolled consistency layers x L frames of
  lookahead each, N NNLS steps on the magnitude and momentum M (``KxLnNmM``; weightless: export-time);
- ``curve``: the checkpoints of a run folder, placed at the CPU minutes they took (from ``log.jsonl``);
  pass ``--curve`` once per run folder to put recipes trained for equal minutes side by side.

    python benchmarks/quality_study.py --checkpoint runs/fast-phase/checkpoints/best.pt \\
        --consistency 0x0 1x1 2x1 1x2 --curve runs/fast-phase --data data/corpus \\
        --out benchmarks/results/quality
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganvoice.evaluate import RECORDINGS, evaluate_model, select_clips
from ganvoice.export.checkpoint import generator_from_checkpoint
from ganvoice.export.onnx_export import export_generator
from ganvoice.fileio import atomic_write_text
from ganvoice.onnxgraph import OnnxGenerator
from ganvoice.train import checkpoint as ckpt

SPLITS = ("test", "val")
METRICS = ("pesq_wb", "stoi", "mel_l1", "dnsmos")
SPEED_SECONDS = 10.0


@dataclass
class Row:
    kind: str  # baseline | consistency | curve
    name: str
    cpu_minutes: float | None
    delay_ms: float
    xrt: float
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # split -> metric -> value


def offline_xrt(path: Path, seconds: float = SPEED_SECONDS, repeats: int = 3) -> float:
    """Audio seconds per wall second, best of ``repeats``, one ORT thread, ``seconds`` of log-mel."""
    graph = OnnxGenerator(str(path))
    meta = graph.metadata
    frames = int(seconds * meta.sample_rate / meta.hop_length)
    mel = np.random.default_rng(0).normal(-5.0, 2.0, (1, meta.channels, frames)).astype(np.float32)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        graph.offline(mel)
        best = min(best, time.perf_counter() - start)
    return frames * meta.hop_length / meta.sample_rate / best


def evaluate_row(row: Row, model: Path, clips: dict, max_seconds: float, mos: bool) -> Row:
    for split, chosen in clips.items():
        result = evaluate_model(str(model), chosen, 1, max_seconds, baseline=False, mos=mos, offline=False)
        row.scores[split] = {m: result["means"]["streaming"].get(m, float("nan")) for m in METRICS}
    return row


def baseline_rows(clips: dict, model: Path, max_seconds: float, mos: bool) -> list[Row]:
    """Griffin-Lim-32 and the recordings themselves (DNSMOS only) on the same clips."""
    griffin, recordings = (
        Row("baseline", "griffin-lim-32", None, 0.0, 0.0),
        Row("baseline", RECORDINGS, None, 0, 0),
    )
    for split, chosen in clips.items():
        result = evaluate_model(str(model), chosen, 1, max_seconds, baseline=True, mos=mos, offline=False)
        griffin.scores[split] = {m: result["means"]["griffin_lim"].get(m, float("nan")) for m in METRICS}
        recordings.scores[split] = {"dnsmos": result["means"].get(RECORDINGS, {}).get("dnsmos", float("nan"))}
    return [griffin, recordings]


def export_row(
    kind: str, name: str, generator, folder: Path, cpu_minutes: float | None, step: int
) -> tuple[Row, Path]:
    path = folder / f"{kind}-{name}.onnx"
    meta = export_generator(generator, path, training_step=step)
    return Row(
        kind, name, cpu_minutes, meta.delay_samples * 1000.0 / meta.sample_rate, offline_xrt(path)
    ), path


def cpu_minutes_by_step(run: Path) -> dict[int, float]:
    """``step -> minutes`` of one-thread training: the wall-clock span of each training process's logged
    steps (TensorBoard event files, one per process, in order), added up over resumes."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    minutes, offset = {}, 0.0
    files = sorted(
        (run / "tensorboard").glob("events.out.tfevents.*"), key=lambda p: float(p.name.split(".")[3])
    )
    for path in files:
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        if "train/steps_per_s" not in events.Tags()["scalars"]:
            continue
        points = events.Scalars("train/steps_per_s")
        for point in points:
            minutes[point.step] = offset + (point.wall_time - points[0].wall_time) / 60.0
        offset = minutes[points[-1].step]
    return minutes


def curve_rows(
    run: Path, folder: Path, clips: dict, max_seconds: float, mos: bool, options: dict
) -> list[Row]:
    """Every step checkpoint of ``run``, exported with the same weightless ``options``, at its CPU minutes."""
    minutes = cpu_minutes_by_step(run)
    rows = []
    for path in ckpt.step_checkpoints(run):
        generator, step = generator_from_checkpoint(str(path), overrides=options)
        nearest = min(minutes, key=lambda s: abs(s - step)) if minutes else None
        cpu = minutes[nearest] * step / nearest if nearest else None
        row, model = export_row("curve", f"{run.name}@{step}", generator, folder, cpu, step)
        rows.append(evaluate_row(row, model, clips, max_seconds, mos))
    return rows


def markdown(rows: list[Row]) -> str:
    head = "| kind | row | CPU min | delay ms | offline xRT | " + " | ".join(
        f"{split} {m}" for split in SPLITS for m in METRICS
    )
    lines = [head + " |", "| --- | --- | ---: | ---: | ---: | " + " | ".join(["---:"] * 8) + " |"]
    for row in rows:
        cells = [f"{row.scores.get(split, {}).get(m, float('nan')):.3f}" for split in SPLITS for m in METRICS]
        cpu = f"{row.cpu_minutes:.0f}" if row.cpu_minutes is not None else "–"
        speed = f"{row.xrt:.0f}" if row.xrt else "–"
        lines.append(
            f"| {row.kind} | {row.name} | {cpu} | {row.delay_ms:.1f} | {speed} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines).replace("nan", "–")


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    griffin = next((r for r in rows if r.name == "griffin-lim-32"), None)
    for axis, split in zip(axes, SPLITS):
        curve = sorted((r for r in rows if r.kind == "curve"), key=lambda r: r.cpu_minutes or 0)
        if curve:
            axis.plot(
                [r.cpu_minutes for r in curve],
                [r.scores[split]["pesq_wb"] for r in curve],
                "o-",
                label="training curve",
            )
        # consistency rows alone (one network, no minutes of their own) are placed at their delay
        at_delay = not curve
        for r in rows:
            if r.kind == "consistency":
                x = r.delay_ms if at_delay else (r.cpu_minutes or 0)
                axis.scatter([x], [r.scores[split]["pesq_wb"]], label=f"{r.kind} {r.name}")
        if griffin:
            axis.axhline(griffin.scores[split]["pesq_wb"], color="k", linestyle="--", label="Griffin-Lim-32")
        xlabel = "model delay (ms)" if at_delay else "CPU minutes (1 thread)"
        axis.set(title=f"PESQ-wb on {split} (streamed one frame per call)", xlabel=xlabel)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


ROW_OPTIONS = re.compile(r"^(\d+)x(\d+)(?:n(\d+))?(?:m([\d.]+))?$")


def spectrograms(clip: Path, models: list[tuple[str, Path]], path: Path, seconds: float) -> None:
    """Log-mel images (and wavs) of one clip: the recording, Griffin-Lim-32, each model streamed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganvoice.audio import load_audio, save_audio
    from ganvoice.mel import MelAnalyzer
    from ganvoice.metrics import griffin_lim

    spec = OnnxGenerator(str(models[0][1])).metadata.mel
    analyzer = MelAnalyzer(spec)
    audio = load_audio(clip, spec.sample_rate)[: int(seconds * spec.sample_rate)]
    mel = analyzer(audio)
    renders = {"recording": audio, "griffin-lim-32": griffin_lim(mel, spec)}
    for name, model in models:
        renders[name] = OnnxGenerator(str(model)).chunked(mel[None], [1])[0]
    fig, axes = plt.subplots(len(renders), 1, figsize=(9, 2.2 * len(renders)), sharex=True)
    for axis, (name, signal) in zip(axes, renders.items()):
        axis.imshow(analyzer(signal), origin="lower", aspect="auto", vmin=-11.5, vmax=2.0, cmap="magma")
        axis.set_ylabel(name, fontsize=8)
        save_audio(path.with_name(f"{path.stem}-{name}.wav"), signal, spec.sample_rate)
    axes[-1].set_xlabel(f"mel frames ({clip.name})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_options(text: str) -> dict:
    """``"KxL[nN][mM]"`` -> K consistency layers of L lookahead frames, N NNLS steps, momentum M."""
    match = ROW_OPTIONS.match(text.lower())
    if not match:
        raise SystemExit(f"--consistency wants KxL[nN][mM] (e.g. 3x1n8m0.8), not {text!r}")
    layers, lookahead, nnls, momentum = match.groups()
    return {
        "consistency_iterations": int(layers),
        "consistency_lookahead": int(lookahead),
        "nnls_iterations": int(nnls or 0),
        "consistency_momentum": float(momentum or 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, help="For the consistency rows.")
    parser.add_argument("--consistency", nargs="*", default=[], metavar="KxL[nN][mM]")
    parser.add_argument("--curve", type=Path, nargs="*", default=[], help="Run folders: their checkpoints.")
    parser.add_argument(
        "--curve-options", default="2x1n8", metavar="KxL[nN][mM]", help="For every curve row."
    )
    parser.add_argument("--clips", type=int, default=40, help="Clips per split (the test split has 94).")
    parser.add_argument("--max-seconds", type=float, default=4.0)
    parser.add_argument("--no-mos", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    models = args.out / "models"
    models.mkdir(exist_ok=True)
    clips = {split: select_clips(str(args.data), split, args.clips) for split in SPLITS}
    mos = not args.no_mos
    rows: list[Row] = []
    for text in args.consistency:
        generator, step = generator_from_checkpoint(str(args.checkpoint), overrides=parse_options(text))
        row, model = export_row("consistency", text, generator, models, None, step)
        rows.append(evaluate_row(row, model, clips, args.max_seconds, mos))
        print(markdown(rows[-1:]), flush=True)
    for run in args.curve:
        rows += curve_rows(run, models, clips, args.max_seconds, mos, parse_options(args.curve_options))
    reference_model = next(models.glob("*.onnx"))
    rows = baseline_rows(clips, reference_model, args.max_seconds, mos) + rows
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "threads": 1},
        "clips": {split: len(chosen) for split, chosen in clips.items()},
        "max_seconds": args.max_seconds,
        "rows": [row.__dict__ for row in rows],
    }
    models_to_show = [
        (row.name, models / f"{row.kind}-{row.name}.onnx") for row in rows if row.kind == "consistency"
    ]
    if models_to_show:
        spectrograms(
            clips["test"][0].path, models_to_show[-2:], args.out / "spectrograms.png", args.max_seconds
        )
    atomic_write_text(args.out / "quality.json", json.dumps(report, indent=2))
    atomic_write_text(args.out / "quality.md", markdown(rows) + "\n")
    plot(rows, args.out / "quality.png")
    print(markdown(rows))


if __name__ == "__main__":
    main()
