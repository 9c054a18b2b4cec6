"""A tiny synthetic corpus (sines, chirps, noise; 22050 Hz 16-bit wav) + manifest, for training tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 22050


def clip_audio(kind: str, seconds: float, seed: int) -> np.ndarray:
    """One test signal ``[N]`` float64 in [-1, 1]: ``sine``, ``chirp`` or ``noise``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    if kind == "sine":
        f0 = rng.uniform(120.0, 400.0)
        audio = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    elif kind == "chirp":
        f0, f1 = rng.uniform(100.0, 300.0), rng.uniform(1000.0, 4000.0)
        audio = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))
    else:
        audio = rng.standard_normal(len(t))
    return 0.5 * audio / np.max(np.abs(audio))


def write_corpus(
    folder: Path,
    clips: list[tuple[str, float, str, str]] | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> Path:
    """Write wavs + ``manifest.jsonl`` under ``folder``; ``clips`` = (kind, seconds, split, source).

    Returns the manifest path.
    """
    clips = clips or [
        ("sine", 1.0, "train", "tones"),
        ("chirp", 1.0, "train", "tones"),
        ("noise", 0.8, "train", "noise"),
        ("sine", 0.6, "val", "tones"),
        ("chirp", 0.6, "val", "tones"),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "clips").mkdir(exist_ok=True)
    lines = []
    for i, (kind, seconds, split, source) in enumerate(clips):
        rel = f"clips/{i:03d}_{kind}.wav"
        audio = clip_audio(kind, seconds, seed=i)
        sf.write(folder / rel, audio, sample_rate, subtype="PCM_16")
        row = dict(
            path=rel,
            seconds=len(audio) / sample_rate,
            sample_rate=sample_rate,
            source=source,
            speaker=f"{source}/{kind}",
            split=split,
            text="",
        )
        lines.append(json.dumps(row))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest
