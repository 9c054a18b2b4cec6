"""What the benchmarks time: an offline ONNX Runtime run, a torch eager run, and the player's block step.

Each runner is built (sessions opened, inputs made) before timing starts; calling it runs the timed work.
"""

from __future__ import annotations

import time

import numpy as np

from ganvoice.bench.models import ORIGIN_RANDOM, BenchModel
from ganvoice.modelmeta import INPUT_NAME, OUTPUT_NAME
from ganvoice.onnxgraph import SPINNING_KEY
from ganvoice.realtime.blockstep import BlockStep
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.model import open_model
from ganvoice.realtime.sources import MelSource

#: Output channels of the emulated audio callback (a stereo device, as the player uses).
CALLBACK_CHANNELS = 2
#: Blocks of room in the emulated buffered-mode ring.
RING_BLOCKS = 4
MS = 1000.0


def session_settings(session) -> dict:
    """The ONNX Runtime session settings a runner really used (threads, mode, optimisation, spinning)."""
    options = session.get_session_options()
    return {
        "intra_op_threads": options.intra_op_num_threads,
        "inter_op_threads": options.inter_op_num_threads,
        "execution_mode": str(options.execution_mode).rsplit(".", 1)[-1],
        "graph_optimization": str(options.graph_optimization_level).rsplit(".", 1)[-1],
        "allow_spinning": options.get_session_config_entry(SPINNING_KEY),
        "providers": session.get_providers(),
    }


def audio_seconds(model: BenchModel, frames: np.ndarray) -> float:
    return frames.shape[1] * model.metadata.hop_length / model.metadata.sample_rate


def padded_input(model: BenchModel, frames: np.ndarray) -> np.ndarray:
    """``[1, C, T + flush_length]``: the frames and the flush, as an offline run takes them."""
    padded = np.concatenate([frames, model.metadata.flush_frames()], axis=1)
    return np.ascontiguousarray(padded[None], dtype=np.float32)


class OrtOffline:
    """The whole input in one ONNX Runtime call from the zero state (what an offline render does)."""

    runtime = "onnxruntime"

    def __init__(self, model: BenchModel, frames: np.ndarray, provider: str, threads: int):
        opened = open_model(model.path, provider, threads)
        self.session, self.provider, self.threads = opened.session, opened.provider, threads
        self.audio_seconds = audio_seconds(model, frames)
        meta = model.metadata
        self.feeds = {INPUT_NAME: padded_input(model, frames)}
        self.feeds.update({s.input: np.zeros(s.shape, np.float32) for s in meta.state})

    def __call__(self) -> None:
        self.session.run([OUTPUT_NAME], self.feeds)


class TorchEager:
    """The same generator in PyTorch eager mode (``forward`` = the streaming path in one call), CPU.

    Only for variants exported here with random weights: the same seed gives the same weights.
    """

    runtime = "torch"
    provider = "cpu"

    def __init__(self, model: BenchModel, frames: np.ndarray, threads: int):
        import torch

        from ganvoice.models.base import build_generator, fold_weight_norm

        self._torch, self.threads = torch, threads
        torch.manual_seed(model.seed or 0)
        self.generator = fold_weight_norm(build_generator(model.variant, model.overrides)).eval()
        self.x = torch.from_numpy(np.ascontiguousarray(frames[None]))
        self.audio_seconds = audio_seconds(model, frames)
        self._saved_threads = torch.get_num_threads()

    @staticmethod
    def supports(model: BenchModel) -> bool:
        return model.origin == ORIGIN_RANDOM

    def prepare(self) -> None:
        self._torch.set_num_threads(self.threads)

    def __call__(self) -> None:
        with self._torch.inference_mode():
            self.generator(self.x)

    def finish(self) -> None:
        self._torch.set_num_threads(self._saved_threads)


def timed(run) -> float:
    """Wall seconds of one call of ``run`` (with its untimed ``prepare``/``finish`` around it)."""
    if hasattr(run, "prepare"):
        run.prepare()
    start = time.perf_counter()
    run()
    elapsed = time.perf_counter() - start
    if hasattr(run, "finish"):
        run.finish()
    return elapsed


class BlockTimer:
    """Times the player's own block step (:class:`~ganvoice.realtime.blockstep.BlockStep`), no device.

    ``callback`` mode: each block is one :meth:`BlockStep.play` into a (stereo) output, as the player's
    audio callback runs it. ``buffered`` mode: the worker's :meth:`BlockStep.render`, then the callback's
    :meth:`BlockStep.play` from the ring. ``compute_ms`` is the model work per block (in the callback, or
    in the worker); ``callback_ms`` is the time spent inside the callback. :attr:`out` holds the last
    block played.
    """

    def __init__(
        self, model: BenchModel, frames: np.ndarray, block: int, mode: str, provider: str, threads: int
    ):
        self.model, self.block, self.mode = model, block, mode
        self.engine = Engine(model.path, provider, threads, max_block=block)
        self.engine.set_source(MelSource(frames, loop=True))
        self.step = BlockStep(self.engine, block, mode, RING_BLOCKS * block)
        self.period_ms = MS * block / self.engine.sample_rate
        self.out = np.zeros((block, CALLBACK_CHANNELS), dtype=np.float32)
        self.compute_ms: list[float] = []
        self.callback_ms: list[float] = []

    @property
    def provider(self) -> str:
        return self.engine.provider

    def run(self, blocks: int, record: bool = True) -> None:
        """``blocks`` blocks; their times are kept when ``record``."""
        step = self._callback_step if self.mode == "callback" else self._buffered_step
        for _ in range(blocks):
            compute, callback = step()
            if record:
                self.compute_ms.append(MS * compute)
                self.callback_ms.append(MS * callback)

    def _callback_step(self) -> tuple[float, float]:
        start = time.perf_counter()
        self.step.play(self.out)
        elapsed = time.perf_counter() - start
        return elapsed, elapsed

    def _buffered_step(self) -> tuple[float, float]:
        start = time.perf_counter()
        self.step.render()
        worked = time.perf_counter()
        self.step.play(self.out)
        return worked - start, time.perf_counter() - worked

    def stream_xrt(self) -> float:
        """Audio seconds per compute second over the recorded blocks."""
        total = float(np.sum(self.compute_ms))
        return len(self.compute_ms) * self.period_ms / total if total > 0 else float("nan")


PROVIDER_CHOICES = ("cpu", "cuda", "all")


def resolve_providers(choice: str) -> tuple[list[str], list[str]]:
    """Providers for ``--provider`` (cpu, cuda, all) and notes; "cuda" without CUDA is a one-line error."""
    from ganvoice.errors import DeviceError
    from ganvoice.realtime.model import cuda_probe

    if choice not in PROVIDER_CHOICES:
        raise DeviceError(f"unknown provider {choice!r}; choose one of {', '.join(PROVIDER_CHOICES)}")
    if choice == "cpu":
        return ["cpu"], []
    reason = cuda_probe()
    if choice == "cuda":
        if reason:
            raise DeviceError(f"--provider cuda: CUDA is not available ({reason}); use --provider cpu")
        return ["cuda"], []
    if reason:
        return ["cpu"], [f"CUDA rows skipped: {reason}"]
    return ["cpu", "cuda"], []
