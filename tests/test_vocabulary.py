"""The streaming contract's names: the renamed ones still work, with a one-line note."""

from __future__ import annotations

import numpy as np
import pytest

from ganvoice.models.base import make_config
from ganvoice.onnxgraph import OnnxGenerator
from ganvoice.realtime import Engine


def test_old_recipe_key_lookahead_frames_loads_as_conv_lookahead_frames():
    with pytest.warns(FutureWarning, match="'lookahead_frames' is now 'conv_lookahead_frames'"):
        old = make_config("fast", {"lookahead_frames": 2})
    assert old == make_config("fast", {"conv_lookahead_frames": 2})


def test_flush_frames_is_flush_length_frames_of_pad_value(tiny_model):
    meta = OnnxGenerator(tiny_model).metadata
    assert meta.flush_length == -(-meta.delay_samples // meta.hop_length)
    flush = meta.flush_frames()
    assert flush.shape == (meta.channels, meta.flush_length) and flush.dtype == np.float32
    assert (flush == np.float32(meta.pad_value)).all()
    assert meta.flush_frames(2).shape == (2, meta.channels, meta.flush_length)
    with pytest.warns(FutureWarning):
        assert meta.lookahead_frames == meta.flush_length


def test_engine_skip_warmup_is_compensate_delay(tiny_model):
    with pytest.warns(FutureWarning, match="'skip_warmup' is now 'compensate_delay'"):
        engine = Engine(tiny_model, "cpu", skip_warmup=True)
    assert engine.compensate_delay and engine.output_delay == 0
    with pytest.warns(FutureWarning, match="'Engine.delay_samples' is now 'output_delay'"):
        assert engine.delay_samples == 0
    with pytest.warns(FutureWarning):
        engine.skip_warmup = False
    assert not engine.compensate_delay
