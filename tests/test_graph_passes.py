"""The exporter's shape-arithmetic folding and slice merging: the same outputs, bit for bit, fewer nodes."""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ganvoice.export.graph_passes import fold_and_merge, fold_shape_arithmetic
from ganvoice.export.onnx_export import _simplify, _trace
from ganvoice.models.base import build_generator, fold_weight_norm

TINY = {"dim": 32, "intermediate_dim": 64, "num_blocks": 2}
CASES = {
    "fast": ("fast", TINY),
    "fast-pinv-ri-consistency": (
        "fast",
        {**TINY, "magnitude": "pinv", "phase_head": "ri", "consistency_iterations": 1},
    ),
    "fast-noise": ("fast", {**TINY, "conditioning": "noise", "latent_channels": 32}),
    "hifigan-v3": ("hifigan-v3", {"upsample_initial_channel": 32}),
}
SHAPE_OPS = {"Shape", "If", "Equal"}


def _session(model):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _feeds(session, batch, frames, rng):
    feeds = {}
    for tensor in session.get_inputs():
        shape = [
            d if isinstance(d, int) else (batch if i == 0 else frames) for i, d in enumerate(tensor.shape)
        ]
        feeds[tensor.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


@pytest.mark.parametrize("case", sorted(CASES))
def test_folding_keeps_every_output_bit_identical(case):
    variant, overrides = CASES[case]
    torch.manual_seed(0)
    generator = fold_weight_norm(build_generator(variant, overrides)).eval()
    traced = _simplify(_trace(generator, 17))
    folded = fold_and_merge(copy.deepcopy(traced))
    before, after = (
        Counter(n.op_type for n in traced.graph.node),
        Counter(n.op_type for n in folded.graph.node),
    )
    assert sum(after.values()) <= sum(before.values())
    if variant == "fast":  # every shape computation of the fast graph is folded
        assert not SHAPE_OPS & set(after), after
        constants = {i.name for i in folded.graph.initializer}
        for node in folded.graph.node:
            if node.op_type in ("Slice", "Reshape"):
                assert all(i in constants for i in node.input[1:] if i), node
        assert sum(after.values()) < sum(before.values())
        unmerged = Counter(n.op_type for n in fold_shape_arithmetic(copy.deepcopy(traced)).graph.node)
        assert after["Slice"] < unmerged["Slice"]  # x[:, a:b, c:d] is one Slice, not two
        if case == "fast":  # the head's Transpose -> Slice -> Transpose back is one Slice
            assert after["Transpose"] < unmerged["Transpose"]
        if case == "fast-pinv-ri-consistency":  # x[:, :bins] of cat([m, re, im]) reads m itself
            assert after["Concat"] < unmerged["Concat"]
    plain, fast = _session(traced), _session(folded)
    rng = np.random.default_rng(0)
    for batch in (1, 2):
        for frames in (1, 2, 5):
            feeds = _feeds(plain, batch, frames, rng)
            for a, b in zip(plain.run(None, feeds), fast.run(None, feeds)):
                assert a.shape == b.shape and np.array_equal(a, b)
