"""Build a corpus folder: resampled mono 16-bit clips under ``clips/`` and ``manifest.jsonl``.

``build_corpus`` lists every source's clips first (so a missing package fails before any work), caps
each source with a seeded subset, then converts each clip once: a clip whose wav already exists at the
right sample rate is reused, so re-running is cheap and idempotent. Leading and trailing silence
longer than a short margin is trimmed (pauses inside a clip are kept) and a clip that would clip is
scaled down. The manifest is rewritten atomically at the end; the split of a clip depends only on
its id and the seed.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ganvoice.audio import audio_info, save_audio
from ganvoice.corpus.errors import SourceError
from ganvoice.corpus.manifest import MANIFEST_NAME, SPLITS, ManifestEntry, write_manifest
from ganvoice.corpus.sources import DEFAULT_SOURCES, Clip, source_clips
from ganvoice.corpus.split import assign_split, seeded_subset
from ganvoice.corpus.synth import load_sentences
from ganvoice.errors import AudioError

CLIPS_DIR = "clips"
CLIP_SUFFIX = ".wav"
#: Default cap on each synthetic source, so that synthetic speech stays a minority of the corpus.
DEFAULT_MAX_SYNTHETIC = 300
SECONDS_PER_HOUR = 3600.0
#: Clips louder than this (decoded Vorbis overshoots 1.0) are scaled down to it, not clipped.
PEAK_LIMIT = 0.99


@dataclass(frozen=True)
class TrimConfig:
    """Silence trimming at both ends of a clip (pauses inside it are kept).

    A frame is sound when its power is above both ``top_db`` below the loudest frame and
    ``floor_margin_db`` above the noise floor (the ``floor_percentile`` of frame powers), the latter
    capped at ``min_dynamic_db`` below the loudest frame (so that noisy clips keep their speech).
    ``keep_seconds`` of the silence next to the sound is kept; clips shorter than ``min_seconds``
    after trimming (or digital silence throughout) are dropped.
    """

    top_db: float = 45.0
    floor_margin_db: float = 10.0
    floor_percentile: float = 10.0
    min_dynamic_db: float = 10.0
    frame_seconds: float = 0.02
    keep_seconds: float = 0.2
    min_seconds: float = 0.2


@dataclass(frozen=True)
class CorpusConfig:
    """What ``ganvoice corpus build`` was asked for."""

    out: Path
    sources: tuple[str, ...] = DEFAULT_SOURCES
    sample_rate: int = 22050
    val_fraction: float = 0.05
    seed: int = 0
    max_clips: int | None = None
    max_synthetic: int = DEFAULT_MAX_SYNTHETIC
    trim: TrimConfig = field(default_factory=TrimConfig)
    progress: bool = True


@dataclass
class BuildResult:
    """The manifest entries written, and what happened to the clips on the way."""

    manifest: Path
    entries: list[ManifestEntry]
    converted: int = 0
    reused: int = 0
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (clip id, reason)


def trim_silence(audio: np.ndarray, sample_rate: int, trim: TrimConfig) -> np.ndarray:
    """Cut leading and trailing silence of float32 ``[N]`` down to ``trim.keep_seconds``; inside untouched.

    See :class:`TrimConfig` for what counts as silence. Returns an empty array for digital silence.
    """
    hop = max(1, round(trim.frame_seconds * sample_rate))
    frames = len(audio) // hop
    if frames == 0:
        return audio
    power = np.mean(np.square(audio[: frames * hop].reshape(frames, hop), dtype=np.float64), axis=1)
    if power.max() <= 0.0:
        return audio[:0]
    level_db = 10.0 * np.log10(np.maximum(power, np.finfo(np.float64).tiny))
    peak_db = level_db.max()
    floor_db = np.percentile(level_db, trim.floor_percentile) + trim.floor_margin_db
    threshold_db = max(peak_db - trim.top_db, min(floor_db, peak_db - trim.min_dynamic_db))
    loud = np.flatnonzero(level_db >= threshold_db)
    keep = round(trim.keep_seconds * sample_rate)
    start = max(0, loud[0] * hop - keep)
    stop = min(len(audio), (loud[-1] + 1) * hop + keep)
    return audio[start:stop]


def plan_clips(config: CorpusConfig, sentences: list[str] | None = None) -> list[Clip]:
    """Every clip to build, after the per-source caps; raises SourceError before any work is done."""
    sentences = load_sentences() if sentences is None else sentences
    planned: list[Clip] = []
    seen: dict[str, str] = {}
    for text in dict.fromkeys(config.sources):
        source, clips = source_clips(text, sentences)
        limit = config.max_clips
        if source.synthetic:
            limit = config.max_synthetic if limit is None else min(limit, config.max_synthetic)
        chosen = seeded_subset([clip.clip_id for clip in clips], limit, config.seed)
        for clip in clips:
            if clip.clip_id not in chosen:
                continue
            if clip.clip_id in seen:
                first = seen[clip.clip_id]
                raise SourceError(f"sources {first!r} and {text!r} both give clip {clip.clip_id}")
            seen[clip.clip_id] = text
            planned.append(clip)
    return planned


def _existing_seconds(path: Path, sample_rate: int) -> float | None:
    """Length of a clip already built at ``sample_rate``; None when it must be (re)built."""
    if not path.is_file():
        return None
    try:
        info = audio_info(path)
    except AudioError:
        return None
    return info.seconds if info.sample_rate == sample_rate and info.frames > 0 else None


def limit_peak(audio: np.ndarray, limit: float = PEAK_LIMIT) -> np.ndarray:
    """``audio`` scaled down so that its peak is at most ``limit`` (unchanged when already below)."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return audio * np.float32(limit / peak) if peak > limit else audio


def _convert(clip: Clip, path: Path, config: CorpusConfig) -> float:
    """Render, trim and save one clip; its length in seconds. Raises AudioError when it is unusable."""
    audio = limit_peak(trim_silence(clip.render(config.sample_rate), config.sample_rate, config.trim))
    seconds = len(audio) / config.sample_rate
    if seconds < config.trim.min_seconds:
        raise AudioError(f"only {seconds:.2f} s of sound after trimming silence")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_audio(path, audio, config.sample_rate)
    return seconds


def build_corpus(config: CorpusConfig, sentences: list[str] | None = None) -> BuildResult:
    """Build (or update) the corpus in ``config.out``; see the module docstring."""
    clips = plan_clips(config, sentences)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    result = BuildResult(manifest=out / MANIFEST_NAME, entries=[])
    for clip in tqdm(clips, desc="corpus", unit="clip", disable=not config.progress, dynamic_ncols=True):
        rel = f"{CLIPS_DIR}/{clip.clip_id}{CLIP_SUFFIX}"
        seconds = _existing_seconds(out / rel, config.sample_rate)
        if seconds is not None:
            result.reused += 1
        else:
            try:
                seconds = _convert(clip, out / rel, config)
            except AudioError as exc:
                result.dropped.append((clip.clip_id, str(exc).splitlines()[0]))
                continue
            result.converted += 1
        split = assign_split(clip.clip_id, config.seed, config.val_fraction, clip.split)
        entry = ManifestEntry(
            rel, round(seconds, 6), config.sample_rate, clip.source, clip.speaker, split, clip.text
        )
        result.entries.append(entry)
    result.entries.sort(key=lambda entry: entry.path)
    write_manifest(result.manifest, result.entries)
    return result


def summary_rows(entries: list[ManifestEntry]) -> list[tuple[str, str, int, float]]:
    """(source, split, clips, hours) for every source and split present, then a total per split."""
    clips: dict[tuple[str, str], int] = defaultdict(int)
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    for entry in entries:
        for key in ((entry.source, entry.split), ("total", entry.split)):
            clips[key] += 1
            seconds[key] += entry.seconds
    order = {split: index for index, split in enumerate(SPLITS)}
    keys = sorted(clips, key=lambda key: (key[0] == "total", key[0], order[key[1]]))
    return [(src, split, clips[src, split], seconds[src, split] / SECONDS_PER_HOUR) for src, split in keys]


def summary_table(entries: list[ManifestEntry]) -> str:
    """A Markdown table of clips and hours per source and split."""
    lines = ["| source | split | clips | hours |", "| --- | --- | ---: | ---: |"]
    lines += [f"| {src} | {split} | {n} | {hours:.3f} |" for src, split, n, hours in summary_rows(entries)]
    return "\n".join(lines)


def relative_to_cwd(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
