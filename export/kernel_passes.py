"""Graph rewrites that send a streaming graph's weighted ops to faster ONNX Runtime CPU kernels.

A one-frame streaming call multiplies one row by every weight (a GEMV), so it is bound by moving the
weights and by each kernel's fixed cost, not by arithmetic (``benchmarks/results/per-call-*.md``):

- :func:`conv1d_as_conv2d`: ``Conv`` over ``[B, C, T]`` becomes ``Unsqueeze -> Conv`` over
  ``[B, C, 1, T]`` ``-> Squeeze``. ONNX Runtime runs 2-D convolutions through its blocked (NCHWc)
  kernels, which do a depthwise convolution of one frame ~3x faster than its 1-D path. Same products,
  other summation order: outputs move by float rounding only (~1e-7 relative).
- :func:`int8_matmul_weights`: ``MatMul`` by a constant ``[K, N]`` weight becomes ONNX Runtime's
  ``com.microsoft.MatMulNBits`` with 8-bit weights: symmetric scales per block of ``block_size`` along
  ``K``, activations quantized per row and block inside the kernel (``accuracy_level`` 4). A quarter of
  the bytes to move; every row is computed on its own, so chunked == offline still holds (up to float
  rounding). Lossy: the weights carry ~7 bits.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

CONTRIB_DOMAIN = "com.microsoft"
#: Weights along K per int8 scale (MatMulNBits takes a power of two >= 16).
INT8_BLOCK = 64
INT8_BITS = 8
#: MatMulNBits' accuracy_level 4: int8 activations (per row and block), int32 sums. Level 0 (float
#: activations) has no fast 8-bit path in ONNX Runtime 1.31's CPU kernels (~8x slower here).
INT8_ACCURACY_LEVEL = 4


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {init.name: init for init in model.graph.initializer}


def _unique_name(taken: set[str], hint: str) -> str:
    name, index = hint, 0
    while name in taken:
        index += 1
        name = f"{hint}{index}"
    taken.add(name)
    return name


def _names_read(node: onnx.NodeProto) -> set[str]:
    """Inputs of ``node`` and of the subgraphs in its attributes (which may read outer names)."""
    names = set(node.input)
    for attribute in node.attribute:
        if attribute.type == onnx.AttributeProto.GRAPH:
            names.update(name for inner in attribute.g.node for name in _names_read(inner))
    return names


def _replace_nodes(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> None:
    """Install ``nodes`` and drop initializers no node reads any more."""
    graph = model.graph
    del graph.node[:]
    graph.node.extend(nodes)
    read = {name for node in nodes for name in _names_read(node)} | {out.name for out in graph.output}
    kept = [init for init in graph.initializer if init.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _conv2d_attributes(node: onnx.NodeProto) -> dict | None:
    """The 2-D attributes of a 1-D ``Conv`` (a leading axis of size 1), or None if it cannot move."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or "kernel_shape" not in attrs:
        return None
    (kernel,) = attrs["kernel_shape"]
    begin, end = attrs.get("pads", [0, 0])
    return {
        "group": attrs.get("group", 1),
        "kernel_shape": [1, kernel],
        "dilations": [1, attrs.get("dilations", [1])[0]],
        "strides": [1, attrs.get("strides", [1])[0]],
        "pads": [0, begin, 0, end],
    }


def conv1d_as_conv2d(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every 1-D ``Conv`` with a constant ``[C_out, C_in / group, k]`` weight as a 2-D one; returns
    ``model``."""
    inits = _initializers(model)
    taken = set(inits) | {name for node in model.graph.node for name in (*node.input, *node.output)}
    axis = _unique_name(taken, "conv2d_axis")
    nodes, moved = [], 0
    for node in model.graph.node:
        weight = inits.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        attributes = _conv2d_attributes(node) if weight is not None and len(weight.dims) == 3 else None
        if attributes is None:
            nodes.append(node)
            continue
        weight_2d = _unique_name(taken, f"{weight.name}__2d")
        kernel = numpy_helper.to_array(weight)
        model.graph.initializer.append(numpy_helper.from_array(kernel[:, :, None, :], weight_2d))
        x4, y4 = _unique_name(taken, f"{node.output[0]}__x4"), _unique_name(taken, f"{node.output[0]}__y4")
        nodes += [
            helper.make_node("Unsqueeze", [node.input[0], axis], [x4]),
            helper.make_node("Conv", [x4, weight_2d, *node.input[2:]], [y4], name=node.name, **attributes),
            helper.make_node("Squeeze", [y4, axis], [node.output[0]]),
        ]
        moved += 1
    if moved:
        model.graph.initializer.append(numpy_helper.from_array(np.array([2], np.int64), axis))
        _replace_nodes(model, nodes)
    return model


def quantize_int8_blocks(weight: np.ndarray, block_size: int = INT8_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """``[K, N]`` float weight -> (codes ``uint8 [N, K_blocks, block_size]``, scales
    ``float32 [N * K_blocks]``).

    Symmetric per block along ``K`` (K zero-padded to whole blocks): ``w ≈ (code - 128) * scale``, codes in
    1..255, as MatMulNBits reads them with its default zero point.
    """
    k, n = weight.shape
    blocks = -(-k // block_size)
    padded = np.zeros((blocks * block_size, n), np.float32)
    padded[:k] = weight
    grouped = padded.T.reshape(n, blocks, block_size)
    limit = 2 ** (INT8_BITS - 1) - 1
    scales = np.abs(grouped).max(axis=-1) / limit
    scales[scales == 0] = 1.0
    codes = np.clip(np.rint(grouped / scales[..., None]), -limit, limit) + 2 ** (INT8_BITS - 1)
    return codes.astype(np.uint8), scales.astype(np.float32).reshape(-1)


def _last_axis_vector(value: np.ndarray | None, size: int) -> np.ndarray | None:
    """``value`` as a ``[size]`` vector if it broadcasts along the last axis only, else None."""
    if value is None or value.size != size or (value.ndim and value.shape[-1] != size):
        return None
    return value.reshape(size).astype(np.float32)


def _readers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """Name -> the nodes that read it (a graph output also counts as read, by ``None``)."""
    readers: dict[str, list] = {}
    for node in model.graph.node:
        for name in _names_read(node):
            readers.setdefault(name, []).append(node)
    for out in model.graph.output:
        readers.setdefault(out.name, []).append(None)
    return readers


def _fold_bias_and_scale(
    node: onnx.NodeProto, weight: np.ndarray, readers: dict, inits: dict
) -> tuple[np.ndarray, np.ndarray | None, str, list[onnx.NodeProto]]:
    """``MatMul -> Add(bias) [-> Mul(scale)]`` with constant vectors over the output axis, when each is
    the only reader of the previous output: ``(weight * scale, bias * scale, last output, folded nodes)``.
    """

    def sole_reader(name: str, op_type: str) -> tuple[onnx.NodeProto, np.ndarray] | None:
        found = readers.get(name, [])
        if len(found) != 1 or found[0] is None or found[0].op_type != op_type:
            return None
        other = [i for i in found[0].input if i != name]
        constant = inits.get(other[0]) if len(other) == 1 else None
        vector = _last_axis_vector(
            numpy_helper.to_array(constant) if constant is not None else None, weight.shape[1]
        )
        return (found[0], vector) if vector is not None else None

    bias, output, folded = None, node.output[0], []
    added = sole_reader(output, "Add")
    if added is not None:
        add_node, bias = added
        output, folded = add_node.output[0], [add_node]
        scaled = sole_reader(output, "Mul")
        if scaled is not None:
            mul_node, scale = scaled
            weight, bias = weight * scale, bias * scale
            output, folded = mul_node.output[0], [add_node, mul_node]
    return weight, bias, output, folded


def int8_matmul_weights(model: onnx.ModelProto, block_size: int = INT8_BLOCK) -> onnx.ModelProto:
    """Every ``MatMul(x, W)`` with a constant 2-D ``W`` as an 8-bit ``MatMulNBits``; a bias ``Add`` and a
    per-output ``Mul`` that follow (a ConvNeXt block's ``pwconv2`` and layer scale) are folded into its
    weights and bias input. Returns ``model``."""
    inits = _initializers(model)
    taken = set(inits) | {name for node in model.graph.node for name in (*node.input, *node.output)}
    nodes, folded_away, moved, readers = [], set(), 0, _readers(model)
    for node in model.graph.node:
        if node.output[0] in folded_away:
            continue
        weight = inits.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or len(weight.dims) != 2 or weight.data_type != onnx.TensorProto.FLOAT:
            nodes.append(node)
            continue
        k, n = weight.dims
        array = numpy_helper.to_array(weight)
        values, bias, output, folded = _fold_bias_and_scale(node, array, readers, inits)
        folded_away.update(f.output[0] for f in folded)
        codes, scales = quantize_int8_blocks(values, block_size)
        inputs = [node.input[0], _unique_name(taken, f"{weight.name}__int8")]
        inputs.append(_unique_name(taken, f"{weight.name}__scales"))
        arrays = [codes, scales]
        if bias is not None:  # MatMulNBits: A, B, scales, zero_points, g_idx, bias
            inputs += ["", "", _unique_name(taken, f"{weight.name}__bias")]
            arrays.append(bias)
        model.graph.initializer.extend(
            numpy_helper.from_array(array, name) for array, name in zip(arrays, (i for i in inputs[1:] if i))
        )
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                inputs,
                [output],
                name=node.name,
                domain=CONTRIB_DOMAIN,
                K=k,
                N=n,
                bits=INT8_BITS,
                block_size=block_size,
                accuracy_level=INT8_ACCURACY_LEVEL,
            )
        )
        moved += 1
    if moved:
        _replace_nodes(model, nodes)
        if not any(entry.domain == CONTRIB_DOMAIN for entry in model.opset_import):
            model.opset_import.append(helper.make_opsetid(CONTRIB_DOMAIN, 1))
    return model
