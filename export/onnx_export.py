"""torch generator -> one stateful streaming ONNX graph, with its :class:`ModelMetadata` inside.

The graph is ``(conditioning [B, C, T], state_in_0, ...) -> (audio [B, T * hop], state_out_0, ...)`` with
``B`` and ``T`` dynamic (see :mod:`ganvoice.modelmeta`). Weight norm is folded, constants are folded,
the graph is simplified (onnxslim), its convolutions go to ONNX Runtime's 2-D kernels
(:mod:`ganvoice.export.kernel_passes`), and it is checked (``onnx.checker``); opset 17 / IR 8 load in
ONNX Runtime 1.17 and newer (``int8`` weights need a runtime with 8-bit ``MatMulNBits``). Files are
written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from ganvoice import __version__
from ganvoice.errors import GanvoiceError
from ganvoice.export.graph_passes import fold_and_merge
from ganvoice.export.kernel_passes import conv1d_as_conv2d, int8_matmul_weights
from ganvoice.fileio import atomic_write_bytes
from ganvoice.modelmeta import INPUT_NAME, METADATA_KEY, OUTPUT_NAME, ModelMetadata, StateInfo
from ganvoice.models.base import Generator, build_generator, clone_generator, fold_weight_norm

DEFAULT_OPSET = 17
IR_VERSION = 8  # ONNX Runtime 1.17 reads IR <= 9; opset 17 needs IR >= 8
#: Opsets the exporter writes: 17 brings LayerNormalization; IR 8 files hold opsets up to 18.
MIN_OPSET, MAX_OPSET = 17, 18
WEIGHT_TYPES = ("fp32", "fp16", "int8")
FP16_MIN_ELEMENTS = 16  # smaller initializers (shapes, scalars) stay float32


@dataclass(frozen=True)
class ExportOptions:
    opset: int = DEFAULT_OPSET
    simplify: bool = True
    weights: str = "fp32"  # "fp32" | "fp16" | "int8"

    def __post_init__(self) -> None:
        if isinstance(self.opset, bool) or not isinstance(self.opset, int):
            raise GanvoiceError(f"--opset must be an integer, not {self.opset!r}")
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise GanvoiceError(
                f"--opset {self.opset} is not supported: ganvoice exports opset {MIN_OPSET} to {MAX_OPSET} "
                f"(LayerNormalization needs 17; IR {IR_VERSION} files, for ONNX Runtime 1.17+, hold up to 18)"
            )
        if self.weights not in WEIGHT_TYPES:
            raise GanvoiceError(f"--weights must be one of {', '.join(WEIGHT_TYPES)}, not {self.weights!r}")


class _StreamingGraph(nn.Module):
    """``forward(x, *state) -> (audio, *new_state)``: the generator's ``stream`` with a flat signature."""

    def __init__(self, generator: Generator):
        super().__init__()
        self.generator = generator

    def forward(self, x: Tensor, *state: Tensor):
        audio, new_state = self.generator.stream(x, list(state))
        return (audio, *new_state)


def state_infos(generator: Generator) -> tuple[StateInfo, ...]:
    return tuple(
        StateInfo(f"state_in_{i}", f"state_out_{i}", (1, *shape))
        for i, shape in enumerate(generator.state_shapes())
    )


def generator_config_of(generator: Generator) -> dict:
    """The generator's config as plain JSON values (the mel spec travels apart, as ``mel``)."""
    config = getattr(generator, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        return {}
    return {k: v for k, v in dataclasses.asdict(config).items() if k != "mel"}


def build_metadata(
    generator: Generator, *, training_step: int = 0, checkpoint_sha256: str = "", extra: dict | None = None
) -> ModelMetadata:
    config = getattr(generator, "config", None)
    spec = config.spec if config is not None else None
    return ModelMetadata(
        variant=generator.variant,
        sample_rate=spec.sample_rate if spec else 22050,
        hop_length=generator.hop_length,
        conditioning=generator.conditioning,
        channels=generator.channels,
        delay_samples=generator.delay_samples,
        pad_value=float(generator.pad_value),
        state=state_infos(generator),
        mel=spec if generator.conditioning == "mel" else None,
        training_step=int(training_step),
        checkpoint_sha256=checkpoint_sha256,
        ganvoice_version=__version__,
        extra=dict(extra or {}),
    )


def _trace(generator: Generator, opset: int) -> onnx.ModelProto:
    graph = _StreamingGraph(generator).eval()
    infos = state_infos(generator)
    example = torch.randn(1, generator.channels, 3)
    states = generator.init_state(1)
    dynamic = {INPUT_NAME: {0: "batch", 2: "frames"}, OUTPUT_NAME: {0: "batch", 1: "samples"}}
    for info in infos:
        dynamic[info.input] = {0: "batch"}
        dynamic[info.output] = {0: "batch"}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = os.path.join(tmp, "graph.onnx")
        torch.onnx.export(
            graph,
            (example, *states),
            path,
            input_names=[INPUT_NAME, *(i.input for i in infos)],
            output_names=[OUTPUT_NAME, *(i.output for i in infos)],
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
        return onnx.load(path)


def _simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    return onnxslim.slim(model)


def share_identical_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Keep one copy of initializers with equal type, shape and bytes (the tracer copies a constant that is
    used in several places, e.g. the DFT matrices every consistency layer shares); returns ``model``."""
    graph, kept, renamed = model.graph, {}, {}
    for init in list(graph.initializer):
        data = onnx.numpy_helper.to_array(init)
        key = (init.data_type, tuple(init.dims), hashlib.sha256(data.tobytes()).hexdigest())
        if key in kept:
            renamed[init.name] = kept[key]
            graph.initializer.remove(init)
        else:
            kept[key] = init.name
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    return model


def _fp16_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store large float32 initializers as float16, cast back to float32 at load (compute stays fp32)."""
    graph = model.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or np.prod(init.dims) < FP16_MIN_ELEMENTS:
            continue
        array = onnx.numpy_helper.to_array(init).astype(np.float16)
        name = init.name
        init.CopyFrom(onnx.numpy_helper.from_array(array, f"{name}__fp16"))
        casts.append(onnx.helper.make_node("Cast", [f"{name}__fp16"], [name], to=onnx.TensorProto.FLOAT))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return model


def _finalize(model: onnx.ModelProto, metadata: ModelMetadata) -> onnx.ModelProto:
    ModelMetadata.from_json(metadata.to_json(), source="export")  # the runtime's strict check
    model.ir_version = IR_VERSION
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata.to_json()
    model.producer_name, model.producer_version = "ganvoice", __version__
    onnx.checker.check_model(model)
    return model


def save_onnx_atomically(model: onnx.ModelProto, path: str | os.PathLike) -> None:
    atomic_write_bytes(path, model.SerializeToString())


def to_onnx(
    generator: Generator,
    *,
    training_step: int = 0,
    checkpoint_sha256: str = "",
    options: ExportOptions = ExportOptions(),
) -> tuple[onnx.ModelProto, ModelMetadata]:
    """Trace ``generator`` (a copy, weight norm folded) into a checked streaming ONNX model."""
    folded = fold_weight_norm(clone_generator(generator)).eval().float()
    model = _trace(folded, options.opset)
    if options.simplify:
        model = fold_and_merge(_simplify(model))
    model = conv1d_as_conv2d(share_identical_initializers(model))
    if options.weights == "fp16":
        model = _fp16_weights(model)
    elif options.weights == "int8":
        model = int8_matmul_weights(model)
    extra = {
        "opset": options.opset,
        "weights": options.weights,
        "parameters": generator.describe()["parameters"],
        "generator_config": generator_config_of(generator),
    }
    metadata = build_metadata(
        generator, training_step=training_step, checkpoint_sha256=checkpoint_sha256, extra=extra
    )
    return _finalize(model, metadata), metadata


def export_generator(
    generator: Generator,
    path: str | os.PathLike,
    *,
    training_step: int = 0,
    checkpoint_sha256: str = "",
    opset: int = DEFAULT_OPSET,
    options: ExportOptions | None = None,
) -> ModelMetadata:
    """Export ``generator`` to ``path`` (atomically); returns the metadata written into the file."""
    options = options or ExportOptions(opset=opset)
    model, metadata = to_onnx(
        generator, training_step=training_step, checkpoint_sha256=checkpoint_sha256, options=options
    )
    save_onnx_atomically(model, path)
    return metadata


def export_variant(
    variant: str, path: str | os.PathLike, *, seed: int = 0, overrides: dict | None = None, **kwargs
) -> ModelMetadata:
    """Export a registered variant with random weights (for speed work and tests)."""
    torch.manual_seed(seed)
    return export_generator(build_generator(variant, overrides), path, **kwargs)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
