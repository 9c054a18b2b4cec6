"""Parity checks of an exported graph in ONNX Runtime: against torch, and streaming against offline."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from ganvoice.modelmeta import INPUT_NAME, METADATA_KEY, ModelMetadata
from ganvoice.models.base import Generator


class OrtGraph:
    """A ganvoice ONNX file in ONNX Runtime (CPU, one thread): zero state, ``stream`` and ``offline``."""

    def __init__(self, path: str, threads: int = 1):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ModelMetadata.from_json(meta[METADATA_KEY], source=str(path))

    def zero_state(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, *s.shape[1:]), dtype=np.float32) for s in self.metadata.state]

    def stream(self, x: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """``x [B, C, T]`` -> ``(audio [B, T * hop], new state)``."""
        feeds = {INPUT_NAME: x, **{s.input: v for s, v in zip(self.metadata.state, state)}}
        audio, *new_state = self.session.run(None, feeds)
        return audio, new_state

    def flush_frames(self, batch: int) -> np.ndarray:
        meta = self.metadata
        return np.full((batch, meta.channels, meta.lookahead_frames), meta.pad_value, dtype=np.float32)

    def offline(self, x: np.ndarray) -> np.ndarray:
        """Whole input from the zero state, then the flush; aligned with the input: ``[B, T * hop]``."""
        padded = np.concatenate([x, self.flush_frames(x.shape[0])], axis=-1)
        audio, _ = self.stream(padded, self.zero_state(x.shape[0]))
        delay = self.metadata.delay_samples
        return audio[:, delay : delay + x.shape[-1] * self.metadata.hop_length]

    def chunked(self, x: np.ndarray, chunk_sizes: list[int]) -> np.ndarray:
        """Stream ``x`` (+ flush) in chunks of the given sizes (cycled); aligned like :meth:`offline`."""
        padded = np.concatenate([x, self.flush_frames(x.shape[0])], axis=-1)
        state, outputs, start, i = self.zero_state(x.shape[0]), [], 0, 0
        while start < padded.shape[-1]:
            size = chunk_sizes[i % len(chunk_sizes)]
            audio, state = self.stream(padded[..., start : start + size], state)
            outputs.append(audio)
            start, i = start + size, i + 1
        delay = self.metadata.delay_samples
        return np.concatenate(outputs, axis=-1)[:, delay : delay + x.shape[-1] * self.metadata.hop_length]


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
    return float(np.abs(OrtGraph(path).offline(x) - reference).max())
