"""Small generators traced to ONNX, shared by the graph-pass and kernel-pass tests."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch

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


def traced(case: str, lively: bool = False) -> onnx.ModelProto:
    """The case's generator (seed 0, weight norm folded) traced and simplified, before any of our passes.
    ``lively``: weights large enough that every layer matters (default inits are tiny)."""
    variant, overrides = CASES[case]
    torch.manual_seed(0)
    generator = fold_weight_norm(build_generator(variant, overrides)).eval()
    if lively:
        with torch.no_grad():
            for parameter in generator.parameters():
                if parameter.dim() > 1:
                    parameter.normal_(0.0, 1.0 / np.sqrt(parameter[0].numel()))
    return _simplify(_trace(generator, 17))


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
