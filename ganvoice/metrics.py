"""Objective quality metrics of generated speech against a reference (numpy; PESQ/STOI from [dev]).

All functions take float32 mono signals ``[N]`` at ``sample_rate``; lengths are cut to the shorter one.
"""

from __future__ import annotations

import math

import numpy as np

from ganvoice.audio import resample
from ganvoice.mel import MelAnalyzer, MelSpec

PESQ_RATE = 16000  # wide-band PESQ is defined at 16 kHz
DNSMOS_RATE = 16000
DNSMOS_ITEM_SECONDS = 10.0  # DNSMOS scores 9.01 s windows: short clips are joined into items this long
MRSTFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))
LOG_EPS = 1e-7


def _aligned(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(reference), len(estimate))
    return reference[:n].astype(np.float64), estimate[:n].astype(np.float64)


def mel_l1(reference: np.ndarray, estimate: np.ndarray, spec: MelSpec) -> float:
    """Mean absolute difference of the log-mel spectrograms (the model's own spec)."""
    reference, estimate = _aligned(reference, estimate)
    analyzer = MelAnalyzer(spec)
    return float(np.mean(np.abs(analyzer(reference) - analyzer(estimate))))


def _stft_magnitude(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    window = np.hanning(n_fft + 1)[:-1]
    padded = np.pad(x, (n_fft // 2, n_fft // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return np.abs(np.fft.rfft(frames * window, axis=-1))


def mrstft_distance(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Multi-resolution STFT distance: spectral convergence + log-magnitude L1, averaged over resolutions."""
    reference, estimate = _aligned(reference, estimate)
    total = 0.0
    for n_fft, hop in MRSTFT_RESOLUTIONS:
        ref, est = _stft_magnitude(reference, n_fft, hop), _stft_magnitude(estimate, n_fft, hop)
        convergence = np.linalg.norm(ref - est) / max(np.linalg.norm(ref), LOG_EPS)
        log_l1 = np.mean(np.abs(np.log(ref + LOG_EPS) - np.log(est + LOG_EPS)))
        total += convergence + log_l1
    return float(total / len(MRSTFT_RESOLUTIONS))


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Wide-band PESQ at 16 kHz (NaN where PESQ finds no utterance)."""
    from pesq import pesq
    from pesq.cypesq import PesqError

    reference, estimate = _aligned(reference, estimate)
    ref16 = resample(reference.astype(np.float32), sample_rate, PESQ_RATE)
    est16 = resample(estimate.astype(np.float32), sample_rate, PESQ_RATE)
    try:
        return float(pesq(PESQ_RATE, ref16, est16, "wb"))
    except PesqError:
        return math.nan


def stoi(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    from pystoi import stoi as pystoi_stoi

    reference, estimate = _aligned(reference, estimate)
    return float(pystoi_stoi(reference, estimate, sample_rate, extended=False))


def griffin_lim(logmel: np.ndarray, spec: MelSpec, iterations: int = 32) -> np.ndarray:
    """The floor to beat: log-mel ``[n_mels, T]`` -> pseudo-inverse -> Griffin-Lim -> ``[T * hop]``."""
    import librosa

    mel = np.exp(logmel.astype(np.float64)) if spec.log_base == "e" else 10.0 ** logmel.astype(np.float64)
    magnitude = librosa.feature.inverse.mel_to_stft(
        mel,
        sr=spec.sample_rate,
        n_fft=spec.n_fft,
        power=1.0,
        fmin=spec.fmin,
        fmax=spec.fmax,
        htk=spec.mel_scale == "htk",
        norm=spec.mel_norm,
    )
    padded = librosa.griffinlim(
        magnitude,
        n_iter=iterations,
        hop_length=spec.hop_length,
        win_length=spec.win_length,
        n_fft=spec.n_fft,
        center=False,
        random_state=0,
        length=magnitude.shape[1] * spec.hop_length + spec.n_fft - spec.hop_length,
    )
    audio = padded[spec.padding : spec.padding + logmel.shape[1] * spec.hop_length]
    return audio.astype(np.float32)


def all_metrics(reference: np.ndarray, estimate: np.ndarray, spec: MelSpec) -> dict[str, float]:
    rate = spec.sample_rate
    return {
        "pesq_wb": pesq_wb(reference, estimate, rate),
        "stoi": stoi(reference, estimate, rate),
        "mel_l1": mel_l1(reference, estimate, spec),
        "mrstft": mrstft_distance(reference, estimate),
    }


def mos_items(
    signals: list[np.ndarray], sample_rate: int, seconds: float = DNSMOS_ITEM_SECONDS
) -> list[np.ndarray]:
    """Clips -> 16 kHz float32 items of about ``seconds`` each (clips joined in order, clipped to [-1, 1])."""
    items, current, length = [], [], 0
    target = int(seconds * DNSMOS_RATE)
    for signal in signals:
        clip = resample(np.asarray(signal, dtype=np.float32), sample_rate, DNSMOS_RATE)
        current.append(np.clip(clip, -1.0, 1.0))
        length += len(clip)
        if length >= target:
            items.append(np.concatenate(current))
            current, length = [], 0
    if current and (length >= target // 2 or not items):
        items.append(np.concatenate(current))
    return items


def dnsmos(signals: list[np.ndarray], sample_rate: int) -> float:
    """DNSMOS P.835 overall MOS (``speechmos``, ONNX models in its wheel) averaged over ~10 s items."""
    from speechmos import dnsmos as speechmos_dnsmos

    scores = [speechmos_dnsmos.run(item, DNSMOS_RATE)["ovrl_mos"] for item in mos_items(signals, sample_rate)]
    return float(np.mean(scores)) if scores else math.nan
