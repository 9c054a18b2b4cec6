"""``fast``: the project's default generator -- ConvNeXt blocks at the frame rate and an inverse-STFT head.

Vocos-style (Siuzdak 2023) but streaming: every depthwise convolution is causal with a small, configurable
lookahead, and the inverse STFT is a two-stage real DFT of small matmuls, a window and an overlap-add
whose tail lives in the streaming state (no ``torch.istft``, so it exports to plain ONNX ops). The trunk
runs channels-last (``[B, 1, T, dim]``), so its blocks need no transposes.

Options (see :mod:`ganvoice.models.spectral`): ``magnitude`` (``learned`` | ``pinv_residual`` | ``pinv``,
the latter two refined by ``nnls_iterations`` weightless FISTA steps), ``phase_head`` (``angle`` | ``ri``)
and ``consistency_iterations`` unrolled consistency layers of ``consistency_lookahead`` frames each (0 =
off); their delay is part of the model's delay. None of these options has weights of its own except the
head's output size, so the iteration counts can change between training and export.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganvoice.models.base import Generator, GeneratorConfig, register_generator
from ganvoice.models.spectral import ConsistencyStack, FourierBases, OverlapAdd, SpectrumHead
from ganvoice.models.streaming import (
    ChannelsLastConv1d,
    DelayLine,
    State,
    Streamable,
    WithDelayedInput,
    chain_delay,
    chain_stream,
    state_shapes_of,
)


@dataclass
class FastConfig(GeneratorConfig):
    dim: int = 192
    intermediate_dim: int = 576
    num_blocks: int = 5
    kernel_size: int = 7
    conv_lookahead_frames: int = 1
    head_n_fft: int = 1024
    layer_scale: float = 0.1
    magnitude: str = "learned"
    phase_head: str = "angle"
    consistency_iterations: int = 0
    consistency_lookahead: int = 1
    consistency_momentum: float = 0.0  # fast Griffin-Lim momentum between consistency layers (0 = plain)
    nnls_iterations: int = 0  # pinv magnitudes: FISTA steps toward the mel's non-negative least squares

    @property
    def consistency_lookaheads(self) -> list[int]:
        """Frames of lookahead of each consistency layer, in order."""
        if self.consistency_iterations < 0:
            raise ValueError("consistency_iterations must be >= 0")
        return [self.consistency_lookahead] * self.consistency_iterations


#: Named export-time choices for the phase-only ``fast`` (none of these options has weights): what the
#: same checkpoint becomes with ``ganvoice export --preset NAME``. Measured on the bundled weights (model
#: card): ``quality`` is the bundled default, ``balanced`` the fastest export still above Griffin-Lim on
#: PESQ, STOI and mel L1 on both splits, ``low-latency`` and ``fastest`` trade sound for delay and speed.
EXPORT_PRESETS: dict[str, dict] = {
    "quality": {"consistency_iterations": 12, "nnls_iterations": 16, "consistency_momentum": 0.8},
    "balanced": {"consistency_iterations": 10, "nnls_iterations": 16, "consistency_momentum": 0.8},
    "low-latency": {"consistency_iterations": 6, "nnls_iterations": 16, "consistency_momentum": 0.8},
    "fastest": {"consistency_iterations": 1, "nnls_iterations": 8, "consistency_momentum": 0.0},
}


class ChannelsFirst(nn.Module):
    """Channels-last ``[B, 1, T, C]`` -> ``[B, C, T]`` (the end of the channels-last trunk)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], x.shape[2], x.shape[3]).transpose(1, 2)


class ConvNeXtBlock(Streamable, nn.Module):
    """Depthwise causal conv (with ``lookahead``) -> LayerNorm -> MLP -> scale, plus a delayed skip.

    Channels-last ``[B, 1, T, dim] -> [B, 1, T, dim]`` (no transposes); delay = ``lookahead`` frames.
    """

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int, lookahead: int, layer_scale: float):
        super().__init__()
        self.dwconv = ChannelsLastConv1d(dim, dim, kernel_size, groups=dim, lookahead=lookahead)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))
        self.skip = DelayLine(dim, lookahead, channels_last=True)

    @property
    def delay(self) -> int:
        return self.dwconv.delay

    def state_shapes(self) -> list[tuple[int, ...]]:
        return self.dwconv.state_shapes() + self.skip.state_shapes()

    def _mlp(self, h: Tensor) -> Tensor:
        return self.gamma * self.pwconv2(F.gelu(self.pwconv1(self.norm(h))))

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        count = len(self.dwconv.state_shapes())
        h, conv_state = self.dwconv.stream(x, state[:count])
        skip, skip_state = self.skip.stream(x, state[count:])
        return skip + self._mlp(h), conv_state + skip_state

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self._mlp(self.dwconv(x))


def split_lookahead(total: int, kernel_size: int, slots: int) -> list[int]:
    """Spread ``total`` lookahead frames over ``slots`` convolutions, earliest first (each <= k - 1)."""
    out = []
    for _ in range(slots):
        take = min(total, kernel_size - 1)
        out.append(take)
        total -= take
    if total:
        raise ValueError("conv_lookahead_frames is larger than the convolutions can provide")
    return out


class FastGenerator(Generator):
    """Conditioning ``[B, C, T]`` -> audio ``[B, T * hop]`` via ConvNeXt blocks and an iSTFT head."""

    def __init__(self, config: FastConfig):
        spec = config.spec
        super().__init__(config.in_channels, spec.hop_length, config.conditioning, config.pad_value)
        self.config = config
        lookaheads = split_lookahead(config.conv_lookahead_frames, config.kernel_size, config.num_blocks + 1)
        self.embed = ChannelsLastConv1d(
            config.in_channels, config.dim, config.kernel_size, lookahead=lookaheads[0], input_last=False
        )
        self.norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(config.dim, config.intermediate_dim, config.kernel_size, la, config.layer_scale)
            for la in lookaheads[1:]
        )
        self.final_norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.head = SpectrumHead(
            config.dim, config.head_n_fft, spec, config.magnitude, config.phase_head, config.nnls_iterations
        )
        self.fourier = FourierBases(config.head_n_fft)  # one copy of the DFT matrices for every transform
        self.consistency = ConsistencyStack(
            config.head_n_fft,
            spec.hop_length,
            config.consistency_lookaheads,
            config.consistency_momentum,
            self.fourier,
        )
        self.synthesis = OverlapAdd(config.head_n_fft, spec.hop_length, self.fourier)
        backbone = [self.embed, self.norm, *self.blocks, self.final_norm, ChannelsFirst()]
        if self.head.uses_mel:
            if config.conditioning != "mel":
                raise ValueError("a pinv magnitude needs mel conditioning")
            backbone = [WithDelayedInput(backbone, config.in_channels, offset=self.head.mel_offset)]
        self.spectral_layers = [*backbone, self.head]
        self.layers = [*self.spectral_layers, self.consistency, self.synthesis]

    def forward_with_frames(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Offline run that also returns the head's frames ``[B, 3 * K, T]`` aligned with ``x``'s frames."""
        frames = x.shape[-1]
        padded = self.with_flush(x)
        state = self.init_state(x.shape[0], x.device, x.dtype)
        count = sum(len(state_shapes_of(m)) for m in self.spectral_layers)
        head_frames, _ = chain_stream(self.spectral_layers, padded, state[:count])
        y, _ = chain_stream(self.layers[len(self.spectral_layers) :], head_frames, state[count:])
        audio = y.squeeze(1)[:, self.delay_samples : self.delay_samples + frames * self.hop_length]
        shift = chain_delay(self.spectral_layers)
        return audio, head_frames[..., shift : shift + frames]


register_generator("fast", FastConfig)(FastGenerator)
