"""HiFi-GAN V1/V2/V3 generators (Kong et al. 2020), built from streaming layers.

Parameter names follow the official implementation (``conv_pre``, ``ups.N``, ``resblocks.N.convs1.M``,
``conv_post``) with weight norm, so official ``generator_v1/v2/v3`` checkpoints load through
:func:`load_official_state_dict`. Each "same" convolution becomes a causal one with a centred lookahead,
so the model's delay is the sum of the paddings of the original, computed from the layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn
from torch.nn.utils import parametrizations

from ganvoice.models.base import Generator, GeneratorConfig, register_generator
from ganvoice.models.streaming import (
    LeakyReLU,
    ParallelMean,
    Residual,
    State,
    Streamable,
    StreamingConv1d,
    StreamingConvTranspose1d,
    StreamSequential,
    chain_delay,
    chain_stream,
    state_shapes_of,
)

LRELU_SLOPE = 0.1


@dataclass
class HifiganConfig(GeneratorConfig):
    resblock: str = "1"
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))


def _official_weight_norm(module: nn.Module) -> nn.Module:
    """Official init (normal, std 0.01) followed by weight norm."""
    nn.init.normal_(module.weight, 0.0, 0.01)
    return parametrizations.weight_norm(module)


class _ResBlock(Streamable, nn.Module):
    """A chain of residual units (unregistered views over the official conv lists)."""

    units: list[Residual]

    @property
    def delay(self) -> int:
        return chain_delay(self.units)

    def state_shapes(self) -> list[tuple[int, ...]]:
        return [s for unit in self.units for s in state_shapes_of(unit)]

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return chain_stream(self.units, x, state)

    def forward(self, x: Tensor) -> Tensor:
        return self.stream(x, self.init_state(x.shape[0], x.device, x.dtype))[0]


class ResBlock1(_ResBlock):
    """``x = x + c2(lrelu(c1(lrelu(x))))`` for each dilation (official ``ResBlock1``). ``[B, C, T]``."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            _official_weight_norm(StreamingConv1d(channels, channels, kernel_size, dilation=d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            _official_weight_norm(StreamingConv1d(channels, channels, kernel_size)) for _ in dilations
        )
        self.units = [
            Residual(StreamSequential(LeakyReLU(LRELU_SLOPE), c1, LeakyReLU(LRELU_SLOPE), c2), channels)
            for c1, c2 in zip(self.convs1, self.convs2)
        ]


class ResBlock2(_ResBlock):
    """``x = x + c(lrelu(x))`` for each dilation (official ``ResBlock2``). ``[B, C, T]``."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs = nn.ModuleList(
            _official_weight_norm(StreamingConv1d(channels, channels, kernel_size, dilation=d))
            for d in dilations
        )
        self.units = [Residual(StreamSequential(LeakyReLU(LRELU_SLOPE), c), channels) for c in self.convs]


class HifiganGenerator(Generator):
    """Mel ``[B, n_mels, T]`` -> audio ``[B, T * prod(upsample_rates)]``."""

    def __init__(self, config: HifiganConfig):
        hop = 1
        for rate in config.upsample_rates:
            hop *= rate
        super().__init__(config.in_channels, hop, config.conditioning, config.pad_value)
        self.config = config
        self.num_kernels = len(config.resblock_kernel_sizes)
        block_class = ResBlock1 if config.resblock == "1" else ResBlock2
        self.conv_pre = _official_weight_norm(
            StreamingConv1d(config.in_channels, config.upsample_initial_channel, 7)
        )
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        layers: list[nn.Module] = [self.conv_pre]
        channels = config.upsample_initial_channel
        for rate, kernel in zip(config.upsample_rates, config.upsample_kernel_sizes):
            up = _official_weight_norm(StreamingConvTranspose1d(channels, channels // 2, kernel, rate))
            channels //= 2
            blocks = [
                block_class(channels, k, tuple(d))
                for k, d in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes)
            ]
            self.ups.append(up)
            self.resblocks.extend(blocks)
            layers += [LeakyReLU(LRELU_SLOPE), up, ParallelMean(blocks, channels)]
        self.conv_post = _official_weight_norm(StreamingConv1d(channels, 1, 7))
        # torch's default leaky slope (0.01) before conv_post, as in the official code
        self.layers = layers + [LeakyReLU(), self.conv_post, nn.Tanh()]


OFFICIAL_SUFFIXES = {
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
}


def load_official_state_dict(generator: HifiganGenerator, official: dict[str, Tensor]) -> None:
    """Load an official HiFi-GAN ``state_dict`` (``weight_g`` / ``weight_v`` keys) into ``generator``."""
    ours = {}
    for key, value in official.items():
        prefix, _, suffix = key.rpartition(".")
        ours[f"{prefix}.{OFFICIAL_SUFFIXES.get(suffix, suffix)}"] = value
    generator.load_state_dict(ours, strict=True)


def official_state_dict(generator: HifiganGenerator) -> dict[str, Tensor]:
    """The generator's weights under the official key names (``{"generator": ...}`` payload)."""
    reverse = {v: k for k, v in OFFICIAL_SUFFIXES.items()}
    out = {}
    for key, value in generator.state_dict().items():
        for ours, theirs in reverse.items():
            if key.endswith(ours):
                key = key[: -len(ours)] + theirs
        out[key] = value.detach().clone()
    return out


def config_from_official_json(data: dict) -> dict:
    """Generator config overrides (and mel spec) from an official HiFi-GAN ``config.json``."""
    from ganvoice.mel import MelSpec

    mel = MelSpec(
        sample_rate=int(data.get("sampling_rate", 22050)),
        n_fft=int(data.get("n_fft", 1024)),
        hop_length=int(data.get("hop_size", 256)),
        win_length=int(data.get("win_size", 1024)),
        n_mels=int(data.get("num_mels", 80)),
        fmin=float(data.get("fmin", 0)),
        fmax=float(data.get("fmax", 8000)),
    )
    return {
        "mel": mel,
        "resblock": str(data["resblock"]),
        "upsample_rates": tuple(data["upsample_rates"]),
        "upsample_kernel_sizes": tuple(data["upsample_kernel_sizes"]),
        "upsample_initial_channel": int(data["upsample_initial_channel"]),
        "resblock_kernel_sizes": tuple(data["resblock_kernel_sizes"]),
        "resblock_dilation_sizes": tuple(tuple(d) for d in data["resblock_dilation_sizes"]),
    }


V1 = dict(upsample_initial_channel=512)
V2 = dict(upsample_initial_channel=128)
V3 = dict(
    resblock="2",
    upsample_rates=(8, 8, 4),
    upsample_kernel_sizes=(16, 16, 8),
    upsample_initial_channel=256,
    resblock_kernel_sizes=(3, 5, 7),
    resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
)

for _name, _defaults in (("hifigan-v1", V1), ("hifigan-v2", V2), ("hifigan-v3", V3)):
    register_generator(_name, HifiganConfig, **_defaults)(HifiganGenerator)
