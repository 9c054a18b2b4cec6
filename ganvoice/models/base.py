"""The generator interface every variant implements, and the one registry of variants."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ganvoice.errors import renamed
from ganvoice.mel import MelSpec
from ganvoice.models.registry import Registry
from ganvoice.models.streaming import State, Streamable, chain_delay, chain_stream, state_shapes_of

CONDITIONING = ("mel", "noise")


class Generator(Streamable, nn.Module):
    """Conditioning ``[B, C, T]`` (mel frames or latent noise at the frame rate) -> audio ``[B, T * hop]``.

    Subclasses build ``self.layers``: a list of streamable modules mapping ``[B, C, T]`` to
    ``[B, 1, T * hop]``. Everything else (delay, state, offline and streaming runs) is derived here.

    - ``stream(x, state) -> (audio [B, T * hop], state)``: causal; output lags by ``delay_samples``.
    - ``forward(x) -> audio [B, T * hop]``: offline, aligned with the input (no delay): the input is
      followed by the flush (:meth:`with_flush`: ``flush_length`` frames of ``pad_value``), streamed
      from the zero state, and the first ``delay_samples`` samples are dropped.
    """

    variant: str = ""
    layers: nn.ModuleList

    def __init__(self, channels: int, hop_length: int, conditioning: str, pad_value: float):
        super().__init__()
        if conditioning not in CONDITIONING:
            raise ValueError(f"conditioning must be one of {CONDITIONING}")
        self.channels, self.hop_length = channels, hop_length
        self.conditioning, self.pad_value = conditioning, pad_value
        self.upsample = hop_length

    @property
    def delay(self) -> int:
        return chain_delay(self.layers)

    @property
    def delay_samples(self) -> int:
        """Total model delay in output samples, computed from the layers."""
        return self.delay

    @property
    def flush_length(self) -> int:
        """Frames that must follow a frame before its audio is complete (``ceil(delay / hop)``): the
        length of the flush, as :attr:`ganvoice.modelmeta.ModelMetadata.flush_length`."""
        return math.ceil(self.delay_samples / self.hop_length)

    @property
    def lookahead_frames(self) -> int:
        """Old name of :attr:`flush_length`."""
        renamed("Generator.lookahead_frames", "flush_length", "ganvoice.models")
        return self.flush_length

    def with_flush(self, x: Tensor) -> Tensor:
        """``x [B, C, T]`` followed by the flush: ``[B, C, T + flush_length]`` (the torch twin of
        :meth:`ganvoice.modelmeta.ModelMetadata.flush_frames`)."""
        return F.pad(x, (0, self.flush_length), value=self.pad_value)

    def state_shapes(self) -> list[tuple[int, ...]]:
        return [shape for layer in self.layers for shape in state_shapes_of(layer)]

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        y, new_state = chain_stream(self.layers, x, state)
        return y.squeeze(1), new_state

    def forward(self, x: Tensor, with_frames: bool = False) -> Tensor | tuple[Tensor, Tensor | None]:
        if with_frames:  # through forward, so a DDP wrapper sees the call
            return self.forward_with_frames(x)
        frames = x.shape[-1]
        y, _ = self.stream(self.with_flush(x), self.init_state(x.shape[0], x.device, x.dtype))
        return y[:, self.delay_samples : self.delay_samples + frames * self.hop_length]

    def forward_with_frames(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(audio, frames)``: ``frames`` are the spectral frames ``[B, 3 * K, T]`` aligned with ``x``'s
        frames (magnitude, real, imaginary) for generators with a spectral head, else None."""
        return self.forward(x), None

    def describe(self) -> dict:
        """Facts about this generator that travel with a checkpoint or an exported model."""
        return {
            "variant": self.variant,
            "conditioning": self.conditioning,
            "channels": self.channels,
            "hop_length": self.hop_length,
            "delay_samples": self.delay_samples,
            "pad_value": self.pad_value,
            "parameters": sum(p.numel() for p in self.parameters()),
        }


@dataclass
class GeneratorConfig:
    """Fields every generator config has. Variants subclass this with their own fields."""

    mel: MelSpec | None = None
    conditioning: str = "mel"
    latent_channels: int = 0  # for conditioning == "noise"

    @property
    def spec(self) -> MelSpec:
        return self.mel or MelSpec()

    @property
    def in_channels(self) -> int:
        return self.spec.n_mels if self.conditioning == "mel" else self.latent_channels

    @property
    def pad_value(self) -> float:
        return self.spec.log_floor if self.conditioning == "mel" else 0.0


#: Config keys that were renamed: old -> new. Old recipes and checkpoints still load (a one-line note).
RENAMED_CONFIG_KEYS = {"lookahead_frames": "conv_lookahead_frames"}


def _prepare_config(variant: str, values: dict, config_class: type) -> dict:
    """A recipe's plain values for ``variant``: the mel table as a MelSpec, old key names renamed."""
    if isinstance(values.get("mel"), dict):
        values["mel"] = MelSpec.from_dict(values["mel"])
    known = {f.name for f in fields(config_class)}
    for old, new in RENAMED_CONFIG_KEYS.items():
        if old in values and old not in known and new in known:
            renamed(old, new, f"generator config of {variant!r}")
            values[new] = values.pop(old)
    return values


def _load_variants() -> None:
    # Importing the variant modules registers them.
    from ganvoice.models import fast, hifigan, seed_mlp  # noqa: F401


#: Every generator variant (the modules register theirs with :func:`register_generator`).
GENERATORS = Registry("generator variant", prepare=_prepare_config, load=_load_variants)
register_generator = GENERATORS.register


def variant_names() -> list[str]:
    return GENERATORS.names()


def make_config(variant: str, overrides: dict | None = None) -> GeneratorConfig:
    """Typed config for ``variant``: registry defaults, then ``overrides``; unknown keys are an error."""
    return GENERATORS.make_config(variant, overrides)


def build_generator(variant: str, overrides: dict | None = None) -> Generator:
    """Build a registered generator variant (see :func:`variant_names`)."""
    generator = GENERATORS.build(variant, overrides)
    generator.variant = variant
    return generator


def zero_state(generator: Generator, batch: int = 1) -> State:
    return generator.init_state(batch, next(generator.parameters()).device)


@torch.no_grad()
def stream_in_chunks(generator: Generator, x: Tensor, chunk_sizes: list[int]) -> Tensor:
    """Run ``x [B, C, T]`` through ``stream`` in chunks (sizes cycled), return ``[B, T * hop]``."""
    state, outputs, start, i = zero_state(generator, x.shape[0]), [], 0, 0
    while start < x.shape[-1]:
        size = chunk_sizes[i % len(chunk_sizes)]
        y, state = generator.stream(x[..., start : start + size], state)
        outputs.append(y)
        start, i = start + size, i + 1
    return torch.cat(outputs, dim=-1)


def clone_generator(generator: Generator) -> Generator:
    """A fresh copy with the same config and weights (``copy.deepcopy`` loses the layer views)."""
    clone = type(generator)(generator.config)
    clone.variant = generator.variant
    clone.load_state_dict(generator.state_dict())
    return clone


def fold_weight_norm(module: nn.Module) -> nn.Module:
    """Fold weight-norm parametrizations into plain weights, in place (for export); returns ``module``."""
    for sub in module.modules():
        if parametrize.is_parametrized(sub, "weight"):
            parametrize.remove_parametrizations(sub, "weight", leave_parametrized=True)
    return module
