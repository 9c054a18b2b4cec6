"""``ganvoice eval``: objective quality of an exported model on real speech, next to Griffin-Lim.

The model runs through ONNX Runtime twice per clip: streaming (``--chunk-frames`` frames per call, the
realtime engine's default of one frame) and offline. Griffin-Lim (32 iterations) on the same mel is the floor.
A non-intrusive MOS (DNSMOS overall, ``speechmos``) scores each system and the recordings themselves, over
the clips joined into ~10 s items (its absolute level depends on the recording conditions: compare rows).
"""

from __future__ import annotations

import importlib.util
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from ganvoice.audio import AUDIO_SUFFIXES, load_audio
from ganvoice.corpus.manifest import MANIFEST_NAME, manifest_file, read_manifest
from ganvoice.errors import GanvoiceError
from ganvoice.fileio import atomic_write_json
from ganvoice.mel import MelAnalyzer
from ganvoice.metrics import all_metrics, dnsmos, griffin_lim
from ganvoice.onnxgraph import OnnxGenerator

SYNTHETIC_SOURCES = ("espeak", "flite", "festival")
METRICS = ("pesq_wb", "stoi", "mel_l1", "mrstft")
METRIC_PACKAGES = ("pesq", "pystoi", "librosa")
MOS_PACKAGE = "speechmos"
RECORDINGS = "recordings"


@dataclass(frozen=True)
class EvalClip:
    path: Path
    source: str


def select_clips(data: str, split: str, max_clips: int, include_synthetic: bool = False) -> list[EvalClip]:
    """Clips of ``split`` from a manifest (real speech only unless asked), or every audio file of a folder.

    Sources are interleaved so a small ``max_clips`` still covers every source; the choice is stable.
    """
    root = Path(data)
    if root.is_dir() and not (root / MANIFEST_NAME).is_file():
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        clips = [EvalClip(p, root.name) for p in files]
    else:
        manifest = manifest_file(root)
        entries = [e for e in read_manifest(manifest) if e.split == split]
        if not include_synthetic:
            entries = [e for e in entries if e.source not in SYNTHETIC_SOURCES]
        by_source: dict[str, list[EvalClip]] = defaultdict(list)
        for entry in sorted(entries, key=lambda e: e.path):
            by_source[entry.source].append(EvalClip(manifest.parent / entry.path, entry.source))
        clips = [clip for group in _interleave(list(by_source.values())) for clip in group]
    if not clips:
        raise GanvoiceError(f"no evaluation clips in {data} (split {split!r})")
    return clips[:max_clips]


def require_metric_packages(mos: bool = True) -> None:
    """The metrics come from the [dev] extra: say which package is missing before any work is done."""
    for package in METRIC_PACKAGES + ((MOS_PACKAGE,) if mos else ()):
        if importlib.util.find_spec(package) is None:
            raise GanvoiceError(
                f"'ganvoice eval' needs {package}; install it with: pip install 'ganvoice[dev]'"
            )


def _interleave(groups: list[list[EvalClip]]) -> list[list[EvalClip]]:
    longest = max((len(g) for g in groups), default=0)
    return [[g[i] for g in groups if i < len(g)] for i in range(longest)]


def evaluate_model(
    model: str,
    clips: list[EvalClip],
    chunk_frames: int = 1,
    max_seconds: float = 6.0,
    baseline: bool = True,
    mos: bool = False,
    offline: bool = True,
) -> dict:
    """Per-clip and mean metrics for the streaming and offline model (and Griffin-Lim); with ``mos`` the
    DNSMOS of each system and of the recordings (``means["recordings"]``)."""
    generator = OnnxGenerator(model)
    meta = generator.metadata
    if meta.conditioning != "mel" or meta.mel is None:
        raise GanvoiceError(
            f"{model}: eval needs a mel-conditioned model (this one is {meta.conditioning!r})"
        )
    analyzer = MelAnalyzer(meta.mel)
    per_clip, signals = [], defaultdict(list)
    for clip in tqdm(clips, desc="eval", unit="clip"):
        audio = load_audio(clip.path, meta.sample_rate)[: int(max_seconds * meta.sample_rate)]
        mel = analyzer(audio)
        reference = audio[: mel.shape[1] * meta.hop_length]
        if mel.shape[1] < 8:
            continue
        outputs = {"streaming": generator.chunked(mel[None], [chunk_frames])[0]}
        if offline:
            outputs["offline"] = generator.offline(mel[None])[0]
        if baseline:
            outputs["griffin_lim"] = griffin_lim(mel, meta.mel)
        row = {"clip": str(clip.path), "source": clip.source}
        for system, estimate in outputs.items():
            row[system] = all_metrics(reference, estimate, meta.mel)
            signals[system].append(estimate)
        signals[RECORDINGS].append(reference)
        per_clip.append(row)
    if not per_clip:
        raise GanvoiceError("every evaluation clip was too short")
    systems = [s for s in ("streaming", "offline", "griffin_lim") if s in per_clip[0]]
    means = {s: {m: _nanmean([row[s][m] for row in per_clip]) for m in METRICS} for s in systems}
    if mos:
        for system in (*systems, RECORDINGS):
            means.setdefault(system, {})["dnsmos"] = dnsmos(signals[system], meta.sample_rate)
    return {
        "model": str(model),
        "clips": len(per_clip),
        "chunk_frames": chunk_frames,
        "means": means,
        "per_clip": per_clip,
    }


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def markdown_table(result: dict) -> str:
    columns = [*METRICS, "dnsmos"]
    lines = [
        "| system | PESQ (wb) ↑ | STOI ↑ | mel L1 ↓ | MR-STFT ↓ | DNSMOS ↑ |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for system, values in result["means"].items():
        cells = " | ".join(f"{values[m]:.3f}" if m in values else "–" for m in columns)
        lines.append(f"| {system} | {cells} |")
    return "\n".join(lines)


@click.command("eval")
@click.option("--model", required=True, type=click.Path(), help="Exported ONNX model.")
@click.option(
    "--data", required=True, type=click.Path(), help="Corpus folder, manifest.jsonl or audio folder."
)
@click.option("--split", default="val", show_default=True, help="Manifest split to evaluate.")
@click.option("--max-clips", default=40, show_default=True, type=click.IntRange(1))
@click.option("--max-seconds", default=6.0, show_default=True, type=float, help="Cut each clip to this.")
@click.option("--chunk-frames", default=1, show_default=True, type=click.IntRange(1), help="Streaming chunk.")
@click.option("--include-synthetic", is_flag=True, help="Also evaluate espeak/flite/festival clips.")
@click.option("--no-griffin-lim", is_flag=True, help="Skip the Griffin-Lim baseline.")
@click.option("--no-mos", is_flag=True, help="Skip DNSMOS (speechmos).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the results as JSON.")
def evaluate(
    model,
    data,
    split,
    max_clips,
    max_seconds,
    chunk_frames,
    include_synthetic,
    no_griffin_lim,
    no_mos,
    json_out,
):
    """PESQ, STOI, mel L1, MR-STFT distance and DNSMOS of MODEL (streaming, offline) next to Griffin-Lim."""
    require_metric_packages(mos=not no_mos)
    clips = select_clips(data, split, max_clips, include_synthetic)
    result = evaluate_model(
        model, clips, chunk_frames, max_seconds, baseline=not no_griffin_lim, mos=not no_mos
    )
    result["split"] = split
    click.echo(f"{result['clips']} clips of {data} (split {split}), streaming chunk {chunk_frames} frame(s)")
    click.echo(markdown_table(result))
    if json_out:
        atomic_write_json(json_out, result)
