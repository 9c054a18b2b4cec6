"""Kernel passes: 1-D convolutions as 2-D ones (float rounding only) and 8-bit MatMulNBits weights that still
stream exactly (chunked == offline) and stay close to the float graph."""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pytest
from graph_cases import CASES, TINY, session, traced

from ganvoice.export.graph_passes import fold_and_merge
from ganvoice.export.kernel_passes import conv1d_as_conv2d, int8_matmul_weights, quantize_int8_blocks


def _traced(case: str):
    return fold_and_merge(traced(case, lively=True))


def _stream(session, x: np.ndarray, chunks: list[int]) -> np.ndarray:
    """Run ``x`` ``[1, C, T]`` through the graph in chunks of the given sizes (cycled), state carried."""
    inputs = session.get_inputs()
    state = {i.name: np.zeros([1, *i.shape[1:]], np.float32) for i in inputs[1:]}
    outputs, start, index = [], 0, 0
    while start < x.shape[-1]:
        size = chunks[index % len(chunks)]
        results = session.run(None, {inputs[0].name: x[..., start : start + size], **state})
        outputs.append(results[0])
        state = dict(zip(state, results[1:]))
        start, index = start + size, index + 1
    return np.concatenate(outputs, axis=-1)


def _conditioning(session, frames: int = 24) -> np.ndarray:
    channels = session.get_inputs()[0].shape[1]
    return np.random.default_rng(0).standard_normal((1, channels, frames)).astype(np.float32)


@pytest.mark.parametrize("case", sorted(CASES))
def test_conv2d_rewrite_changes_only_rounding(case):
    traced = _traced(case)
    rewritten = conv1d_as_conv2d(copy.deepcopy(traced))
    before, after = (Counter(n.op_type for n in m.graph.node) for m in (traced, rewritten))
    ranks = {init.name: len(init.dims) for init in traced.graph.initializer}
    one_d = sum(n.op_type == "Conv" and ranks.get(n.input[1]) == 3 for n in traced.graph.node)
    assert after["Conv"] == before["Conv"] and after["Unsqueeze"] == before["Unsqueeze"] + one_d
    assert one_d > 0 if CASES[case][0] == "hifigan-v3" else one_d == 0  # fast's trunk is 2-D already
    plain, fast = session(traced), session(rewritten)
    x = _conditioning(plain)
    reference = _stream(plain, x, [x.shape[-1]])
    scale = float(np.abs(reference).max())
    assert scale > 1e-3
    assert float(np.abs(_stream(fast, x, [x.shape[-1]]) - reference).max()) <= 1e-5 * scale
    assert float(np.abs(_stream(fast, x, [1, 2, 5]) - reference).max()) <= 1e-5 * scale


def test_int8_blocks_round_trip_within_half_a_step():
    weight = np.random.default_rng(1).standard_normal((100, 7)).astype(np.float32)
    codes, scales = quantize_int8_blocks(weight, 32)
    assert codes.shape == (7, 4, 32) and codes.dtype == np.uint8 and scales.shape == (28,)
    assert codes.min() >= 1 and codes.max() <= 255
    restored = ((codes.astype(np.float32) - 128) * scales.reshape(7, 4, 1)).reshape(7, -1)[:, :100].T
    step = np.repeat(scales.reshape(7, 4), 32, axis=1)[:, :100].T
    assert np.all(np.abs(restored - weight) <= 0.5 * step + 1e-7)


@pytest.mark.parametrize("case", ["fast", "fast-pinv-ri-consistency"])
def test_int8_weights_stream_exactly_and_fold_bias_and_layer_scale(case):
    traced = _traced(case)
    quantized = int8_matmul_weights(copy.deepcopy(traced))
    before, after = (Counter(n.op_type for n in m.graph.node) for m in (traced, quantized))
    pointwise = before["MatMul"] - after["MatMul"]
    assert after["MatMulNBits"] == pointwise > 0
    # each ConvNeXt block's pwconv2 bias Add and layer-scale Mul went into its MatMulNBits
    assert before["Mul"] - after["Mul"] >= TINY["num_blocks"]
    plain, fast = session(traced), session(quantized)
    x = _conditioning(plain)
    reference, offline = _stream(plain, x, [x.shape[-1]]), _stream(fast, x, [x.shape[-1]])
    scale = float(np.abs(reference).max())
    assert 0 < float(np.abs(offline - reference).max()) <= 0.05 * scale  # lossy, but close
    for chunks in ([1], [2, 5], [3, 1, 7]):
        assert float(np.abs(_stream(fast, x, chunks) - offline).max()) <= 1e-5 * scale
