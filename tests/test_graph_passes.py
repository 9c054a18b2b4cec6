"""The exporter's shape-arithmetic folding and slice merging: the same outputs, bit for bit, fewer nodes."""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pytest
from graph_cases import CASES, session, traced

from ganvoice.export.graph_passes import fold_and_merge, fold_shape_arithmetic

SHAPE_OPS = {"Shape", "If", "Equal"}


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
    variant = CASES[case][0]
    plain_model = traced(case)
    folded = fold_and_merge(copy.deepcopy(plain_model))
    before, after = (
        Counter(n.op_type for n in plain_model.graph.node),
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
        unmerged = Counter(n.op_type for n in fold_shape_arithmetic(copy.deepcopy(plain_model)).graph.node)
        assert after["Slice"] < unmerged["Slice"]  # x[:, a:b, c:d] is one Slice, not two
        if case == "fast":  # the head's Transpose -> Slice -> Transpose back is one Slice
            assert after["Transpose"] < unmerged["Transpose"]
        if case == "fast-pinv-ri-consistency":  # x[:, :bins] of cat([m, re, im]) reads m itself
            assert after["Concat"] < unmerged["Concat"]
    plain, fast = session(plain_model), session(folded)
    rng = np.random.default_rng(0)
    for batch in (1, 2):
        for frames in (1, 2, 5):
            feeds = _feeds(plain, batch, frames, rng)
            for a, b in zip(plain.run(None, feeds), fast.run(None, feeds)):
                assert a.shape == b.shape and np.array_equal(a, b)
