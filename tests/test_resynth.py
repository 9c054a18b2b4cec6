"""``Resynthesizer`` (what the GStreamer element runs), without GStreamer: push audio, get it aligned."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ganvoice.assets import bundled_model_path
from ganvoice.errors import GanvoiceError
from ganvoice.mel import MelAnalyzer, pad_to_whole_hops
from ganvoice.onnxgraph import OnnxGenerator
from ganvoice.realtime import Engine
from ganvoice.realtime.resynth import Resynthesizer

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def speech(demo_wav) -> np.ndarray:
    return sf.read(demo_wav, dtype="float32")[0]


@pytest.fixture(scope="module")
def model() -> str:
    return str(bundled_model_path())


def push_all(resynth: Resynthesizer, audio: np.ndarray, sizes) -> np.ndarray:
    pieces, start = [], 0
    for size in sizes:
        if start >= len(audio):
            break
        pieces.append(resynth.push(audio[start : start + size]))
        start += size
    pieces.append(resynth.push(audio[start:]))
    pieces.append(resynth.finish())
    return np.concatenate(pieces)


def test_any_push_sizes_give_the_offline_render_and_the_input_length(model, speech):
    generator = OnnxGenerator(model)
    padded = pad_to_whole_hops(speech, generator.metadata.hop_length)  # as a file's render does
    offline = generator.offline(MelAnalyzer(generator.metadata.mel)(padded)[None])[0][: len(speech)]
    resynth = Resynthesizer(Engine(model, "cpu"))
    rng = np.random.default_rng(0)
    for sizes in ([len(speech)], [1] * 300 + [20000], rng.integers(1, 5000, 200)):
        out = push_all(resynth, speech, sizes)
        assert len(out) == len(speech)
        assert np.abs(out - offline).max() <= TOLERANCE
        resynth.reset()  # a new stream: the next one starts from the zero state again


def test_the_output_never_trails_the_input_by_more_than_the_reported_latency(model, speech):
    """The measured hold (input pushed minus output out, 64-sample pushes) stays within the latency."""
    resynth = Resynthesizer(Engine(model, "cpu"))
    meta = resynth.engine.metadata
    assert resynth.latency_samples == resynth.source.lookahead_samples + meta.hop_length + meta.delay_samples
    hold = 0
    for start in range(0, len(speech), 64):
        resynth.push(speech[start : start + 64])
        hold = max(hold, resynth.samples_in - resynth.samples_out)
    assert resynth.latency_samples - 64 <= hold <= resynth.latency_samples


def test_a_noise_model_is_refused_in_one_line():
    with pytest.raises(GanvoiceError, match="noise model"):
        Resynthesizer(Engine(bundled_model_path(noise=True), "cpu"))
