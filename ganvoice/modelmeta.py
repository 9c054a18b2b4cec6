"""The contract between an exported ONNX model and every runtime (numpy side, no torch, no onnx).

An exported model stores :class:`ModelMetadata` as JSON under ``metadata_props["ganvoice"]``.
Graph interface (``B`` and ``T`` dynamic):

- input ``conditioning`` ``[B, channels, T]`` float32 (log-mel frames, or latent noise),
  then one input per entry of ``state`` (``state_in_K``), zeros at the start of a stream;
- output ``audio`` ``[B, T * hop_length]`` float32, then the new states (``state_out_K``), to be fed
  back into the next call.
- Offline use = the whole input from the zero state, followed by the flush
  (:meth:`ModelMetadata.flush_frames`); drop the first ``delay_samples`` output samples.

The streaming contract's vocabulary (one name per idea, used the same way everywhere):

- ``delay_samples``: how many samples the model's audio lags its conditioning, at the model's rate
  (the metadata key; derived from the layers, never typed in). It has this meaning only.
- ``flush_length``: the frames of ``pad_value`` that end a stream, ``ceil(delay_samples / hop_length)``;
  :meth:`ModelMetadata.flush_frames` builds them. Every offline run, engine and benchmark ends a
  stream with them (the torch side: ``Generator.flush_length``).
- ``conv_lookahead_frames``: a recipe/config key of the ``fast`` generator: frames of right context its
  convolutions read. It is one part of ``delay_samples`` (the overlap-add adds ``n_fft - hop``
  samples), so a model with ``conv_lookahead_frames = 1`` can have a ``flush_length`` of 3.
  (Old recipes' ``lookahead_frames`` still loads, with a one-line note.)
- ``compensate_delay``: the engine option that drops the first ``delay_samples`` samples, so rendered
  audio lines up with its input (``Engine(..., compensate_delay=True)``; old name ``skip_warmup``).
  ``Engine.output_delay`` is the lag a caller then sees, at the output rate (old name
  ``Engine.delay_samples``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ganvoice.errors import ModelFormatError, renamed
from ganvoice.mel import MelSpec

FORMAT_VERSION = 1
METADATA_KEY = "ganvoice"
INPUT_NAME = "conditioning"
OUTPUT_NAME = "audio"


@dataclass(frozen=True)
class StateInfo:
    input: str
    output: str
    shape: tuple[int, ...]  # with batch 1
    dtype: str = "float32"


@dataclass(frozen=True)
class ModelMetadata:
    variant: str
    sample_rate: int
    hop_length: int
    conditioning: str  # "mel" | "noise"
    channels: int
    delay_samples: int
    pad_value: float
    state: tuple[StateInfo, ...]
    mel: MelSpec | None = None
    training_step: int = 0
    checkpoint_sha256: str = ""
    ganvoice_version: str = ""
    format: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    @property
    def flush_length(self) -> int:
        """Frames of ``pad_value`` that end a stream: ``ceil(delay_samples / hop_length)``."""
        return math.ceil(self.delay_samples / self.hop_length)

    def flush_frames(self, batch: int | None = None) -> np.ndarray:
        """The flush: ``[channels, flush_length]`` float32 frames of ``pad_value`` (``[batch, ...]``
        with ``batch``). Appended to the last real frame, they bring out the rest of its audio."""
        shape = (
            (self.channels, self.flush_length) if batch is None else (batch, self.channels, self.flush_length)
        )
        return np.full(shape, self.pad_value, dtype=np.float32)

    @property
    def lookahead_frames(self) -> int:
        """Old name of :attr:`flush_length`."""
        renamed("ModelMetadata.lookahead_frames", "flush_length", "ganvoice.modelmeta")
        return self.flush_length

    @property
    def delay_ms(self) -> float:
        return 1000.0 * self.delay_samples / self.sample_rate

    def to_json(self) -> str:
        data = asdict(self)
        data["mel"] = self.mel.to_dict() if self.mel else None
        data["state"] = [{**asdict(s), "shape": list(s.shape)} for s in self.state]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> ModelMetadata:
        """Parse and check the metadata JSON (:func:`parse_metadata`)."""
        return parse_metadata(text, source)


# -- the strict check ---------------------------------------------------------------------------------
#: Sample rates a model may declare (Hz).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000
#: Longest model delay a file may declare (seconds of audio).
MAX_DELAY_SECONDS = 10
CONDITIONINGS = ("mel", "noise")
STATE_DTYPES = ("float32",)
#: Bounds that keep a lying file from allocating without limit.
MAX_CHANNELS = 4096
MAX_STATE_TENSORS = 1024
MAX_STATE_VALUES = 1 << 24
MAX_N_FFT = 1 << 16
_REQUIRED = ("format", "variant", "sample_rate", "hop_length", "conditioning", "channels")
_REQUIRED += ("delay_samples", "pad_value", "state")
_STATE_KEYS = {"input", "output", "shape", "dtype"}


class _Bad(Exception):
    """One thing wrong with the metadata (the message, without the source)."""


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{name} must be an integer, not {_show(value)}")
    if not low <= value <= high:
        raise _Bad(f"{name} = {_show(value)} is outside [{low}, {high}]")
    return value


def _float(value: object, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"{name} must be a number, not {_show(value)}")
    if not math.isfinite(value):
        raise _Bad(f"{name} must be finite, not {_show(value)}")
    if not low <= value <= high:
        raise _Bad(f"{name} = {_show(value)} is outside [{low}, {high}]")
    return float(value)


def _str(value: object, name: str, choices: tuple[str, ...] | None = None, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise _Bad(f"{name} must be a {'' if empty else 'non-empty '}string, not {_show(value)}")
    if choices is not None and value not in choices:
        raise _Bad(f"{name} must be one of {', '.join(choices)}, not {_show(value)}")
    return value


def _keys(data: dict, name: str, allowed: set[str], required: set[str]) -> None:
    unknown, missing = set(data) - allowed, required - set(data)
    if unknown:
        raise _Bad(f"{name} has unknown keys {sorted(unknown)}")
    if missing:
        raise _Bad(f"{name} lacks {sorted(missing)}")


def _mel(data: object) -> MelSpec:
    if not isinstance(data, dict):
        raise _Bad(f"mel must be an object, not {_show(data)}")
    names = {f.name for f in fields(MelSpec)}
    _keys(data, "mel", names, names)
    rate = _int(data["sample_rate"], "mel.sample_rate", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    n_fft = _int(data["n_fft"], "mel.n_fft", 2, MAX_N_FFT)
    _int(data["hop_length"], "mel.hop_length", 1, n_fft)
    _int(data["win_length"], "mel.win_length", 1, n_fft)
    _int(data["n_mels"], "mel.n_mels", 1, MAX_CHANNELS)
    fmin = _float(data["fmin"], "mel.fmin", 0.0, rate / 2)
    _float(data["fmax"], "mel.fmax", fmin, rate / 2)
    if data["fmax"] <= fmin:
        raise _Bad(f"mel.fmax = {_show(data['fmax'])} must be above mel.fmin = {fmin}")
    _float(data["clamp_min"], "mel.clamp_min", 1e-30, 1.0)
    if data["clamp_min"] <= 0:
        raise _Bad("mel.clamp_min must be positive")
    for key in ("mel_scale", "pad_mode", "log_base"):
        _str(data[key], f"mel.{key}")
    if data["mel_norm"] is not None:
        _str(data["mel_norm"], "mel.mel_norm")
    values = {k: float(v) if k in ("fmin", "fmax", "clamp_min") else v for k, v in data.items()}
    try:
        return MelSpec(**values)
    except ValueError as exc:
        raise _Bad(f"mel: {exc}") from exc


def _state(data: object) -> tuple[StateInfo, ...]:
    if not isinstance(data, list) or len(data) > MAX_STATE_TENSORS:
        raise _Bad(f"state must be a list of at most {MAX_STATE_TENSORS} entries, not {_show(data)}")
    infos, names, total = [], set(), 0
    for i, entry in enumerate(data):
        where = f"state[{i}]"
        if not isinstance(entry, dict):
            raise _Bad(f"{where} must be an object, not {_show(entry)}")
        _keys(entry, where, _STATE_KEYS, _STATE_KEYS)
        ends = (_str(entry["input"], f"{where}.input", empty=False),)
        ends += (_str(entry["output"], f"{where}.output", empty=False),)
        for name in ends:
            if name in names or name in (INPUT_NAME, OUTPUT_NAME):
                raise _Bad(f"{where}: the name {_show(name)} is used twice")
            names.add(name)
        shape = entry["shape"]
        if not isinstance(shape, list) or not 1 <= len(shape) <= 8:
            raise _Bad(f"{where}.shape must be a list of 1 to 8 sizes, not {_show(shape)}")
        dims = tuple(_int(d, f"{where}.shape", 1, MAX_STATE_VALUES) for d in shape)
        if dims[0] != 1:
            raise _Bad(f"{where}.shape must start with batch 1, not {dims[0]}")
        total += math.prod(dims)
        if total > MAX_STATE_VALUES:
            raise _Bad(f"the state has more than {MAX_STATE_VALUES} values")
        dtype = _str(entry["dtype"], f"{where}.dtype", STATE_DTYPES)
        infos.append(StateInfo(ends[0], ends[1], dims, dtype))
    return tuple(infos)


def _metadata(data: object) -> ModelMetadata:
    if not isinstance(data, dict):
        raise _Bad(f"the metadata must be a JSON object, not {_show(data)}")
    version = data.get("format")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _Bad(f"format must be an integer, not {_show(version)}")
    if version > FORMAT_VERSION:
        raise _Bad(
            f"model format {version} is newer than this ganvoice understands ({FORMAT_VERSION}); "
            "upgrade ganvoice"
        )
    _int(version, "format", 1, FORMAT_VERSION)
    _keys(data, "the metadata", {f.name for f in fields(ModelMetadata)}, set(_REQUIRED))
    rate = _int(data["sample_rate"], "sample_rate", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    hop = _int(data["hop_length"], "hop_length", 1, rate)
    conditioning = _str(data["conditioning"], "conditioning", CONDITIONINGS)
    channels = _int(data["channels"], "channels", 1, MAX_CHANNELS)
    delay = _int(data["delay_samples"], "delay_samples", 0, MAX_DELAY_SECONDS * rate)
    mel = None if data.get("mel") is None else _mel(data["mel"])
    if conditioning == "mel":
        if mel is None:
            raise _Bad("a mel model whose metadata has no mel spec")
        for name, mine, theirs in (
            ("sample_rate", rate, mel.sample_rate),
            ("hop_length", hop, mel.hop_length),
            ("channels", channels, mel.n_mels),
        ):
            if mine != theirs:
                raise _Bad(f"{name} {mine} differs from the mel spec's ({theirs})")
    elif mel is not None:
        raise _Bad("a noise model with a mel spec")
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise _Bad(f"extra must be an object, not {_show(extra)}")
    return ModelMetadata(
        variant=_str(data["variant"], "variant", empty=False),
        sample_rate=rate,
        hop_length=hop,
        conditioning=conditioning,
        channels=channels,
        delay_samples=delay,
        pad_value=_float(data["pad_value"], "pad_value"),
        state=_state(data["state"]),
        mel=mel,
        training_step=_int(data.get("training_step", 0), "training_step", 0, 1 << 62),
        checkpoint_sha256=_str(data.get("checkpoint_sha256", ""), "checkpoint_sha256"),
        ganvoice_version=_str(data.get("ganvoice_version", ""), "ganvoice_version"),
        format=version,
        extra=extra,
    )


def parse_metadata(text: str, source: str = "model") -> ModelMetadata:
    """The :class:`ModelMetadata` in ``text`` after the strict check, else one-line :class:`ModelFormatError`.

    Types (integers are integers, numbers finite), ranges (sample rate 8-192 kHz, 1 <= hop <= one
    second, 0 <= delay <= 10 s of audio, bounded state) and consistency (sample rate, hop and channels
    equal the mel spec's). :func:`check_graph` checks it against the graph.
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{source}: ganvoice metadata is not valid JSON ({exc})") from exc
    try:
        return _metadata(data)
    except _Bad as exc:
        raise ModelFormatError(f"{source}: bad ganvoice metadata: {exc}") from None


#: ONNX Runtime's type names for the dtypes a ganvoice graph uses.
ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, shape (``int`` or ``None`` where dynamic) and numpy dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str


def check_graph(
    metadata: ModelMetadata, inputs: list[TensorSpec], outputs: list[TensorSpec], source: str = "model"
) -> None:
    """The graph's inputs/outputs equal what ``metadata`` declares (names, ranks, sizes, dtypes)."""
    want_in = [INPUT_NAME] + [s.input for s in metadata.state]
    want_out = [OUTPUT_NAME] + [s.output for s in metadata.state]
    if [i.name for i in inputs] != want_in or [o.name for o in outputs] != want_out:
        raise ModelFormatError(
            f"{source}: graph inputs/outputs {[i.name for i in inputs]} -> {[o.name for o in outputs]} "
            "do not match its ganvoice metadata"
        )
    # (tensor, expected shape with None where dynamic, dtype, every non-batch size fixed)
    expected = [(inputs[0], (None, metadata.channels, None), "float32", False)]
    expected.append((outputs[0], (None, None), "float32", False))
    for info, graph_in, graph_out in zip(metadata.state, inputs[1:], outputs[1:]):
        shape = (None, *info.shape[1:])
        # outputs may be dynamic in the graph; the probe run in onnxgraph checks their real sizes
        expected += [(graph_in, shape, info.dtype, True), (graph_out, shape, info.dtype, False)]
    for tensor, shape, dtype, fixed in expected:
        if tensor.dtype != dtype:
            raise ModelFormatError(
                f"{source}: graph tensor {tensor.name} is {tensor.dtype}, its metadata says {dtype}"
            )
        same = len(tensor.shape) == len(shape) and all(
            want is None or have == want or (have is None and not fixed)
            for have, want in zip(tensor.shape, shape)
        )
        if not same:
            raise ModelFormatError(
                f"{source}: graph tensor {tensor.name} has shape {list(tensor.shape)}, its metadata says "
                f"{['B' if d is None else d for d in shape]}"
            )
