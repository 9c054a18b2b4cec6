"""Graph passes that cut the per-call cost of a streaming graph without changing what it computes.

A traced streaming layer slices its new state as ``full[..., len(full) - k:]`` and reshapes with sizes
read from the input (``Shape -> Gather -> Sub -> Unsqueeze -> Slice``): a chain of small nodes that ONNX
Runtime runs on every call although the answer is always "the last ``k``". With ONNX Runtime's symbolic
shape inference (sizes as expressions of ``batch`` and ``frames``):

- a ``Slice`` bound that equals ``size_of_that_axis + c`` becomes the constant ``c`` (``c < 0``) or "to
  the end"; a bound that is a plain number becomes that number;
- a ``Reshape`` target whose entries equal the input's own sizes becomes ``0`` (copy) / ``-1`` (the rest);
- an ``If`` whose condition is known (``squeeze`` of a size that is always 1) is replaced by its branch;
- nodes nothing reads any more are dropped.

:func:`merge_chained_slices` then turns ``Slice -> Slice`` on different axes (``x[:, a:b, c:d]`` traces as
two nodes) into one ``Slice`` once their bounds are constants; :func:`merge_chained_reshapes` does the same
for ``Reshape -> Reshape``; :func:`bypass_slices_of_concats` lets a ``Slice`` of whole ``Concat`` inputs
read them directly; :func:`cancel_transposes_around_slices` removes ``Transpose -> Slice -> Transpose⁻¹``;
:func:`drop_whole_slices` removes slices that keep everything. :func:`fold_and_merge` runs them all.

Each rewrite is the same arithmetic for every ``batch`` and ``frames`` (same ops, same order), so the
output is bit-identical; :func:`fold_shape_arithmetic` returns the model unchanged if inference fails.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

INT_MAX = 2**63 - 1


def _constants(model: onnx.ModelProto) -> dict[str, object]:
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _infer(model: onnx.ModelProto):
    """ONNX Runtime's symbolic shape inference: ``(sympy values of shape tensors, shape of a tensor)``."""
    import sympy
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    ssi = SymbolicShapeInference(int_max=INT_MAX, auto_merge=False, guess_output_rank=False, verbose=0)
    ssi._preprocess(model)
    while ssi.run_:
        ssi._infer_impl()
    symbols = dict(ssi.symbolic_dims_)

    def shape(name: str):
        info = ssi.known_vi_.get(name)
        if info is None or not info.type.tensor_type.HasField("shape"):
            return None
        dims = []
        for d in info.type.tensor_type.shape.dim:
            if d.HasField("dim_value"):
                dims.append(sympy.Integer(d.dim_value))
            elif d.dim_param:
                dims.append(sympy.sympify(d.dim_param, locals=symbols))
            else:
                return None
        return dims

    return ssi.sympy_data_, shape


def _as_list(value) -> list | None:
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _is_int(expr) -> bool:
    import sympy

    return isinstance(sympy.sympify(expr), sympy.Integer)


def _slice_bound(value, size, is_start: bool):
    """The constant equivalent of a Slice bound ``value`` on an axis of length ``size``, or None."""
    import sympy

    if _is_int(value):
        return int(value)
    if size is None:
        return None
    offset = sympy.simplify(sympy.sympify(value) - size)
    if not isinstance(offset, sympy.Integer):
        return None
    offset = int(offset)
    if offset < 0:
        return offset
    return INT_MAX  # at or past the end: clamped to the end either way (empty for a start)


def fold_shape_arithmetic(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its shape arithmetic folded (see the module docstring); unchanged on failure."""
    try:
        data, shape = _infer(onnx.shape_inference.infer_shapes(model))
    except Exception:  # noqa: BLE001 -- an optimisation: a graph inference cannot follow stays as it is
        return model
    graph = model.graph
    constants = _constants(model)
    new_inits: list[onnx.TensorProto] = []

    def constant(values: list[int], hint: str) -> str:
        name = f"{hint}__folded"
        index = 0
        while name in constants:
            index += 1
            name = f"{hint}__folded{index}"
        array = numpy_helper.from_array(np.array(values, dtype=np.int64), name)
        constants[name] = values
        new_inits.append(array)
        return name

    replaced: dict[int, onnx.NodeProto | list[onnx.NodeProto]] = {}
    for index, node in enumerate(graph.node):
        if node.op_type == "Slice" and len(node.input) >= 4:
            _fold_slice(node, data, shape, constants, constant)
        elif node.op_type == "Reshape":
            _fold_reshape(node, data, shape, constants, constant)
        elif node.op_type == "If":
            branch = _known_branch(node, data, constants)
            if branch is not None:
                replaced[index] = branch
    if replaced:
        nodes = []
        for index, node in enumerate(graph.node):
            if index not in replaced:
                nodes.append(node)
                continue
            branch = replaced[index]
            local = {}  # the branch's initializers, renamed where the outer graph has the name
            for init in branch.initializer:
                local[init.name] = constant(numpy_helper.to_array(init).tolist(), init.name)
                new_inits[-1].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init), local[init.name]))
            inner = list(branch.node)
            renames = {o.name: outer for o, outer in zip(branch.output, node.output)}
            made = {o for n in inner for o in n.output}
            for inner_node in inner:
                inner_node.input[:] = [local.get(i, i) for i in inner_node.input]
                inner_node.output[:] = [renames.get(o, o) for o in inner_node.output]
                nodes.append(inner_node)
            for o, outer in renames.items():  # a branch output that is an outer name passes through
                if o not in made:
                    nodes.append(onnx.helper.make_node("Identity", [o], [outer]))
        del graph.node[:]
        graph.node.extend(nodes)
    graph.initializer.extend(new_inits)
    _drop_dead(model)
    return model


def _fold_slice(node, data, shape, constants, constant) -> None:
    starts, ends = node.input[1], node.input[2]
    axes = constants.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    steps = constants.get(node.input[4]) if len(node.input) > 4 and node.input[4] else None
    if axes is None or (steps is not None and any(int(s) != 1 for s in _as_list(steps.tolist()))):
        return
    axes = [int(a) for a in _as_list(axes.tolist())]
    dims = shape(node.input[0])
    for position, is_start in ((1, True), (2, False)):
        name = (starts, ends)[position - 1]
        if name in constants:
            continue
        values = _as_list(data.get(name))
        if values is None or len(values) != len(axes):
            continue
        folded = []
        for value, axis in zip(values, axes):
            size = None if dims is None else dims[axis]
            bound = _slice_bound(value, size, is_start)
            if bound is None:
                break
            folded.append(bound)
        else:
            node.input[position] = constant(folded, name)


def _fold_reshape(node, data, shape, constants, constant) -> None:
    import sympy

    target = node.input[1]
    if target in constants or any(a.name == "allowzero" and a.i for a in node.attribute):
        return
    values = _as_list(data.get(target))
    dims = shape(node.input[0])
    if values is None or dims is None:
        return
    out, unknown = [], 0
    for i, value in enumerate(values):
        if i < len(dims) and sympy.simplify(sympy.sympify(value) - dims[i]) == 0:
            out.append(0)
        elif _is_int(value) and int(value) > 0:
            out.append(int(value))
        else:
            out.append(-1)
            unknown += 1
    if unknown <= 1:
        node.input[1] = constant(out, target)


def _known_branch(node, data, constants):
    cond = node.input[0]
    value = constants.get(cond)
    value = value.tolist() if value is not None else data.get(cond)
    value = _as_list(value)
    if value is None or len(value) != 1 or not isinstance(value[0], (bool, int)):
        return None
    branch = "then_branch" if bool(value[0]) else "else_branch"
    graph = next(a.g for a in node.attribute if a.name == branch)
    if any(n.op_type in ("If", "Loop", "Scan") for n in graph.node):
        return None
    return graph


def _drop_dead(model: onnx.ModelProto) -> None:
    graph = model.graph
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
            for attribute in node.attribute:  # names a subgraph reads from the outer scope
                if attribute.type == onnx.AttributeProto.GRAPH:
                    needed.update(i for n in attribute.g.node for i in n.input if i)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def _slice_parts(node: onnx.NodeProto, constants: dict, rank: int | None) -> dict[int, tuple] | None:
    """``{axis: (start, end, step)}`` of a ``Slice`` with constant inputs (axes made non-negative), or
    None."""
    inputs = list(node.input) + [""] * (5 - len(node.input))
    if any(name and name not in constants for name in inputs[1:]):
        return None
    starts, ends = (_as_list(np.asarray(constants[name]).tolist()) for name in inputs[1:3])
    axes = _as_list(np.asarray(constants[inputs[3]]).tolist()) if inputs[3] else list(range(len(starts)))
    steps = _as_list(np.asarray(constants[inputs[4]]).tolist()) if inputs[4] else [1] * len(starts)
    if any(a < 0 for a in axes):
        if rank is None:
            return None
        axes = [a % rank for a in axes]
    if len(set(axes)) != len(axes):
        return None
    return {int(a): (int(b), int(e), int(t)) for a, b, e, t in zip(axes, starts, ends, steps)}


def merge_chained_slices(model: onnx.ModelProto) -> onnx.ModelProto:
    """``Slice(Slice(x))`` on disjoint axes as one ``Slice`` of ``x`` (the same elements in the same order:
    bit-identical); an inner ``Slice`` that nothing reads any more is dropped. Returns ``model``."""
    ranks = {name: len(shape) for name, shape in _static_shapes(model).items()}  # for negative axes
    graph, constants = model.graph, _constants(model)
    producers = {node.output[0]: node for node in graph.node if node.op_type == "Slice"}
    new_inits, merged = [], 0
    for node in graph.node:
        inner = producers.get(node.input[0]) if node.op_type == "Slice" else None
        if inner is None:
            continue
        rank = ranks.get(inner.input[0])
        outer_parts, inner_parts = _slice_parts(node, constants, rank), _slice_parts(inner, constants, rank)
        if outer_parts is None or inner_parts is None or set(outer_parts) & set(inner_parts):
            continue
        parts = {**inner_parts, **outer_parts}
        columns = {
            "starts": [parts[a][0] for a in parts],
            "ends": [parts[a][1] for a in parts],
            "axes": list(parts),
            "steps": [parts[a][2] for a in parts],
        }
        names = []
        for label, values in columns.items():
            name = f"{node.output[0]}__merged_{label}"
            new_inits.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
            constants[name] = np.array(values, dtype=np.int64)
            names.append(name)
        node.input[:] = [inner.input[0], *names]
        merged += 1
    if merged:
        graph.initializer.extend(new_inits)
        _drop_dead(model)
    return model


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Each tensor's shape from ONNX shape inference (``None`` for a symbolic size)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 -- no shapes: the passes that need them leave the graph alone
        inferred = model
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    for info in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        if info.type.tensor_type.HasField("shape"):
            dims = info.type.tensor_type.shape.dim
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shapes


def _read_counts(graph: onnx.GraphProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            counts[name] = counts.get(name, 0) + 1
    for out in graph.output:  # a graph output is read from outside
        counts[out.name] = counts.get(out.name, 0) + 1
    return counts


def _whole_inputs(sizes: list[int | None], start: int, end: int) -> tuple[int, int] | None:
    """``(i, j)``: inputs ``i .. j - 1`` of a concatenation of pieces of ``sizes`` are exactly
    ``[start, end)``; None if no whole inputs are."""
    offsets = [0]
    for size in sizes:
        if size is None:
            break
        offsets.append(offsets[-1] + size)
    total = offsets[-1] if len(offsets) == len(sizes) + 1 else None
    if start < 0 or end < 0:
        if total is None:
            return None
        start, end = start % total if start < 0 else start, total + end if end < 0 else end
    if total is not None:
        end = min(end, total)
    if start not in offsets or end not in offsets or end <= start:
        return None
    return offsets.index(start), offsets.index(end)


def bypass_slices_of_concats(model: onnx.ModelProto) -> onnx.ModelProto:
    """A ``Slice`` that takes whole inputs of a ``Concat`` along its axis reads them directly (one input:
    its readers read that input; several: a ``Concat`` of just those), repeated until nothing changes (a
    rewrite can make a new one possible). Bit-identical; returns ``model``."""
    while _bypass_once(model):
        pass
    return model


def _bypass_once(model: onnx.ModelProto) -> bool:
    graph, constants, shapes = model.graph, _constants(model), _static_shapes(model)
    concats = {node.output[0]: node for node in graph.node if node.op_type == "Concat"}
    outputs = {out.name for out in graph.output}
    renames: dict[str, str] = {}
    changed = False
    for node in graph.node:
        concat = concats.get(node.input[0]) if node.op_type == "Slice" else None
        rank = len(shapes.get(node.input[0]) or []) or None
        parts = _slice_parts(node, constants, rank) if concat is not None and rank else None
        axis = next((a.i for a in concat.attribute if a.name == "axis"), 0) % rank if parts else None
        if parts is None or set(parts) != {axis} or parts[axis][2] != 1:
            continue
        sizes = [(shapes.get(name) or [None] * rank)[axis] for name in concat.input]
        span = _whole_inputs(sizes, parts[axis][0], parts[axis][1])
        if span is None:
            continue
        first, stop = span
        changed = True
        if stop - first == 1 and node.output[0] not in outputs:
            renames[node.output[0]] = concat.input[first]
        else:
            node.op_type, node.input[:] = "Concat", list(concat.input[first:stop])
            del node.attribute[:]
            node.attribute.append(onnx.helper.make_attribute("axis", axis))
    _read_through(model, renames)
    return changed


def _read_through(model: onnx.ModelProto, renames: dict[str, str]) -> None:
    """Readers of each key of ``renames`` read its value instead; nodes left unread are dropped."""
    for node in model.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
    _drop_dead(model)


def cancel_transposes_around_slices(model: onnx.ModelProto) -> onnx.ModelProto:
    """``Transpose(p) -> Slice -> Transpose(p⁻¹)``, each read only by the next, as one ``Slice`` of the
    untransposed tensor on the matching axes (bit-identical). Returns ``model``."""
    graph, constants = model.graph, _constants(model)
    producers = {node.output[0]: node for node in graph.node}
    reads = _read_counts(graph)
    changed = False
    for node in graph.node:
        middle = producers.get(node.input[0]) if node.op_type == "Transpose" else None
        first = producers.get(middle.input[0]) if middle is not None and middle.op_type == "Slice" else None
        if first is None or first.op_type != "Transpose":
            continue
        if reads[first.output[0]] != 1 or reads[middle.output[0]] != 1:
            continue
        perm = next((list(a.ints) for a in first.attribute if a.name == "perm"), None)
        back = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        if perm is None or back is None or [perm[b] for b in back] != list(range(len(perm))):
            continue
        parts = _slice_parts(middle, constants, len(perm))
        if parts is None:
            continue
        values = [(perm[axis], *bounds) for axis, bounds in parts.items()]  # transposed axis a = perm[a]
        names = []
        for column, label in enumerate(("axes", "starts", "ends", "steps")):
            name = f"{node.output[0]}__untransposed_{label}"
            column_values = np.array([v[column] for v in values], np.int64)
            graph.initializer.append(numpy_helper.from_array(column_values, name))
            names.append(name)
        axes, starts, ends, steps = names
        node.op_type, node.input[:] = "Slice", [first.input[0], starts, ends, axes, steps]
        del node.attribute[:]
        changed = True
    if changed:
        _drop_dead(model)
    return model


def _allows_zero(node: onnx.NodeProto) -> bool:
    return any(a.name == "allowzero" and a.i for a in node.attribute)


def merge_chained_reshapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """``Reshape(Reshape(x, a), b)``, the inner read only by the outer, as ``Reshape(x, b)`` when ``b`` is
    constant and each of its ``0`` (copy) entries sits where ``a`` copies too (a reshape keeps the element
    order, so only the final shape matters: bit-identical). Returns ``model``."""
    graph, constants = model.graph, _constants(model)
    producers = {node.output[0]: node for node in graph.node if node.op_type == "Reshape"}
    reads = _read_counts(graph)
    changed = False
    for node in graph.node:
        inner = producers.get(node.input[0]) if node.op_type == "Reshape" else None
        if inner is None or reads[inner.output[0]] != 1 or _allows_zero(node) or _allows_zero(inner):
            continue
        outer_shape, inner_shape = constants.get(node.input[1]), constants.get(inner.input[1])
        if outer_shape is None or inner_shape is None:
            continue
        outer_shape, inner_shape = (
            _as_list(np.asarray(outer_shape).tolist()),
            _as_list(np.asarray(inner_shape).tolist()),
        )
        copies = [i for i, size in enumerate(outer_shape) if size == 0]
        if any(i >= len(inner_shape) or inner_shape[i] != 0 for i in copies):
            continue
        node.input[0] = inner.input[0]
        changed = True
    if changed:
        _drop_dead(model)
    return model


def drop_whole_slices(model: onnx.ModelProto) -> onnx.ModelProto:
    """A ``Slice`` that keeps every element (start 0, end past the axis's static size, step 1 on each of its
    axes) is dropped: its readers read its input (a graph output keeps it). Returns ``model``."""
    graph, constants, shapes = model.graph, _constants(model), _static_shapes(model)
    outputs = {out.name for out in graph.output}
    renames: dict[str, str] = {}
    for node in graph.node:
        sizes = shapes.get(node.input[0]) if node.op_type == "Slice" else None
        parts = _slice_parts(node, constants, len(sizes)) if sizes else None
        if parts is None or node.output[0] in outputs or any(not 0 <= a < len(sizes) for a in parts):
            continue
        if all(
            sizes[axis] is not None and start == 0 and end >= sizes[axis] and step == 1
            for axis, (start, end, step) in parts.items()
        ):
            renames[node.output[0]] = renames.get(node.input[0], node.input[0])
    if renames:
        _read_through(model, renames)
    return model


def fold_and_merge(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every pass of this module, in order (each bit-identical); returns ``model``."""
    model = merge_chained_reshapes(merge_chained_slices(fold_shape_arithmetic(model)))
    return drop_whole_slices(cancel_transposes_around_slices(bypass_slices_of_concats(model)))
