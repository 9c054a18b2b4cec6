"""The exporter's shape folding and slice/reshape merging: the same outputs, bit for bit, fewer nodes."""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pytest
from graph_cases import CASES, session, traced
from onnx import TensorProto, helper, numpy_helper

from ganvoice.export.graph_passes import drop_whole_slices, fold_and_merge, fold_shape_arithmetic

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
            assert after["Reshape"] < unmerged["Reshape"]  # the DFT's last reshape and hop_blocks are one
        reshaped = {n.output[0] for n in folded.graph.node if n.op_type == "Reshape"}
        assert not [n.name for n in folded.graph.node if n.op_type == "Reshape" and n.input[0] in reshaped]
    plain, fast = session(plain_model), session(folded)
    rng = np.random.default_rng(0)
    for batch in (1, 2):
        for frames in (1, 2, 5):
            feeds = _feeds(plain, batch, frames, rng)
            for a, b in zip(plain.run(None, feeds), fast.run(None, feeds)):
                assert a.shape == b.shape and np.array_equal(a, b)


def test_a_slice_that_keeps_everything_is_dropped_and_a_partial_one_kept():
    def ints(name, values):
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    nodes = [
        helper.make_node("Slice", ["x", "zero", "big", "one"], ["whole"]),
        helper.make_node("Slice", ["x", "zero", "two", "one"], ["part"]),
        helper.make_node("Relu", ["whole"], ["y"]),
        helper.make_node("Relu", ["part"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes,
        "slices",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "frames"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "z")],
        [ints("zero", [0]), ints("big", [2**62]), ints("two", [2]), ints("one", [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    dropped = drop_whole_slices(copy.deepcopy(model))
    assert [n.op_type for n in dropped.graph.node] == ["Slice", "Relu", "Relu"]
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    for a, b in zip(session(model).run(None, {"x": x}), session(dropped).run(None, {"x": x})):
        assert np.array_equal(a, b)
