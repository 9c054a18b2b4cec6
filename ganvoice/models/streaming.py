"""Streaming building blocks: every layer runs offline and chunk by chunk, and reports its delay.

Conventions (all layers):

- ``stream(x, state) -> (y, new_state)``: ``x [B, C_in, T]`` -> ``y [B, C_out, T * upsample]``; ``state`` is
  a list of tensors (``state_shapes()`` gives their shapes without the batch axis). No hidden buffers.
  Channels-last layers (:class:`ChannelsLastConv1d`, ``DelayLine(channels_last=True)``) take and give
  ``[B, 1, T, C]`` instead: the layout of ``LayerNorm`` and ``Linear``, so a stack of them needs no
  transposes.
- ``forward(x)`` is ``stream`` from the zero state: the offline computation *is* the streaming one, so
  chunked output equals offline output exactly (up to float rounding), for any chunking.
- ``delay``: output samples (at this layer's output rate) by which the layer lags the centred,
  non-causal layer it replaces -- i.e. its lookahead. A causal convolution with ``lookahead`` right
  context is the zero-padded "same" convolution shifted by ``lookahead`` samples.
- ``upsample``: output samples per input sample.

Containers compute their delay from their children, so a model's delay is never typed in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

State = list[Tensor]


class Streamable:
    """Mixin for modules that stream. Stateless, delay-free, rate-preserving by default."""

    upsample: int = 1

    @property
    def delay(self) -> int:
        return 0

    def state_shapes(self) -> list[tuple[int, ...]]:
        return []

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return self(x), []

    def init_state(self, batch: int, device=None, dtype=torch.float32) -> State:
        return [torch.zeros((batch, *shape), device=device, dtype=dtype) for shape in self.state_shapes()]


def delay_of(module: nn.Module) -> int:
    return module.delay if isinstance(module, Streamable) else 0


def upsample_of(module: nn.Module) -> int:
    return module.upsample if isinstance(module, Streamable) else 1


def state_shapes_of(module: nn.Module) -> list[tuple[int, ...]]:
    return module.state_shapes() if isinstance(module, Streamable) else []


def stream_of(module: nn.Module, x: Tensor, state: State) -> tuple[Tensor, State]:
    if isinstance(module, Streamable):
        return module.stream(x, state)
    return module(x), []


def chain_delay(modules) -> int:
    """Delay of modules applied in sequence, in the last module's output samples."""
    total = 0
    for module in modules:
        total = total * upsample_of(module) + delay_of(module)
    return total


def chain_stream(modules, x: Tensor, state: State) -> tuple[Tensor, State]:
    """Run modules in sequence, each consuming its own slice of ``state``."""
    new_state: State = []
    index = 0
    for module in modules:
        count = len(state_shapes_of(module))
        x, module_state = stream_of(module, x, state[index : index + count])
        new_state.extend(module_state)
        index += count
    return x, new_state


class StreamSequential(Streamable, nn.Sequential):
    """``nn.Sequential`` whose children may stream; delay and rate compose."""

    @property
    def upsample(self) -> int:  # type: ignore[override]
        factor = 1
        for module in self:
            factor *= upsample_of(module)
        return factor

    @property
    def delay(self) -> int:
        return chain_delay(self)

    def state_shapes(self) -> list[tuple[int, ...]]:
        return [shape for module in self for shape in state_shapes_of(module)]

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return chain_stream(self, x, state)

    def forward(self, x: Tensor) -> Tensor:
        return self.stream(x, self.init_state(x.shape[0], x.device, x.dtype))[0]


class StreamingConv1d(Streamable, nn.Conv1d):
    """Causal ``Conv1d`` with a cache of ``(kernel - 1) * dilation`` input samples.

    ``lookahead`` (default: centred, ``(kernel - 1) * dilation // 2``) is the right context of the
    "same" convolution it replaces; it becomes this layer's delay. ``[B, C_in, T] -> [B, C_out, T]``.
    """

    def __init__(self, *args, lookahead: int | None = None, **kwargs):
        kwargs.pop("padding", None)
        super().__init__(*args, padding=0, **kwargs)
        if self.stride[0] != 1:
            raise ValueError("StreamingConv1d supports stride 1 only")
        self.receptive = (self.kernel_size[0] - 1) * self.dilation[0]
        self.lookahead = self.receptive // 2 if lookahead is None else lookahead
        if not 0 <= self.lookahead <= self.receptive:
            raise ValueError(f"lookahead must be in [0, {self.receptive}]")

    @property
    def delay(self) -> int:
        return self.lookahead

    def state_shapes(self) -> list[tuple[int, ...]]:
        return [(self.in_channels, self.receptive)] if self.receptive else []

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if not self.receptive:
            return super().forward(x), []
        full = torch.cat([state[0], x], dim=-1)
        return super().forward(full), [full[..., full.shape[-1] - self.receptive :]]

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, (self.receptive, 0)))


class ChannelsLastConv1d(StreamingConv1d):
    """:class:`StreamingConv1d` whose output is channels-last ``[B, 1, T, C_out]``; its input (and its cache)
    too, ``[B, 1, T, C_in]``, unless ``input_last=False`` (then ``[B, C_in, T]``: a stack's first layer).

    The same weights and arithmetic as :class:`StreamingConv1d`, run as a 2-D convolution between two
    permutes: ONNX Runtime folds those permutes into the reorders of its blocked (NCHWc) convolution, so a
    channels-last stack runs no transpose kernels.
    """

    def __init__(self, *args, input_last: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_last = input_last
        self.time_axis = 2 if input_last else -1

    def state_shapes(self) -> list[tuple[int, ...]]:
        if not self.input_last:
            return super().state_shapes()
        return [(1, self.receptive, self.in_channels)] if self.receptive else []

    def _convolve(self, full: Tensor) -> Tensor:
        planes = full.permute(0, 3, 1, 2) if self.input_last else full.unsqueeze(2)  # [B, C_in, 1, W]
        weight = self.weight.unsqueeze(2)
        out = F.conv2d(planes, weight, self.bias, dilation=(1, self.dilation[0]), groups=self.groups)
        return out.permute(0, 2, 3, 1)

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if not self.receptive:
            return self._convolve(x), []
        full = torch.cat([state[0], x], dim=self.time_axis)
        width = full.shape[self.time_axis]
        cache = (
            full[:, :, width - self.receptive :] if self.input_last else full[..., width - self.receptive :]
        )
        return self._convolve(full), [cache]

    def forward(self, x: Tensor) -> Tensor:
        padding = (0, 0, self.receptive, 0) if self.input_last else (self.receptive, 0)
        return self._convolve(F.pad(x, padding))


class StreamingConvTranspose1d(Streamable, nn.ConvTranspose1d):
    """``ConvTranspose1d`` (stride ``u``, kernel ``k >= u``) whose overlap tail ``k - u`` is carried in state.

    Emits ``T * u`` samples per ``T`` input frames. ``delay`` is the crop of the centred version
    (``padding``, default ``(k - u) // 2``). ``[B, C_in, T] -> [B, C_out, T * u]``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding=None, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, **kwargs)
        self.overlap = kernel_size - stride
        if self.overlap < 0:
            raise ValueError("kernel_size must be >= stride")
        self.crop = self.overlap // 2 if padding is None else padding
        self.upsample = stride

    @property
    def delay(self) -> int:
        return self.crop

    def state_shapes(self) -> list[tuple[int, ...]]:
        return [(self.out_channels, self.overlap)] if self.overlap else []

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        full = F.conv_transpose1d(x, self.weight, None, self.stride, 0, 0, self.groups, self.dilation)
        emit = x.shape[-1] * self.stride[0]
        bias = self.bias[:, None] if self.bias is not None else 0.0
        if not self.overlap:
            return full + bias, []
        head = full[..., : self.overlap] + state[0]
        full = torch.cat([head, full[..., self.overlap :]], dim=-1)
        return full[..., :emit] + bias, [full[..., emit:]]

    def forward(self, x: Tensor) -> Tensor:
        return self.stream(x, self.init_state(x.shape[0], x.device, x.dtype))[0]


class DelayLine(Streamable, nn.Module):
    """Delays ``[B, C, T]`` (``channels_last``: ``[B, 1, T, C]``) by ``samples`` (zeros first). Used to align
    residual and parallel branches."""

    def __init__(self, channels: int, samples: int, channels_last: bool = False):
        super().__init__()
        self.channels, self.samples, self.channels_last = channels, samples, channels_last

    @property
    def delay(self) -> int:
        return self.samples

    def state_shapes(self) -> list[tuple[int, ...]]:
        if not self.samples:
            return []
        return [(1, self.samples, self.channels)] if self.channels_last else [(self.channels, self.samples)]

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if not self.samples:
            return x, []
        if self.channels_last:
            full = torch.cat([state[0], x], dim=2)
            return full[:, :, : x.shape[2]], [full[:, :, x.shape[2] :]]
        full = torch.cat([state[0], x], dim=-1)
        return full[..., : x.shape[-1]], [full[..., x.shape[-1] :]]

    def forward(self, x: Tensor) -> Tensor:
        return self.stream(x, self.init_state(x.shape[0], x.device, x.dtype))[0]


class TapDelayLine(Streamable, nn.Module):
    """``[B, *shape, T]`` delayed by each of ``taps`` frames at once (zeros first): ``stream`` returns the
    delayed copies, in order; one state of ``max(taps)`` frames serves them all (one concatenation and a
    slice per tap instead of a delay line each). ``delay``: the longest tap."""

    def __init__(self, shape: tuple[int, ...], taps: list[int]):
        super().__init__()
        if any(t < 0 for t in taps):
            raise ValueError(f"taps must be >= 0, not {taps}")
        self.shape, self.taps = tuple(shape), list(taps)

    @property
    def delay(self) -> int:
        return max(self.taps, default=0)

    def state_shapes(self) -> list[tuple[int, ...]]:
        return [(*self.shape, self.delay)] if self.delay else []

    def stream(self, x: Tensor, state: State) -> tuple[list[Tensor], State]:  # type: ignore[override]
        longest = self.delay
        if not longest:
            return [x for _ in self.taps], []
        full = torch.cat([state[0], x], dim=-1)
        count = x.shape[-1]
        copies = [full[..., longest - tap : longest - tap + count] for tap in self.taps]
        return copies, [full[..., full.shape[-1] - longest :]]


class Residual(Streamable, nn.Module):
    """``x + body(x)`` with the skip path delayed to match ``body`` (rate-preserving bodies only)."""

    def __init__(self, body: nn.Module, channels: int):
        super().__init__()
        if upsample_of(body) != 1:
            raise ValueError("Residual needs a rate-preserving body")
        self.body = body
        self.skip = DelayLine(channels, delay_of(body))

    @property
    def delay(self) -> int:
        return delay_of(self.body)

    def state_shapes(self) -> list[tuple[int, ...]]:
        return state_shapes_of(self.body) + state_shapes_of(self.skip)

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        count = len(state_shapes_of(self.body))
        y, body_state = stream_of(self.body, x, state[:count])
        skip, skip_state = self.skip.stream(x, state[count:])
        return y + skip, body_state + skip_state

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.skip(x)


class ParallelMean(Streamable, nn.Module):
    """Mean of parallel branches, each delayed to the slowest branch's delay."""

    def __init__(self, branches: list[nn.Module], channels: int):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        slowest = max(delay_of(b) for b in branches)
        self.aligners = nn.ModuleList(DelayLine(channels, slowest - delay_of(b)) for b in branches)

    @property
    def delay(self) -> int:
        return max(delay_of(b) for b in self.branches)

    def state_shapes(self) -> list[tuple[int, ...]]:
        return [
            s for b, a in zip(self.branches, self.aligners) for s in state_shapes_of(b) + a.state_shapes()
        ]

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        total, new_state, index = 0.0, [], 0
        for branch, aligner in zip(self.branches, self.aligners):
            y, s = chain_stream([branch, aligner], x, state[index:])
            index += len(state_shapes_of(branch)) + len(aligner.state_shapes())
            total = total + y
            new_state.extend(s)
        return total / len(self.branches), new_state

    def forward(self, x: Tensor) -> Tensor:
        return self.stream(x, self.init_state(x.shape[0], x.device, x.dtype))[0]


class LeakyReLU(nn.LeakyReLU):
    """Plain leaky ReLU (stateless; named for readability in model definitions)."""


class WithDelayedInput(Streamable):
    """Runs ``body`` (streamable layers) and appends its own input minus ``offset``, delayed to the body's
    delay, as channels.

    ``[B, C, T] -> [B, C_body + C, T]``. The offset makes the zero start state mean an input of ``offset``
    (e.g. the log-mel of silence, so a stream does not start with a frame of log-mel 0). A plain object,
    not a module: the body's modules stay registered where their owner put them (their keys do not move).
    """

    def __init__(self, body: list, channels: int, offset: float = 0.0):
        self.body, self.offset = body, offset
        self.skip = DelayLine(channels, chain_delay(body))

    @property
    def delay(self) -> int:
        return chain_delay(self.body)

    def state_shapes(self) -> list[tuple[int, ...]]:
        return [s for m in self.body for s in state_shapes_of(m)] + self.skip.state_shapes()

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        count = sum(len(state_shapes_of(m)) for m in self.body)
        y, body_state = chain_stream(self.body, x, state[:count])
        skip, skip_state = self.skip.stream(x - self.offset, state[count:])
        return torch.cat([y, skip], dim=1), body_state + skip_state
