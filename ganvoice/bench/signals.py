"""Conditioning for speed runs: the log-mel of a synthetic voiced sound, or the latent noise walk.

Model speed does not depend on the values, but realistic ones keep every run alike (no denormals, no
all-silence shortcuts in a future graph). Deterministic for a given ``seed``.
"""

from __future__ import annotations

import numpy as np

from ganvoice.mel import mel_spectrogram
from ganvoice.modelmeta import ModelMetadata
from ganvoice.realtime.sources import NoiseSource

#: The synthetic voice: f0 gliding around F0_HZ, harmonics below HARMONICS_MAX_HZ, syllables at SYLLABLE_HZ.
F0_HZ = 140.0
F0_GLIDE = 0.3
F0_GLIDE_HZ = 0.7
HARMONICS_MAX_HZ = 4000.0
SYLLABLE_HZ = 4.0
NOISE_LEVEL = 0.01
PEAK = 0.5


def voiced_audio(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A voiced, syllabic test sound ``[n]`` float64 (peak ``PEAK``)."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    f0 = F0_HZ * (1.0 + F0_GLIDE * np.sin(2 * np.pi * F0_GLIDE_HZ * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    audio = np.zeros_like(t)
    for k in range(1, int(HARMONICS_MAX_HZ // (F0_HZ * (1 + F0_GLIDE))) + 1):
        audio += np.sin(k * phase) / k
    audio *= 0.5 * (1.0 - np.cos(2 * np.pi * SYLLABLE_HZ * t))
    audio += NOISE_LEVEL * rng.standard_normal(t.size)
    return PEAK * audio / max(np.abs(audio).max(), np.finfo(float).tiny)


def conditioning(metadata: ModelMetadata, frames: int, seed: int = 0) -> np.ndarray:
    """``[channels, frames]`` float32 frames for the model: a voiced mel, or latent noise."""
    frames = max(1, int(frames))
    if metadata.conditioning == "mel" and metadata.mel is not None:
        spec = metadata.mel
        seconds = (frames + 1) * spec.hop_length / spec.sample_rate
        mel = mel_spectrogram(voiced_audio(seconds, spec.sample_rate, seed), spec)
        return np.ascontiguousarray(mel[:, :frames], dtype=np.float32)
    out = np.zeros((metadata.channels, frames), dtype=np.float32)
    NoiseSource(metadata.channels, seed=seed).read(out)
    return out


def frames_for(metadata: ModelMetadata, seconds: float) -> int:
    """Frames that make at least ``seconds`` of audio (at least one)."""
    return max(1, int(np.ceil(seconds * metadata.sample_rate / metadata.hop_length)))
