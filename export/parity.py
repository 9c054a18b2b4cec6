"""Parity checks of an exported graph in ONNX Runtime: against torch, and streaming against offline."""

from __future__ import annotations

import numpy as np
import torch

from ganvoice.models.base import Generator
from ganvoice.onnxgraph import OnnxGenerator


def example_input(generator: Generator, frames: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    """A deterministic conditioning input: log-mel-like values for mel models, N(0, 1) for noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, generator.channels, frames)).astype(np.float32)
    return (x * 2.0 - 6.0).astype(np.float32) if generator.conditioning == "mel" else x


@torch.no_grad()
def torch_vs_ort(generator: Generator, path: str, frames: int = 24, batch: int = 1) -> float:
    """Max abs difference between torch's offline forward and ORT's offline run."""
    x = example_input(generator, frames, batch)
    reference = generator.eval()(torch.from_numpy(x)).numpy()
    return float(np.abs(OnnxGenerator(path).offline(x) - reference).max())
