"""The mel front end (numpy side): the spec, the filterbank, offline and streaming analysis.

This module imports numpy only, so the torch-free runtime (``ganvoice.realtime``) can use it.
The torch twin lives in :mod:`ganvoice.mel_torch` and follows the same rule.

The analysis rule (the one place it is written down)
-----------------------------------------------------
For a mono signal ``x`` of ``N`` samples and a :class:`MelSpec` ``s``:

1. pad ``x`` by ``p = (n_fft - hop_length) // 2`` samples on each side, reflecting (``pad_mode``);
2. cut frames of ``n_fft`` samples every ``hop_length`` samples, no centering, so there are
   ``N // hop_length`` frames; frame ``i`` covers original samples ``[i*hop - p, i*hop - p + n_fft)``;
3. multiply by a periodic Hann window of ``win_length`` (centred in ``n_fft`` when shorter);
4. magnitude ``sqrt(re^2 + im^2 + 1e-9)`` of the real DFT;
5. mel filterbank (``mel_scale`` = "slaney" or "htk", ``mel_norm`` = "slaney" or None);
6. ``log(clamp(mel, clamp_min))`` in base ``log_base`` ("e" = natural).

This is the HiFi-GAN / LJSpeech convention (``meldataset.mel_spectrogram``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

import numpy as np

MAGNITUDE_EPS = 1e-9


@dataclass(frozen=True)
class MelSpec:
    """Every number that defines a log-mel spectrogram. Two specs are equal iff all fields are."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    mel_scale: str = "slaney"
    mel_norm: str | None = "slaney"
    pad_mode: str = "reflect"
    log_base: str = "e"
    clamp_min: float = 1e-5

    def __post_init__(self) -> None:
        if self.mel_scale not in ("slaney", "htk"):
            raise ValueError(f"mel_scale must be 'slaney' or 'htk', not {self.mel_scale!r}")
        if self.mel_norm not in ("slaney", None):
            raise ValueError(f"mel_norm must be 'slaney' or None, not {self.mel_norm!r}")
        if self.log_base not in ("e", "10"):
            raise ValueError(f"log_base must be 'e' or '10', not {self.log_base!r}")
        if self.pad_mode not in ("reflect", "constant"):
            raise ValueError(f"pad_mode must be 'reflect' or 'constant', not {self.pad_mode!r}")
        if (self.n_fft - self.hop_length) % 2:
            raise ValueError("n_fft - hop_length must be even (symmetric padding)")
        if self.win_length > self.n_fft or self.hop_length <= 0:
            raise ValueError("need 0 < hop_length and win_length <= n_fft")

    @property
    def padding(self) -> int:
        """Samples padded on each side before framing: ``(n_fft - hop_length) // 2``."""
        return (self.n_fft - self.hop_length) // 2

    @property
    def log_floor(self) -> float:
        """The log-mel value of silence (``log(clamp_min)``)."""
        return float(_log(np.float64(self.clamp_min), self.log_base))

    def num_frames(self, num_samples: int) -> int:
        return num_samples // self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> MelSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown MelSpec keys: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> MelSpec:
        return cls.from_dict(json.loads(text))

    def describe_difference(self, other: MelSpec) -> str:
        """One line naming the fields where ``other`` differs from ``self``."""
        diffs = [
            f"{f.name} {getattr(other, f.name)!r} != {getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]
        return ", ".join(diffs) or "no difference"


def _log(x: np.ndarray, base: str) -> np.ndarray:
    return np.log(x) if base == "e" else np.log10(x)


def hz_to_mel(freq: np.ndarray, scale: str = "slaney") -> np.ndarray:
    freq = np.asanyarray(freq, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + freq / 700.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    linear = freq / f_sp
    with np.errstate(divide="ignore"):
        log_part = min_log_mel + np.log(np.maximum(freq, 1e-10) / min_log_hz) / logstep
    return np.where(freq >= min_log_hz, log_part, linear)


def mel_to_hz(mels: np.ndarray, scale: str = "slaney") -> np.ndarray:
    mels = np.asanyarray(mels, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels)


def mel_filterbank(spec: MelSpec) -> np.ndarray:
    """Triangular mel filters, float64 ``[n_mels, n_fft // 2 + 1]`` (same as ``librosa.filters.mel``)."""
    fft_freqs = np.linspace(0.0, spec.sample_rate / 2.0, spec.n_fft // 2 + 1)
    mel_min, mel_max = hz_to_mel(np.array([spec.fmin, spec.fmax]), spec.mel_scale)
    mel_f = mel_to_hz(np.linspace(mel_min, mel_max, spec.n_mels + 2), spec.mel_scale)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if spec.mel_norm == "slaney":
        weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights


def analysis_window(spec: MelSpec) -> np.ndarray:
    """Periodic Hann window of ``win_length``, zero-padded (centred) to ``n_fft``; float64 ``[n_fft]``."""
    n = np.arange(spec.win_length)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / spec.win_length)
    left = (spec.n_fft - spec.win_length) // 2
    return np.pad(window, (left, spec.n_fft - spec.win_length - left))


class MelAnalyzer:
    """Offline numpy log-mel analysis of a whole signal.

    ``__call__(audio [..., N]) -> log-mel float32 [..., n_mels, N // hop]``; computed in float64.
    """

    def __init__(self, spec: MelSpec | None = None):
        self.spec = spec or MelSpec()
        self.filterbank = mel_filterbank(self.spec)
        self.window = analysis_window(self.spec)

    def frames_to_mel(self, frames: np.ndarray) -> np.ndarray:
        """``frames [..., F, n_fft]`` (already padded signal cuts) -> log-mel ``[..., n_mels, F]`` float64."""
        spectrum = np.fft.rfft(frames * self.window, axis=-1)
        magnitude = np.sqrt(spectrum.real**2 + spectrum.imag**2 + MAGNITUDE_EPS)
        mel = magnitude @ self.filterbank.T
        logmel = _log(np.maximum(mel, self.spec.clamp_min), self.spec.log_base)
        return np.swapaxes(logmel, -1, -2)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float64)
        spec = self.spec
        num_frames = spec.num_frames(audio.shape[-1])
        if num_frames == 0:
            return np.zeros((*audio.shape[:-1], spec.n_mels, 0), dtype=np.float32)
        pad = [(0, 0)] * (audio.ndim - 1) + [(spec.padding, spec.padding)]
        padded = np.pad(audio, pad, mode=spec.pad_mode)
        frames = np.lib.stride_tricks.sliding_window_view(padded, spec.n_fft, axis=-1)
        frames = frames[..., : num_frames * spec.hop_length : spec.hop_length, :]
        return self.frames_to_mel(frames).astype(np.float32)


def mel_spectrogram(audio: np.ndarray, spec: MelSpec | None = None) -> np.ndarray:
    """Convenience wrapper: ``audio [..., N] -> log-mel float32 [..., n_mels, N // hop]``."""
    return MelAnalyzer(spec)(audio)


def pad_to_whole_hops(audio: np.ndarray, hop_length: int) -> np.ndarray:
    """``audio [..., N]`` followed by zeros (silence) up to its next whole hop: ``ceil(N / hop)`` hops.

    The analysis rule makes ``N // hop`` frames, which leave the last ``N % hop`` samples out; the frames
    of the padded signal cover every input sample. A file's audio is analysed this way (the streaming
    twin: :meth:`StreamingMelAnalyzer.flush` with ``partial_hop=True``), and a render of it is cut back
    to the input's ``N`` samples.
    """
    audio = np.asarray(audio)
    missing = -audio.shape[-1] % hop_length
    if not missing:
        return audio
    return np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(0, missing)])


class StreamingMelAnalyzer:
    """Push audio in blocks of any size, get the mel frames that are complete.

    The frames equal :class:`MelAnalyzer` on the whole signal. A frame is complete once
    :attr:`lookahead_samples` samples past the end of its own hop block have arrived; the frames
    that touch the right-hand reflect padding come out of :meth:`flush` (end of stream).
    """

    def __init__(self, spec: MelSpec | None = None, max_block: int = 1 << 16):
        self.analyzer = MelAnalyzer(spec)
        self.spec = self.analyzer.spec
        self._capacity = max_block + 2 * self.spec.n_fft
        self._buffer = np.zeros(self._capacity, dtype=np.float64)
        self.reset()

    @property
    def lookahead_samples(self) -> int:
        """Samples after a frame's own hop block needed before that frame is complete."""
        return self.spec.padding

    def reset(self) -> None:
        self._filled = 0  # valid samples in _buffer
        self._first = 0  # original index of _buffer[0] (after the start padding is applied)
        self._total = 0  # samples pushed so far
        self._emitted = 0  # frames emitted so far
        self._started = False

    def _append(self, block: np.ndarray) -> None:
        need = self._filled + len(block)
        if need > len(self._buffer):
            self._buffer = np.concatenate([self._buffer, np.zeros(need, dtype=np.float64)])
        self._buffer[self._filled : need] = block
        self._filled = need

    def _start(self) -> None:
        # Replace the buffer's head by [reflected start padding, audio...]; index 0 is then original -p.
        pad = self.spec.padding
        head = self._buffer[: self._filled].copy()
        if self.spec.pad_mode == "reflect":
            left = head[pad:0:-1]
        else:
            left = np.zeros(pad)
        self._filled = 0
        self._append(np.concatenate([left, head]))
        self._first = -pad
        self._started = True

    def push(self, block: np.ndarray) -> np.ndarray:
        """``block [n]`` -> the newly complete frames, float32 ``[n_mels, k]`` (k may be 0)."""
        block = np.asarray(block, dtype=np.float64).reshape(-1)
        self._total += len(block)
        self._append(block)
        if not self._started:
            if self._filled <= self.spec.padding:
                return np.zeros((self.spec.n_mels, 0), dtype=np.float32)
            self._start()
        return self._emit(limit=None)

    def flush(self, partial_hop: bool = False) -> np.ndarray:
        """End of stream: the remaining frames (those that need the right-hand padding).

        ``partial_hop``: first complete the last hop with silence, so that the last ``N % hop`` samples
        get a frame too: the frames then equal :class:`MelAnalyzer` on :func:`pad_to_whole_hops` of the
        input (``ceil(N / hop)`` frames, not ``N // hop``).
        """
        if partial_hop and self._total % self.spec.hop_length:
            head = self.push(np.zeros(-self._total % self.spec.hop_length))
            return np.concatenate([head, self.flush()], axis=1)
        spec = self.spec
        total_frames = spec.num_frames(self._total)
        if total_frames <= self._emitted:
            return np.zeros((spec.n_mels, 0), dtype=np.float32)
        if not self._started:
            if self._filled <= spec.padding:  # too short to reflect piecewise: analyse it whole
                self._emitted = total_frames
                return self.analyzer(self._buffer[: self._filled])
            self._start()
        valid = self._buffer[: self._filled]
        if spec.pad_mode == "reflect":
            tail = valid[-2 : -spec.padding - 2 : -1]
        else:
            tail = np.zeros(spec.padding)
        self._append(tail)
        return self._emit(limit=total_frames)

    def _emit(self, limit: int | None) -> np.ndarray:
        spec = self.spec
        hop, n_fft = spec.hop_length, spec.n_fft
        # frame i starts at original index i*hop - p, i.e. buffer index i*hop - p - _first
        start = self._emitted * hop - spec.padding - self._first
        available = (self._filled - start - n_fft) // hop + 1 if self._filled - start >= n_fft else 0
        if limit is not None:
            available = min(available, limit - self._emitted)
        if available <= 0:
            self._compact()
            return np.zeros((spec.n_mels, 0), dtype=np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(self._buffer[start : self._filled], n_fft)
        mel = self.analyzer.frames_to_mel(frames[: available * hop : hop]).astype(np.float32)
        self._emitted += available
        self._compact()
        return mel

    def _compact(self) -> None:
        """Drop samples no future frame needs."""
        keep_from = self._emitted * self.spec.hop_length - self.spec.padding - self._first
        if not self._started or keep_from <= 0:
            return
        remaining = self._filled - keep_from
        self._buffer[:remaining] = self._buffer[keep_from : self._filled]
        self._filled = remaining
        self._first += keep_from
