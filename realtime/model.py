"""Open an exported ganvoice model with ONNX Runtime: check its metadata, pick the provider, run it.

:class:`Streamer` runs the streaming graph (see :mod:`ganvoice.modelmeta`) one call at a time with
the recurrent state kept inside: every buffer is allocated once, and each call is a run with IO binding
into those buffers (the states ping-pong between two sets), so a call allocates no arrays.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ganvoice.errors import DeviceError, first_line
from ganvoice.modelmeta import INPUT_NAME, OUTPUT_NAME, ModelMetadata
from ganvoice.onnxgraph import CPU, SESSION_LOG_LEVEL, load_session, metadata_of, session_options

PROVIDERS = ("auto", "cuda", "cpu")
CUDA = "CUDAExecutionProvider"
#: ONNX Runtime log level while probing the CUDA provider: fatal only (our sessions: errors only).
PROBE_LOG_LEVEL = 4
DEFAULT_LOG_LEVEL = 2  # ONNX Runtime's own default (warnings)


def _session_options(threads: int | None, log_level: int = SESSION_LOG_LEVEL) -> ort.SessionOptions:
    """:func:`ganvoice.onnxgraph.session_options` for the engine: default 1 thread, no spinning."""
    return session_options(threads or 1, allow_spinning=False, log_level=log_level)


def _plain_session(path: Path, threads: int | None) -> ort.InferenceSession:
    """A CPU session with our options, with the one-line errors for a missing or non-ONNX file."""
    return load_session(path, _session_options(threads), [CPU])


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """Read and check the metadata of a model file (:class:`ModelFormatError` if it cannot be used)."""
    path = Path(path)
    return metadata_of(_plain_session(path, 1), str(path))


NO_DRIVER = "no NVIDIA driver (libcuda) on this machine"
NO_CUDA_BUILD = "this onnxruntime build has no CUDA provider (install onnxruntime-gpu)"


def _has_nvidia_driver() -> bool:
    """Whether the NVIDIA driver library (libcuda) loads here."""
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return ctypes.util.find_library("cuda") is not None


def cuda_probe() -> str | None:
    """``None`` when ONNX Runtime's CUDA provider can be tried here, else why not (one line)."""
    if CUDA not in ort.get_available_providers():
        return NO_CUDA_BUILD
    if not _has_nvidia_driver():
        return NO_DRIVER
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints what it cannot find
            preload()
    return None


@dataclass
class OpenedModel:
    session: ort.InferenceSession
    metadata: ModelMetadata
    provider: str  # "cuda" or "cpu": what really runs
    note: str  # why "auto" fell back to the CPU although this machine has an NVIDIA driver, or ""


def open_model(path: str | os.PathLike, provider: str = "auto", threads: int | None = None) -> OpenedModel:
    """Check the file and its metadata, then create the session on ``provider`` ("auto", "cuda", "cpu").

    "auto" tries CUDA and falls back to the CPU (the reason is in ``note``); "cuda" without a working
    CUDA provider is a :class:`DeviceError`.
    """
    if provider not in PROVIDERS:
        raise DeviceError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    if threads is not None and threads <= 0:
        raise DeviceError(f"threads must be a positive number, not {threads}")
    path = Path(path)
    cpu_session = _plain_session(path, threads)
    metadata = metadata_of(cpu_session, str(path))
    if provider == "cpu":
        return OpenedModel(cpu_session, metadata, "cpu", "")
    session, reason = cuda_session(path, threads)
    if session is not None:
        return OpenedModel(session, metadata, "cuda", "")
    if provider == "cuda":
        raise DeviceError(f"--provider cuda: CUDA is not available ({reason}); use --provider cpu")
    expected = reason in (NO_DRIVER, NO_CUDA_BUILD)  # a machine without a GPU: the CPU is no surprise
    return OpenedModel(cpu_session, metadata, "cpu", "" if expected else f"CUDA not used: {reason}")


def cuda_session(
    path: str | os.PathLike, threads: int | None = None
) -> tuple[ort.InferenceSession | None, str]:
    """A session on ONNX Runtime's CUDA provider, or ``(None, why not)`` (one line, nothing printed)."""
    reason = cuda_probe()
    if reason is not None:
        return None, reason
    ort.set_default_logger_severity(PROBE_LOG_LEVEL)
    try:
        session = ort.InferenceSession(
            str(path), _session_options(threads, PROBE_LOG_LEVEL), providers=[CUDA, CPU]
        )
    except Exception as exc:  # noqa: BLE001
        return None, f"CUDA session failed: {first_line(exc)}"
    finally:
        ort.set_default_logger_severity(DEFAULT_LOG_LEVEL)
    if session.get_providers()[0] != CUDA:
        return None, "the CUDA provider did not load (CUDA 13 / cuDNN 9 libraries missing?)"
    return session, ""


class Streamer:
    """Runs the streaming graph on up to ``max_frames`` frames per call, keeping the state.

    Fill :meth:`input` (``[channels, t]``) then call :meth:`run` (``t``) -> audio ``[t * hop]`` (a view
    into a buffer that the next call overwrites). The state starts at zero; :meth:`reset` zeroes it.
    On CUDA the states stay in GPU memory between calls; only the frames and the audio cross the bus.
    """

    def __init__(self, opened: OpenedModel, max_frames: int):
        if max_frames <= 0:
            raise ValueError("max_frames must be positive")
        self.session, self.metadata = opened.session, opened.metadata
        self.max_frames = max_frames
        meta = self.metadata
        self._device = "cuda" if opened.provider == "cuda" else "cpu"
        self._inputs = [np.zeros((1, meta.channels, t), np.float32) for t in range(max_frames + 1)]
        self._outputs = [np.zeros((1, t * meta.hop_length), np.float32) for t in range(max_frames + 1)]
        self._zeros = [np.zeros(s.shape, np.float32) for s in meta.state]
        self._states = [[self._state_value(z) for z in self._zeros] for _ in range(2)]
        # bindings[parity][t]: reads state set `parity`, writes the other one (t = 0 is unused)
        self._bindings = [[self._bind(t, p) for t in range(max_frames + 1)] for p in range(2)]
        self._parity = 0

    def _state_value(self, zeros: np.ndarray) -> ort.OrtValue:
        if self._device == "cpu":
            return ort.OrtValue.ortvalue_from_numpy(zeros.copy())
        return ort.OrtValue.ortvalue_from_numpy(zeros, self._device, 0)

    def _bind(self, frames: int, parity: int) -> ort.IOBinding | None:
        if frames == 0:
            return None
        binding = self.session.io_binding()
        binding.bind_cpu_input(INPUT_NAME, self._inputs[frames])
        out = self._outputs[frames]
        binding.bind_output(OUTPUT_NAME, "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
        for info, src, dst in zip(self.metadata.state, self._states[parity], self._states[1 - parity]):
            binding.bind_ortvalue_input(info.input, src)
            binding.bind_ortvalue_output(info.output, dst)
        return binding

    def input(self, frames: int) -> np.ndarray:
        """The ``[channels, frames]`` buffer that the next :meth:`run` of ``frames`` frames reads."""
        return self._inputs[frames][0]

    def run(self, frames: int) -> np.ndarray:
        """Run ``frames`` frames from :meth:`input` -> audio ``[frames * hop]``, valid until the next run."""
        binding = self._bindings[self._parity][frames]
        self.session.run_with_iobinding(binding)
        self._parity = 1 - self._parity
        return self._outputs[frames][0]

    def prime(self, up_to: int) -> None:
        """Run every binding of 1..``up_to`` frames once (on zeros), then zero the state.

        ONNX Runtime plans memory on the first run of each shape; doing that here keeps the first
        audio callbacks as fast as the rest.
        """
        for frames in range(1, min(up_to, self.max_frames) + 1):
            for parity in range(2):
                self._inputs[frames].fill(0.0)
                self.session.run_with_iobinding(self._bindings[parity][frames])
        self.reset()

    def reset(self) -> None:
        """Zero the state (the start of a new stream)."""
        for states in self._states:
            for value, zeros in zip(states, self._zeros):
                value.update_inplace(zeros)
        self._parity = 0


def provider_report(model_path: str) -> str:
    """Which execution providers can run the model here, e.g. ``CPU: yes, CUDA: no (reason)``."""
    parts = []
    for name in ort.get_available_providers():
        short = name.replace("ExecutionProvider", "")
        if name == CPU:
            parts.append(f"{short}: yes")
        elif name == CUDA:
            session, reason = cuda_session(model_path)
            parts.append(f"{short}: yes" if session is not None else f"{short}: no ({reason})")
        else:
            parts.append(f"{short}: not checked")
    return ", ".join(parts)
