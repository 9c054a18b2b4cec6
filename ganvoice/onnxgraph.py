"""A ganvoice ONNX file in ONNX Runtime, the simple (non-realtime) way: offline and chunked runs.

numpy + onnxruntime only (no torch), so the runtime, ``ganvoice eval`` and the benchmarks share it.
The realtime engine (``ganvoice.realtime``) adds preallocation, IO binding and scheduling on top.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from ganvoice.errors import ModelFormatError, first_line
from ganvoice.modelmeta import (
    INPUT_NAME,
    METADATA_KEY,
    ORT_TYPES,
    ModelMetadata,
    TensorSpec,
    check_graph,
)

CPU = "CPUExecutionProvider"
#: ONNX Runtime log level of our sessions: errors only.
SESSION_LOG_LEVEL = 3
#: The session config key that lets idle intra-op threads spin.
SPINNING_KEY = "session.intra_op.allow_spinning"


def load_session(path: Path, options: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
    """An ONNX Runtime session on ``path``, with the one-line errors for a missing or non-ONNX file."""
    if not path.exists():
        raise ModelFormatError(f"{path}: no such model file")
    if path.is_dir():
        raise ModelFormatError(f"{path}: is a folder, not an ONNX model")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # noqa: BLE001 -- ORT raises several types for unreadable files
        raise ModelFormatError(f"{path}: not a loadable ONNX model ({first_line(exc)})") from exc


def metadata_of(session: ort.InferenceSession, source: str) -> ModelMetadata:
    """The ganvoice metadata of an open session after the strict check (:mod:`ganvoice.modelmeta`).

    The metadata is checked on its own, then against the graph's inputs and outputs, then one frame
    of ``pad_value`` is run from the zero state: the audio must be ``hop_length`` samples and every
    new state the declared shape. Anything wrong is one :class:`ModelFormatError` line.
    """
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        raise ModelFormatError(
            f"{source}: an ONNX model without ganvoice metadata; export it with 'ganvoice export' "
            "(which stores the mel spec and the streaming state in the file)"
        )
    return checked_metadata(session, text, source)


def checked_metadata(session: ort.InferenceSession, text: str, source: str) -> ModelMetadata:
    """Metadata JSON ``text`` parsed, checked, and checked against ``session``'s graph (see above)."""
    metadata = ModelMetadata.from_json(text, source=source)
    check_graph(metadata, _specs(session.get_inputs()), _specs(session.get_outputs()), source)
    _probe(session, metadata, source)
    return metadata


def _specs(args) -> list[TensorSpec]:
    return [
        TensorSpec(
            a.name, tuple(d if isinstance(d, int) else None for d in a.shape), ORT_TYPES.get(a.type, a.type)
        )
        for a in args
    ]


def _probe(session: ort.InferenceSession, metadata: ModelMetadata, source: str) -> None:
    """One frame from the zero state: the graph really makes ``hop_length`` samples and the declared state."""
    feeds = {INPUT_NAME: np.full((1, metadata.channels, 1), metadata.pad_value, np.float32)}
    feeds.update({s.input: np.zeros(s.shape, np.float32) for s in metadata.state})
    try:
        audio, *state = session.run(None, feeds)
    except Exception as exc:  # noqa: BLE001 -- ORT raises several types for a graph that disagrees
        raise ModelFormatError(
            f"{source}: the graph does not run as its metadata says ({first_line(exc)})"
        ) from exc
    if audio.shape != (1, metadata.hop_length):
        raise ModelFormatError(
            f"{source}: one frame gives audio {list(audio.shape)}, "
            f"its metadata says [1, {metadata.hop_length}]"
        )
    for info, value in zip(metadata.state, state):
        if value.shape != info.shape:
            raise ModelFormatError(
                f"{source}: {info.output} is {list(value.shape)}, its metadata says {list(info.shape)}"
            )


def session_options(
    threads: int | None = 1, *, allow_spinning: bool = True, log_level: int = SESSION_LOG_LEVEL
) -> ort.SessionOptions:
    """The one place our ONNX Runtime sessions are configured (offline runs and the realtime engine).

    ``threads``: intra-op threads (``None``: ONNX Runtime's default, one per core); one inter-op
    thread, sequential execution, errors-only logging. ``allow_spinning=False`` makes idle pool threads
    sleep instead of spin: the realtime engine's audio callback and the machine's other work need the
    CPU. Offline runs (eval, tests, throughput) keep ONNX Runtime's default (spinning).
    """
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = log_level
    if not allow_spinning:
        options.add_session_config_entry(SPINNING_KEY, "0")
    return options


def open_session(path: str | Path, providers: list[str] | None = None, threads: int | None = 1):
    """``(InferenceSession, ModelMetadata)`` for a ganvoice model; one-line errors for bad files."""
    path = Path(path)
    session = load_session(path, session_options(threads), providers or [CPU])
    return session, metadata_of(session, str(path))


class OnnxGenerator:
    """Zero state, ``stream``, ``offline`` and ``chunked`` runs of an exported generator."""

    def __init__(self, path: str | Path, threads: int | None = 1, providers: list[str] | None = None):
        self.session, self.metadata = open_session(path, providers, threads)

    def zero_state(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, *s.shape[1:]), dtype=np.float32) for s in self.metadata.state]

    def stream(self, x: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """``x [B, C, T]`` -> ``(audio [B, T * hop], new state)``."""
        feeds = {INPUT_NAME: x, **{s.input: v for s, v in zip(self.metadata.state, state)}}
        audio, *new_state = self.session.run(None, feeds)
        return audio, new_state

    def flush_frames(self, batch: int) -> np.ndarray:
        """The model's flush, ``[batch, C, flush_length]`` (:meth:`ModelMetadata.flush_frames`)."""
        return self.metadata.flush_frames(batch)

    def offline(self, x: np.ndarray) -> np.ndarray:
        """Whole input from the zero state, then the flush; aligned with the input: ``[B, T * hop]``."""
        return self.chunked(x, [x.shape[-1] + self.metadata.flush_length])

    def chunked(self, x: np.ndarray, chunk_sizes: list[int]) -> np.ndarray:
        """Stream ``x [B, C, T]`` (+ flush) in chunks (sizes cycled); aligned like :meth:`offline`."""
        padded = np.concatenate([x, self.flush_frames(x.shape[0])], axis=-1).astype(np.float32)
        state, outputs, start, i = self.zero_state(x.shape[0]), [], 0, 0
        while start < padded.shape[-1]:
            size = chunk_sizes[i % len(chunk_sizes)]
            audio, state = self.stream(padded[..., start : start + size], state)
            outputs.append(audio)
            start, i = start + size, i + 1
        delay = self.metadata.delay_samples
        return np.concatenate(outputs, axis=-1)[:, delay : delay + x.shape[-1] * self.metadata.hop_length]
