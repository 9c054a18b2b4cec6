"""Training data: the corpus manifest, random speech segments with their mels, and augmentation.

The manifest is ``DIR/manifest.jsonl`` (:mod:`ganvoice.corpus.manifest`, read leniently: only ``path``,
``seconds`` and ``sample_rate`` are required, paths are resolved against ``DIR``).

Every random choice (which segment of a clip, which augmentation) comes from a fresh
``numpy.random.default_rng([seed, draw, clip])`` where ``draw`` is the epoch (plain indexing) or a global
sample number (the trainer's :class:`StepSampler`). Nothing depends on shared RNG state, so the data are the
same with any number of DataLoader workers and after an exact resume.

Mel edges: a segment's mel is computed from the segment plus ``spec.padding`` real samples on each side
(the analysis window of its first and last frames), falling back to reflect padding only at the clip's
own ends. So frame ``i`` of a segment equals frame ``offset / hop + i`` of the whole clip when the
offset is a multiple of the hop.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset, Sampler

from ganvoice.corpus.manifest import ManifestEntry, read_manifest
from ganvoice.errors import AudioError, GanvoiceError, SpecMismatchError
from ganvoice.mel import MelAnalyzer, MelSpec


@dataclass
class AugmentConfig:
    """Per-segment augmentation (training split only); each effect fires with its own probability.

    - ``lowpass``: zero-phase low-pass with a cutoff drawn from ``lowpass_hz`` (teaches empty upper bands);
    - ``gain``: a gain drawn from ``gain_db`` (quiet inputs);
    - ``noise``: a white noise floor at an RMS level drawn from ``noise_db`` (dBFS);
    - ``silence``: up to ``silence_spans`` spans of digital silence, each at most ``silence_max_fraction``
      of the segment (the corpus has almost none; a model never shown silence answers it with hiss).
    """

    lowpass_prob: float = 0.3
    lowpass_hz: tuple[float, float] = (3000.0, 8000.0)
    lowpass_width_hz: float = 300.0
    gain_prob: float = 0.5
    gain_db: tuple[float, float] = (-30.0, 0.0)
    noise_prob: float = 0.3
    noise_db: tuple[float, float] = (-80.0, -55.0)
    silence_prob: float = 0.3
    silence_spans: int = 2
    silence_max_fraction: float = 0.4

    @classmethod
    def from_dict(cls, data: dict) -> AugmentConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GanvoiceError(f"unknown augment keys: {', '.join(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)


def lowpass(audio: np.ndarray, sample_rate: int, cutoff_hz: float, width_hz: float) -> np.ndarray:
    """Zero-phase FFT low-pass of ``audio [N]`` with a raised-cosine roll-off ``width_hz`` wide."""
    spectrum = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(len(audio), 1.0 / sample_rate)
    ramp = np.clip((freqs - cutoff_hz) / width_hz + 0.5, 0.0, 1.0)
    return np.fft.irfft(spectrum * (0.5 + 0.5 * np.cos(np.pi * ramp)), n=len(audio))


def augment(
    audio: np.ndarray, config: AugmentConfig, rng: np.random.Generator, sample_rate: int
) -> np.ndarray:
    """Apply :class:`AugmentConfig` to ``audio [N]`` (float64); returns a new array in [-1, 1]."""
    out = audio.copy()
    if rng.random() < config.lowpass_prob:
        out = lowpass(out, sample_rate, rng.uniform(*config.lowpass_hz), config.lowpass_width_hz)
    if rng.random() < config.gain_prob:
        out *= 10.0 ** (rng.uniform(*config.gain_db) / 20.0)
    if rng.random() < config.noise_prob:
        out += rng.standard_normal(len(out)) * 10.0 ** (rng.uniform(*config.noise_db) / 20.0)
    if rng.random() < config.silence_prob:
        longest = max(1, int(config.silence_max_fraction * len(out)))
        for _ in range(rng.integers(1, config.silence_spans + 1)):
            length = int(rng.integers(1, longest + 1))
            start = int(rng.integers(0, len(out) - length + 1))
            out[start : start + length] = 0.0
    return np.clip(out, -1.0, 1.0)


@dataclass
class _Clip:
    entry: ManifestEntry
    frames: int  # samples in the file


class SegmentDataset(Dataset):
    """Random fixed-length segments of the clips of one split.

    ``dataset[i]`` (clip ``i``, segment drawn for the current :meth:`set_epoch`) or
    ``dataset[(draw, i)]`` (explicit draw number) -> ``dict(audio=float32 [segment_samples],
    mel=float32 [n_mels, segment_samples // hop])`` (``mel`` only when ``with_mel``).
    Clips shorter than a segment are skipped.
    """

    def __init__(
        self,
        manifest: str | Path,
        split: str = "train",
        segment_samples: int = 8192,
        spec: MelSpec | None = None,
        seed: int = 0,
        augment: AugmentConfig | None = None,
        with_mel: bool = True,
    ):
        self.spec = spec or MelSpec()
        if segment_samples <= 0 or segment_samples % self.spec.hop_length:
            raise GanvoiceError(
                f"segment_samples ({segment_samples}) must be a positive multiple of hop_length "
                f"({self.spec.hop_length})"
            )
        self.segment_samples, self.seed, self.augment, self.with_mel = (
            segment_samples,
            seed,
            augment,
            with_mel,
        )
        self.split, self.epoch = split, 0
        self.analyzer = MelAnalyzer(self.spec)
        entries = read_manifest(manifest, lenient=True, resolve=True)
        if not entries:
            raise GanvoiceError(f"manifest {manifest} is empty")
        entries = [e for e in entries if e.split == split]
        if not entries:
            raise GanvoiceError(f"manifest {manifest} has no clips in split {split!r}")
        self.clips = self._long_enough(entries)
        if not self.clips:
            raise GanvoiceError(
                f"all {len(entries)} {split!r} clips are shorter than one segment ({segment_samples} samples)"
            )
        self.skipped = len(entries) - len(self.clips)

    def _long_enough(self, entries: list[ManifestEntry]) -> list[_Clip]:
        clips = []
        for entry in entries:
            if entry.sample_rate != self.spec.sample_rate:
                raise SpecMismatchError(
                    f"{entry.path.name} is {entry.sample_rate} Hz; the mel spec wants {self.spec.sample_rate}"
                )
            if entry.seconds * entry.sample_rate < self.segment_samples - 1:
                continue  # skip without opening the file
            try:
                frames = sf.info(str(entry.path)).frames
            except (RuntimeError, sf.LibsndfileError) as exc:
                raise AudioError(f"cannot read {entry.path}: {exc}") from None
            if frames >= self.segment_samples:
                clips.append(_Clip(entry, frames))
        return clips

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        """Draw new segments (plain integer indexing uses the epoch as the draw number)."""
        self.epoch = epoch

    def clip_weights(self, source_weights: dict[str, float] | None = None) -> np.ndarray:
        """Sampling probabilities per clip ``[len]``: proportional to duration within a source; each
        source's total share proportional to ``source_weights[source]`` (missing sources: 1.0). Without
        ``source_weights`` every second of audio is equally likely."""
        seconds = np.array([c.frames for c in self.clips], dtype=np.float64)
        if not source_weights:
            return seconds / seconds.sum()
        sources = [c.entry.source for c in self.clips]
        totals: dict[str, float] = {}
        for source, s in zip(sources, seconds):
            totals[source] = totals.get(source, 0.0) + s
        weights = np.array(
            [source_weights.get(src, 1.0) * s / totals[src] for src, s in zip(sources, seconds)]
        )
        if weights.sum() <= 0:
            raise GanvoiceError("source_weights leave no clip with a positive weight")
        return weights / weights.sum()

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, np.ndarray]:
        draw, index = (self.epoch, key) if isinstance(key, (int, np.integer)) else key
        clip = self.clips[int(index)]
        rng = np.random.default_rng([self.seed, int(draw), int(index)])
        offset = int(rng.integers(0, clip.frames - self.segment_samples + 1))
        window = self._read_window(clip, offset)
        if self.augment is not None:
            window = augment(window, self.augment, rng, self.spec.sample_rate)
        pad = self.spec.padding
        item = {"audio": window[pad : pad + self.segment_samples].astype(np.float32)}
        if self.with_mel:
            item["mel"] = self._mel_of_window(window)
        return item

    def _read_window(self, clip: _Clip, offset: int) -> np.ndarray:
        """Samples ``[offset - p, offset + segment + p)`` float64, reflect-padded only at the clip's ends."""
        pad = self.spec.padding
        start, stop = max(0, offset - pad), min(clip.frames, offset + self.segment_samples + pad)
        audio, _ = sf.read(str(clip.entry.path), start=start, stop=stop, dtype="float64", always_2d=True)
        audio = audio.mean(axis=1)
        left, right = start - (offset - pad), (offset + self.segment_samples + pad) - stop
        if left or right:
            audio = np.pad(audio, (left, right), mode=self.spec.pad_mode)
        return audio

    def _mel_of_window(self, window: np.ndarray) -> np.ndarray:
        spec = self.spec
        frames = np.lib.stride_tricks.sliding_window_view(window, spec.n_fft)[:: spec.hop_length]
        return self.analyzer.frames_to_mel(frames[: spec.num_frames(self.segment_samples)]).astype(np.float32)


@dataclass
class StepSampler(Sampler):
    """Batch sampler keyed by training step: batch ``step`` of ``rank`` is a pure function of
    ``(seed, step, rank)``, so resuming at any step replays the same data.

    Yields lists of ``(draw, clip)`` keys for :class:`SegmentDataset`, from ``start_step`` to ``stop_step``.
    """

    weights: np.ndarray
    batch_size: int
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    start_step: int = 0
    stop_step: int = 1 << 62
    _clips: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._clips = np.arange(len(self.weights))

    def batch(self, step: int) -> list[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, step, self.rank])
        chosen = rng.choice(self._clips, size=self.batch_size, p=self.weights)
        first = (step * self.world_size + self.rank) * self.batch_size
        return [(first + slot, int(clip)) for slot, clip in enumerate(chosen)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.stop_step):
            yield self.batch(step)

    def __len__(self) -> int:
        return self.stop_step - self.start_step


def limit_numpy_blas_threads(threads: int = 1) -> None:
    """Pin numpy's OpenBLAS to ``threads``: the mel's small matmuls run ~15x slower with a multi-threaded
    OpenBLAS on a busy CPU (measured here: 80 ms -> 5 ms per segment). No-op without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    ThreadpoolController().select(internal_api="openblas").limit(limits=threads)


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one BLAS thread per worker (workers are the parallelism).

    A stop signal sent to the whole process group (Ctrl-C, ``timeout``, ``kill -TERM -PGID``) is the main
    process's to handle: it saves a checkpoint and shuts the workers down. A worker killed by it first made
    the run fail with "DataLoader worker ... killed by signal" instead.
    """
    limit_numpy_blas_threads(1)
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.SIG_IGN)


def collate(items: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Stack items: ``audio [B, N]``, ``mel [B, n_mels, T]``."""
    return {key: torch.from_numpy(np.stack([item[key] for item in items])) for key in items[0]}
