"""Mel front end: numpy vs torch twins, librosa filterbank, HiFi-GAN reference, streaming analyzer."""

import json

import librosa
import numpy as np
import pytest
import torch

from ganvoice.mel import (
    MelAnalyzer,
    MelSpec,
    StreamingMelAnalyzer,
    mel_filterbank,
    mel_spectrogram,
    pad_to_whole_hops,
)
from ganvoice.mel_torch import MelSpectrogram


def speech_like(seconds=1.0, sr=22050, seed=0):
    """A real-ish signal: harmonic tone with vibrato, noise bursts and a silent gap."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * 0.2
    x += 0.05 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 2 * t) > 0.7)
    x[len(x) // 3 : len(x) // 3 + 2000] = 0.0
    return x.astype(np.float32)


def test_spec_json_round_trip_and_equality():
    spec = MelSpec(sample_rate=24000, n_mels=100, fmax=12000.0, mel_norm=None)
    assert MelSpec.from_json(spec.to_json()) == spec
    assert spec != MelSpec()
    assert "n_mels" in MelSpec().describe_difference(spec)
    with pytest.raises(ValueError, match="unknown MelSpec keys"):
        MelSpec.from_dict({**json.loads(spec.to_json()), "bogus": 1})


@pytest.mark.parametrize(
    "spec", [MelSpec(), MelSpec(sample_rate=16000, n_mels=64, fmax=7600, mel_scale="htk")]
)
def test_filterbank_matches_librosa(spec):
    reference = librosa.filters.mel(
        sr=spec.sample_rate,
        n_fft=spec.n_fft,
        n_mels=spec.n_mels,
        fmin=spec.fmin,
        fmax=spec.fmax,
        htk=spec.mel_scale == "htk",
        norm=spec.mel_norm,
        dtype=np.float64,
    )
    assert np.abs(mel_filterbank(spec) - reference).max() <= 1e-6


def hifigan_reference(audio, spec):
    """HiFi-GAN's meldataset.mel_spectrogram, rebuilt with librosa + numpy."""
    pad = (spec.n_fft - spec.hop_length) // 2
    y = np.pad(audio.astype(np.float64), (pad, pad), mode="reflect")
    stft = librosa.stft(
        y,
        n_fft=spec.n_fft,
        hop_length=spec.hop_length,
        win_length=spec.win_length,
        window="hann",
        center=False,
    )
    magnitude = np.sqrt(stft.real**2 + stft.imag**2 + 1e-9)
    basis = librosa.filters.mel(
        sr=spec.sample_rate, n_fft=spec.n_fft, n_mels=spec.n_mels, fmin=spec.fmin, fmax=spec.fmax
    )
    return np.log(np.clip(basis @ magnitude, 1e-5, None))


@pytest.mark.parametrize("kind", ["random", "speech"])
def test_numpy_torch_and_reference_agree(kind):
    spec = MelSpec()
    rng = np.random.default_rng(1)
    audio = rng.uniform(-1, 1, 22050).astype(np.float32) if kind == "random" else speech_like()
    numpy_mel = mel_spectrogram(audio, spec)
    torch_mel = MelSpectrogram(spec)(torch.from_numpy(audio)).numpy()
    reference = hifigan_reference(audio, spec)
    assert numpy_mel.shape == (spec.n_mels, len(audio) // spec.hop_length) == reference.shape
    assert np.abs(numpy_mel - torch_mel).max() <= 1e-4
    assert np.abs(numpy_mel - reference).max() <= 1e-4
    fast_mel = MelSpectrogram(spec, precise=False)(torch.from_numpy(audio)).numpy()
    assert np.abs(fast_mel - numpy_mel).max() <= 5e-3  # float32 STFT: bins near the floor move most


def test_batched_torch_matches_single():
    audio = torch.from_numpy(np.stack([speech_like(seed=0), speech_like(seed=1)]))
    batched = MelSpectrogram()(audio)
    assert torch.allclose(batched[1], MelSpectrogram()(audio[1]), atol=1e-6)


def test_streaming_analyzer_equals_offline_for_random_blocks():
    spec = MelSpec()
    audio = speech_like(seconds=0.8)
    offline = MelAnalyzer(spec)(audio)
    rng = np.random.default_rng(7)
    for trial in range(24):
        analyzer = StreamingMelAnalyzer(spec)
        frames, start = [], 0
        while start < len(audio):
            size = int(rng.integers(1, 2000)) if trial % 2 else int(rng.choice([1, 64, 256, 511, 4096]))
            frames.append(analyzer.push(audio[start : start + size]))
            start += size
        streamed_before_flush = np.concatenate(frames, axis=1)
        frames.append(analyzer.flush())
        streamed = np.concatenate(frames, axis=1)
        assert streamed.shape == offline.shape
        assert np.abs(streamed - offline).max() <= 1e-5
        # every frame that came out before the flush was complete without right padding
        complete = (len(audio) - analyzer.lookahead_samples) // spec.hop_length
        assert streamed_before_flush.shape[1] == complete


def test_streaming_lookahead_is_a_property():
    spec = MelSpec()
    analyzer = StreamingMelAnalyzer(spec)
    need = spec.hop_length + analyzer.lookahead_samples
    assert analyzer.push(np.zeros(need - 1)).shape[1] == 0
    assert analyzer.push(np.zeros(1)).shape[1] == 1
    analyzer.reset()
    assert analyzer.push(np.zeros(need - 1)).shape[1] == 0


@pytest.mark.parametrize("length", [255, 256, 300, 384, 385, 640, 1023])
def test_streaming_analyzer_handles_short_signals(length):
    spec = MelSpec()
    audio = speech_like(seconds=0.1)[:length]
    analyzer = StreamingMelAnalyzer(spec)
    streamed = np.concatenate(
        [analyzer.push(audio[:100]), analyzer.push(audio[100:]), analyzer.flush()], axis=1
    )
    offline = MelAnalyzer(spec)(audio)
    assert streamed.shape == offline.shape == (spec.n_mels, length // spec.hop_length)
    if offline.shape[1]:
        assert np.abs(streamed - offline).max() <= 1e-5


@pytest.mark.parametrize("length", [100, 256, 300, 1023, 17_600, 17_663])
def test_a_flush_with_the_partial_hop_covers_every_sample(length):
    """flush(partial_hop=True): the input, then silence to its next whole hop -> ceil(N / hop) frames."""
    spec = MelSpec()
    audio = speech_like(seconds=1.0)[:length]
    padded = pad_to_whole_hops(audio, spec.hop_length)
    assert len(padded) == -(-length // spec.hop_length) * spec.hop_length
    assert np.array_equal(padded[:length], audio) and not padded[length:].any()
    offline = MelAnalyzer(spec)(padded)
    rng = np.random.default_rng(length)
    analyzer, frames, start = StreamingMelAnalyzer(spec), [], 0
    while start < length:
        size = int(rng.integers(1, 700))
        frames.append(analyzer.push(audio[start : start + size]))
        start += size
    streamed = np.concatenate([*frames, analyzer.flush(partial_hop=True)], axis=1)
    assert streamed.shape == offline.shape == (spec.n_mels, -(-length // spec.hop_length))
    assert np.abs(streamed - offline).max() <= 1e-5
