"""``fast``: the project's default generator -- ConvNeXt blocks at the frame rate and an inverse-STFT head.

Vocos-style (Siuzdak 2023) but streaming: every depthwise convolution is causal with a small, configurable
lookahead, and the inverse STFT is a matmul with a windowed inverse-real-DFT basis followed by an
overlap-add whose tail lives in the streaming state (no ``torch.istft``, so it exports to plain ONNX ops).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganvoice.models.base import Generator, GeneratorConfig, register_generator
from ganvoice.models.streaming import DelayLine, State, Streamable, StreamingConv1d

MAX_LOG_MAGNITUDE = math.log(100.0)


@dataclass
class FastConfig(GeneratorConfig):
    dim: int = 192
    intermediate_dim: int = 576
    num_blocks: int = 5
    kernel_size: int = 7
    lookahead_frames: int = 1
    head_n_fft: int = 1024
    layer_scale: float = 0.1


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of ``[B, C, T]``."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ConvNeXtBlock(Streamable, nn.Module):
    """Depthwise causal conv (with ``lookahead``) -> LayerNorm -> MLP -> scale, plus a delayed skip.

    ``[B, dim, T] -> [B, dim, T]``; delay = ``lookahead`` frames.
    """

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int, lookahead: int, layer_scale: float):
        super().__init__()
        self.dwconv = StreamingConv1d(dim, dim, kernel_size, groups=dim, lookahead=lookahead)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))
        self.skip = DelayLine(dim, lookahead)

    @property
    def delay(self) -> int:
        return self.dwconv.delay

    def state_shapes(self) -> list[tuple[int, ...]]:
        return self.dwconv.state_shapes() + self.skip.state_shapes()

    def _mlp(self, h: Tensor) -> Tensor:
        h = self.pwconv2(F.gelu(self.pwconv1(self.norm(h.transpose(1, 2)))))
        return (self.gamma * h).transpose(1, 2)

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        count = len(self.dwconv.state_shapes())
        h, conv_state = self.dwconv.stream(x, state[:count])
        skip, skip_state = self.skip.stream(x, state[count:])
        return skip + self._mlp(h), conv_state + skip_state

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self._mlp(self.dwconv(x))


def half_inverse_dft_bases(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine and sine bases ``[K, K]`` (``K = n_fft / 2 + 1``) of the inverse real DFT, half length.

    For ``c = re @ cos`` and ``s = im @ sin`` the frame is ``x[n] = c[n] - s[n]`` for ``n <= n_fft / 2`` and
    ``x[n_fft - n] = c[n] + s[n]``: the symmetry halves both the weights and the work of a full basis.
    """
    bins = n_fft // 2 + 1
    k = np.arange(bins)[:, None]
    n = np.arange(bins)[None, :]
    scale = np.full((bins, 1), 2.0 / n_fft)
    scale[0] = scale[-1] = 1.0 / n_fft
    angle = 2.0 * np.pi * k * n / n_fft
    return scale * np.cos(angle), scale * np.sin(angle)


def synthesis_window(n_fft: int, hop: int) -> np.ndarray:
    """Periodic Hann window divided by the overlap-added squared window (constant at ``hop = n_fft / 4``)."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    envelope = (window**2).reshape(-1, hop).sum(axis=0).mean()
    return window / envelope


class ISTFTHead(Streamable, nn.Module):
    """``[B, dim, T]`` -> log-magnitude and phase -> inverse STFT -> audio ``[B, 1, T * hop]``.

    Overlap-add emits ``hop`` samples per frame and keeps ``n_fft - hop`` in state; delay
    ``(n_fft - hop) / 2`` samples relative to frames centred like the mel analysis.
    """

    def __init__(self, dim: int, n_fft: int, hop: int):
        super().__init__()
        if n_fft % hop:
            raise ValueError("head_n_fft must be a multiple of hop_length")
        self.n_fft, self.hop, self.upsample = n_fft, hop, hop
        self.out = nn.Linear(dim, n_fft + 2)
        cos_basis, sin_basis = half_inverse_dft_bases(n_fft)
        self.register_buffer("cos_basis", torch.tensor(cos_basis, dtype=torch.float32), persistent=False)
        self.register_buffer("sin_basis", torch.tensor(sin_basis, dtype=torch.float32), persistent=False)
        window = torch.tensor(synthesis_window(n_fft, hop), dtype=torch.float32)
        self.register_buffer("window", window, persistent=False)

    @property
    def delay(self) -> int:
        return (self.n_fft - self.hop) // 2

    def state_shapes(self) -> list[tuple[int, ...]]:
        return [(1, self.n_fft - self.hop)]

    def frames(self, x: Tensor) -> Tensor:
        """``[B, dim, T]`` -> windowed time-domain frames ``[B, T, n_fft]``."""
        log_magnitude, phase = self.out(x.transpose(1, 2)).chunk(2, dim=-1)
        magnitude = torch.exp(log_magnitude.clamp(max=MAX_LOG_MAGNITUDE))
        even = (magnitude * torch.cos(phase)) @ self.cos_basis
        odd = (magnitude * torch.sin(phase)) @ self.sin_basis
        second_half = torch.flip((even + odd)[..., 1:-1], dims=[-1])
        return torch.cat([even - odd, second_half], dim=-1) * self.window

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        frames = self.frames(x)
        batch, length = frames.shape[0], frames.shape[1] * self.hop
        parts = self.n_fft // self.hop
        ola = 0.0
        for r in range(parts):
            piece = frames[..., r * self.hop : (r + 1) * self.hop].reshape(batch, 1, length)
            ola = ola + F.pad(piece, (r * self.hop, (parts - 1 - r) * self.hop))
        tail = self.n_fft - self.hop
        ola = torch.cat([ola[..., :tail] + state[0], ola[..., tail:]], dim=-1)
        return ola[..., :length], [ola[..., length:]]

    def forward(self, x: Tensor) -> Tensor:
        return self.stream(x, self.init_state(x.shape[0], x.device, x.dtype))[0]


def split_lookahead(total: int, kernel_size: int, slots: int) -> list[int]:
    """Spread ``total`` lookahead frames over ``slots`` convolutions, earliest first (each <= k - 1)."""
    out = []
    for _ in range(slots):
        take = min(total, kernel_size - 1)
        out.append(take)
        total -= take
    if total:
        raise ValueError("lookahead_frames is larger than the convolutions can provide")
    return out


class FastGenerator(Generator):
    """Conditioning ``[B, C, T]`` -> audio ``[B, T * hop]`` via ConvNeXt blocks and an iSTFT head."""

    def __init__(self, config: FastConfig):
        spec = config.spec
        super().__init__(config.in_channels, spec.hop_length, config.conditioning, config.pad_value)
        self.config = config
        lookaheads = split_lookahead(config.lookahead_frames, config.kernel_size, config.num_blocks + 1)
        self.embed = StreamingConv1d(
            config.in_channels, config.dim, config.kernel_size, lookahead=lookaheads[0]
        )
        self.norm = ChannelLayerNorm(config.dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(config.dim, config.intermediate_dim, config.kernel_size, la, config.layer_scale)
            for la in lookaheads[1:]
        )
        self.final_norm = ChannelLayerNorm(config.dim, eps=1e-6)
        self.head = ISTFTHead(config.dim, config.head_n_fft, spec.hop_length)
        self.layers = [self.embed, self.norm, *self.blocks, self.final_norm, self.head]


register_generator("fast", FastConfig)(FastGenerator)
