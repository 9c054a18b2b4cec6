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
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

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
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFormatError(f"{source}: ganvoice metadata is not valid JSON ({exc})") from exc
        version = data.get("format")
        if not isinstance(version, int):
            raise ModelFormatError(f"{source}: ganvoice metadata has no integer 'format'")
        if version > FORMAT_VERSION:
            raise ModelFormatError(
                f"{source}: model format {version} is newer than this ganvoice understands "
                f"({FORMAT_VERSION}); upgrade ganvoice"
            )
        try:
            state = tuple(StateInfo(**{**s, "shape": tuple(s["shape"])}) for s in data.pop("state"))
            mel = MelSpec.from_dict(data.pop("mel")) if data.get("mel") else None
            data.pop("mel", None)
            return cls(state=state, mel=mel, **data)
        except (TypeError, KeyError, ValueError) as exc:
            raise ModelFormatError(f"{source}: malformed ganvoice metadata ({exc})") from exc
