"""Spectral parts of the frame-rate generators: a spectrum head, consistency layers, the overlap-add.

Frames flow between them as ``[B, 3 * K, T]`` (``K = n_fft / 2 + 1`` bins): the target magnitude ``A``,
then the real and imaginary parts of the complex spectrum ``A * exp(i * phase)``. Frame ``t`` covers the
same samples as mel frame ``t`` (the mel analysis rule in :mod:`ganvoice.mel`), so ``A`` can be the mel's
pseudo-inverse and the phase losses compare with the true STFT taken with the mel's framing
(:meth:`ganvoice.mel_torch.MelSpectrogram.stft`).

- :class:`SpectrumHead`: features (and, for the ``pinv`` magnitudes, the log-mel) -> frames.
- :class:`ConsistencyLayer`: one unrolled, chunk-invariant Griffin-Lim-style step (RTISI-LA with
  ``lookahead`` frames): re-analyse each frame from the least-squares overlap-add of its neighbours, keep
  the phase, restore the target magnitude. Delay ``lookahead`` frames. :class:`ConsistencyStack` chains
  them, with optional fast-Griffin-Lim momentum.
- :class:`FourierBases`: the real DFT pair (two stages of small matmuls) every transform of a generator uses.
- :class:`BlockOverlap`: sums of hop-sized blocks of neighbouring frames (one 0/1 convolution).
- :class:`OverlapAdd`: frames -> audio through the inverse real DFT and an overlap-add whose tail lives in
  the streaming state (plain matmuls: exports to ONNX without ``DFT`` ops).
"""

from __future__ import annotations

import contextlib
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganvoice.mel import MelSpec, mel_filterbank
from ganvoice.models.streaming import DelayLine, State, Streamable, TapDelayLine

MAGNITUDES = ("learned", "pinv_residual", "pinv")
PHASE_HEADS = ("angle", "ri")
MAX_LOG_MAGNITUDE = math.log(100.0)
PINV_FLOOR = 1e-5  # the pseudo-inverse magnitude's floor (it is negative or zero above fmax)
UNIT_EPS = 1e-9  # keeps the length of an (R, I) pair away from zero when normalising it


def real_dft_scale(n_fft: int) -> np.ndarray:
    """Per-bin factor ``[K]`` of the inverse real DFT's half spectrum: ``2 / n_fft``, ``1 / n_fft`` at DC and
    Nyquist (the factor :meth:`FourierBases.to_directions` keeps, so a bin's direction is the spectrum's)."""
    scale = np.full(n_fft // 2 + 1, 2.0 / n_fft)
    scale[0] = scale[-1] = 1.0 / n_fft
    return scale


def complex_block(weights: np.ndarray) -> np.ndarray:
    """Complex ``[..., out, in]`` -> real ``[..., 2 out, 2 in]`` acting on stacked (real, imaginary) parts."""
    real, imag = weights.real, weights.imag
    return np.concatenate([np.concatenate([real, -imag], -1), np.concatenate([imag, real], -1)], -2)


def dft_factors(n_fft: int) -> tuple[int, int]:
    """``(P, Q)`` with ``P * Q = n_fft``, ``P >= Q`` as close to ``sqrt(n_fft)`` as allowed, ``P`` even."""
    if n_fft < 2 or n_fft % 2:
        raise ValueError(f"the real DFT pair needs an even n_fft, not {n_fft}")
    q = math.isqrt(n_fft)
    while n_fft % q or (n_fft // q) % 2:
        q -= 1
    return n_fft // q, q


def hann(n_fft: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)


def synthesis_window(n_fft: int, hop: int) -> np.ndarray:
    """Periodic Hann window divided by the overlap-added squared window (constant at ``hop = n_fft / 4``)."""
    window = hann(n_fft)
    envelope = (window**2).reshape(-1, hop).sum(axis=0).mean()
    return window / envelope


def mel_pseudo_inverse(spec: MelSpec) -> np.ndarray:
    """``[K, n_mels]`` pseudo-inverse of the mel filterbank: ``magnitude ~ pinv @ mel``."""
    return np.linalg.pinv(mel_filterbank(spec))


def rescaled(directions: Tensor, length: Tensor) -> Tensor:
    """(re, im) pairs ``[B, 2, K, T]`` scaled to ``length`` ``[B, 1, K, T]`` -> ``[B, 2K, T]`` (real parts
    over imaginary; a pair's length floored by ``UNIT_EPS``)."""
    norm = torch.sqrt((directions * directions).sum(1, keepdim=True) + UNIT_EPS)
    return (directions * (length / norm)).reshape(length.shape[0], 2 * length.shape[2], -1)


def hop_blocks(frames: Tensor, hop: int) -> Tensor:
    """Time frames ``[B, n_fft, T]`` -> ``[B, n_fft / hop, hop, T]`` (block ``r`` = samples ``r hop ...``)."""
    return frames.reshape(frames.shape[0], frames.shape[1] // hop, hop, -1)


def unit(re: Tensor, im: Tensor) -> tuple[Tensor, Tensor]:
    """``(cos, sin)`` of the angle of ``re + i im`` without ``atan2`` (length floored by ``UNIT_EPS``)."""
    length = torch.sqrt(re * re + im * im + UNIT_EPS)
    return re / length, im / length


class FourierBases(nn.Module):
    """The real DFT pair of a generator as two stages of small matmuls (Cooley-Tukey, ``n_fft = P * Q``),
    shared by every transform so the exported graph holds one copy (plain MatMul/Gather: no ``DFT`` op).

    Samples ``n = Q * n1 + n2`` and bins ``k = k1 + P * k2``; a real signal needs only the groups
    ``k1 = 0 ... P / 2`` (the others are their complex conjugates), so each transform is one ``[2H, P]``
    matmul (``H = P / 2 + 1``), one batched ``[H, 2Q, 2Q]`` matmul and a constant gather: ~0.1 M
    multiply-adds per 1024-sample frame and direction, a fifth of a half-length matrix DFT's.

    ``to_time``: half spectra, real parts over imaginary, ``[B, 2K, T]`` -> real frames ``[B, n_fft, T]``
    (``irfft``; the imaginary parts of DC and Nyquist are ignored). ``to_directions``: real frames
    ``[B, n_fft, T]`` (or ``[B, blocks, n_fft / blocks, T]``) -> real over imaginary parts ``[B, 2, K, T]`` =
    ``rfft`` times :func:`real_dft_scale` (one positive factor per bin).
    """

    def __init__(self, n_fft: int):
        super().__init__()
        self.n_fft, self.bins = n_fft, n_fft // 2 + 1
        self.p, self.q = dft_factors(n_fft)
        self.groups = self.p // 2 + 1
        k1 = np.arange(self.groups)
        self.full_bin = k1[:, None] + self.p * np.arange(self.q)[None, :]  # [H, Q]: bin k1 + P k2
        constants = {**self._forward_constants(), **self._inverse_constants()}
        for name, value in constants.items():
            dtype = torch.int64 if value.dtype.kind == "i" else torch.float32
            self.register_buffer(name, torch.tensor(value, dtype=dtype), persistent=False)

    def _twiddles(self, sign: float) -> np.ndarray:
        """``exp(sign * 2 pi i * n2 * k / n_fft)`` for each group's full bins ``k = k1 + P k2``:
        ``[H, Q(k2), Q(n2)]``."""
        n2 = np.arange(self.q)
        return np.exp(sign * 2j * np.pi * self.full_bin[:, :, None] * n2[None, None, :] / self.n_fft)

    def _forward_constants(self) -> dict[str, np.ndarray]:
        p, q, n_fft = self.p, self.q, self.n_fft
        angle = 2.0 * np.pi * np.outer(np.arange(self.groups), np.arange(p)) / p
        first = np.stack([np.cos(angle), -np.sin(angle)], 1).reshape(2 * self.groups, p)  # rows (k1, re/im)
        # Each full bin is either a half-spectrum bin itself, or the conjugate of bin n_fft - k of a group
        # k1 > P / 2 (not computed); that one is read from here with its imaginary part negated.
        direct = self.full_bin <= n_fft // 2
        mirror = ~direct & ((n_fft - self.full_bin) % p > p // 2)
        used = np.where(direct, self.full_bin, n_fft - self.full_bin)
        gain = np.where(direct | mirror, real_dft_scale(n_fft)[np.minimum(used, n_fft // 2)], 0.0)
        second = complex_block(self._twiddles(-1.0) * gain[:, :, None])
        second[:, q:] *= np.where(mirror, -1.0, 1.0)[:, :, None]
        bins = np.arange(self.bins)
        k1, k2 = bins % p, bins // p
        conjugated = k1 > p // 2
        group, row = np.where(conjugated, p - k1, k1), np.where(conjugated, q - 1 - k2, k2)
        picks = [group * 2 * q + part * q + row for part in (0, 1)]
        return {"forward_first": first, "forward_second": second, "forward_index": np.stack(picks)}

    def _inverse_constants(self) -> dict[str, np.ndarray]:
        p, q, n_fft = self.p, self.q, self.n_fft
        mirrored = self.full_bin > n_fft // 2  # from the half spectrum: conj(X[n_fft - k])
        source = np.where(mirrored, n_fft - self.full_bin, self.full_bin)
        index = np.stack([source, source + self.bins], 1).reshape(self.groups, -1)  # cat(re, im) -> [H, 2Q]
        sign = np.concatenate([np.ones((self.groups, q)), np.where(mirrored, -1.0, 1.0)], 1)
        inverse_twiddles = self._twiddles(1.0).transpose(0, 2, 1)  # [H, Q(n2), Q(k2)]
        first = complex_block(inverse_twiddles) * sign[:, None, :]  # [H, 2Q(re/im, n2), 2Q(re/im, k2)]
        k1 = np.arange(self.groups)
        twice = np.where((k1 == 0) | (k1 == p // 2), 1.0, 2.0)  # the conjugate groups k1 > P / 2
        angle = 2.0 * np.pi * np.outer(np.arange(p), k1) / p
        second = np.stack([np.cos(angle), -np.sin(angle)], -1) * twice[None, :, None] / n_fft
        return {"inverse_index": index, "inverse_first": first, "inverse_second": second.reshape(p, -1)}

    def to_time(self, spectrum: Tensor) -> Tensor:
        batch, frames = spectrum.shape[0], spectrum.shape[-1]
        groups = self.inverse_first @ spectrum[:, self.inverse_index]  # [B, H, 2Q, T]
        time = self.inverse_second @ groups.reshape(batch, 2 * self.groups, self.q * frames)
        return time.reshape(batch, self.n_fft, frames)

    def to_directions(self, x: Tensor) -> Tensor:
        batch, frames = x.shape[0], x.shape[-1]
        groups = self.forward_first @ x.reshape(batch, self.p, self.q * frames)
        bins = self.forward_second @ groups.reshape(batch, self.groups, 2 * self.q, frames)
        return bins.reshape(batch, 2 * self.groups * self.q, frames)[:, self.forward_index]


@contextlib.contextmanager
def plain_convolution():
    """Convolutions inside run through torch's own im2col + GEMM instead of oneDNN (restored after)."""
    previous = torch.backends.mkldnn.set_flags(False, None, None, None)[0]
    try:
        yield
    finally:
        torch.backends.mkldnn.set_flags(previous, None, None, None)


class BlockOverlap(nn.Module):
    """Sums of hop-sized blocks of neighbouring frames as one 0/1 convolution.

    ``links``: ``(out_block, in_block, tap)`` triples: output block ``out_block`` of frame ``t`` adds block
    ``in_block`` of input column ``t + tap``. Frames as :func:`hop_blocks` ``[B, parts, hop, W]`` ->
    ``[B, out_blocks, hop, W - taps + 1]`` (``taps`` = the largest tap + 1). One ``Conv`` node in the
    exported graph instead of a slice and an add per link (the consistency layer has 13 links per frame,
    the overlap-add 4). Runs through torch's plain im2col convolution, not oneDNN's: its sums keep one order
    whatever the width, so chunked == offline bit for bit (oneDNN's differ by rounding with the width,
    which the consistency layer's unit directions amplify near zero bins).
    """

    def __init__(self, parts: int, links: list[tuple[int, int, int]]):
        super().__init__()
        out_blocks, taps = max(o for o, _, _ in links) + 1, max(t for _, _, t in links) + 1
        weight = np.zeros((out_blocks, parts, 1, taps), dtype=np.float32)
        for out_block, in_block, tap in links:
            weight[out_block, in_block, 0, tap] = 1.0
        self.register_buffer("weight", torch.tensor(weight), persistent=False)

    def forward(self, blocks: Tensor) -> Tensor:
        with plain_convolution():
            return F.conv2d(blocks, self.weight)


class SpectrumHead(Streamable, nn.Module):
    """Features ``[B, dim (+ n_mels), T]`` -> frames ``[B, 3 * K, T]`` (magnitude, real, imaginary).

    The log-mel channels (``pinv`` magnitudes) arrive minus ``mel_offset`` (the log-mel of silence).

    ``magnitude``: ``learned`` (the net predicts the log-magnitude), ``pinv`` (the mel's pseudo-inverse
    exactly: the net learns phase only; the log-mel arrives after the features, delayed to their frame),
    ``pinv_residual`` (log-pinv plus a learned residual). ``phase_head``: ``angle`` (a phase value, through
    cos/sin) or ``ri`` (an (R, I) pair normalised to unit length: no ``atan2`` anywhere in the graph).
    """

    def __init__(
        self, dim: int, n_fft: int, spec: MelSpec, magnitude: str, phase_head: str, nnls_iterations: int = 0
    ):
        super().__init__()
        if nnls_iterations < 0:
            raise ValueError("nnls_iterations must be >= 0")
        self.nnls_iterations = nnls_iterations
        if magnitude not in MAGNITUDES or phase_head not in PHASE_HEADS:
            raise ValueError(f"magnitude must be one of {MAGNITUDES}, phase_head one of {PHASE_HEADS}")
        self.bins, self.dim = n_fft // 2 + 1, dim
        self.magnitude, self.phase_head, self.log_base = magnitude, phase_head, spec.log_base
        self.mel_offset = spec.log_floor  # the log-mel arrives minus this (a zero start state = silence)
        magnitude_outputs = 0 if magnitude == "pinv" else self.bins
        phase_outputs = self.bins * (2 if phase_head == "ri" else 1)
        self.out = nn.Linear(dim, magnitude_outputs + phase_outputs)
        if self.uses_mel:
            if n_fft != spec.n_fft:
                raise ValueError(
                    f"magnitude {magnitude!r} needs head_n_fft == the mel's n_fft ({spec.n_fft})"
                )
            filterbank = mel_filterbank(spec)
            constants = {
                "pinv": mel_pseudo_inverse(spec),
                "filterbank": filterbank,
                # the gradient's matrix, scaled by the step 1 / Lipschitz constant (no transposes per step)
                "gradient_basis": filterbank.T / np.linalg.norm(filterbank, 2) ** 2,
            }
            for name, value in constants.items():
                self.register_buffer(name, torch.tensor(value, dtype=torch.float32), persistent=False)

    @property
    def uses_mel(self) -> bool:
        return self.magnitude != "learned"

    def _pinv_log_magnitude(self, mel: Tensor) -> Tensor:
        """log of the mel's pseudo-inverse magnitude ``[B, K, T]``, refined by ``nnls_iterations`` accelerated
        projected-gradient (FISTA) steps toward the non-negative least-squares solution of
        ``filterbank @ magnitude = mel`` (the pseudo-inverse alone is negative in places, clamped)."""
        linear = torch.exp(mel) if self.log_base == "e" else torch.pow(10.0, mel)
        magnitude = torch.clamp(self.pinv @ linear, min=PINV_FLOOR)
        previous = magnitude
        for k in range(self.nnls_iterations):
            point = magnitude + (k / (k + 3.0)) * (magnitude - previous) if k else magnitude
            previous = magnitude
            gradient = self.gradient_basis @ (self.filterbank @ point - linear)
            magnitude = torch.clamp(point - gradient, min=PINV_FLOOR)
        return torch.log(magnitude)

    def forward(self, x: Tensor) -> Tensor:
        outputs = self.out(x[:, : self.dim].transpose(1, 2)).transpose(1, 2)
        if self.magnitude == "pinv":
            log_magnitude, phase = self._pinv_log_magnitude(x[:, self.dim :] + self.mel_offset), outputs
        else:
            log_magnitude, phase = outputs[:, : self.bins], outputs[:, self.bins :]
            if self.magnitude == "pinv_residual":
                log_magnitude = log_magnitude + self._pinv_log_magnitude(x[:, self.dim :] + self.mel_offset)
        magnitude = torch.exp(log_magnitude.clamp(max=MAX_LOG_MAGNITUDE))
        if self.phase_head == "ri":
            cos, sin = unit(phase[:, : self.bins], phase[:, self.bins :])
        else:
            cos, sin = torch.cos(phase), torch.sin(phase)
        return torch.cat([magnitude, magnitude * cos, magnitude * sin], dim=1)


class ConsistencyLayer(Streamable, nn.Module):
    """One unrolled consistency iteration over frames ``[B, 3 * K, T] -> [B, 3 * K, T]``; delay ``lookahead``.

    For each frame ``j`` the segment it covers is rebuilt as the least-squares overlap-add of the windowed
    frames ``j - (n_fft / hop - 1) ... j + lookahead`` (divided by the summed squared window of the frames
    present), windowed and transformed; its phase is kept with frame ``j``'s target magnitude. All frames
    are updated in parallel from the previous layer's frames, so chunked == offline. State: the last
    ``n_fft / hop - 1 + lookahead`` windowed time frames (as :func:`hop_blocks`) and ``lookahead`` frames of
    target magnitude.
    """

    def __init__(self, n_fft: int, hop: int, lookahead: int, bases: FourierBases | None = None):
        super().__init__()
        if n_fft % hop or lookahead < 0:
            raise ValueError("n_fft must be a multiple of hop, lookahead >= 0")
        self.n_fft, self.hop, self.lookahead = n_fft, hop, lookahead
        self.bins, self.parts = n_fft // 2 + 1, n_fft // hop
        self.history = self.parts - 1 + lookahead
        self.bases = bases or FourierBases(n_fft)
        window = hann(n_fft)
        # n_fft / 2 brings the directions of to_directions near the spectrum's own scale (UNIT_EPS stays tiny)
        gain = self._analysis_gain(window) * n_fft / 2.0
        for name, value in (("window", window), ("gain", gain)):  # per sample of hop_blocks(frames)
            value = torch.tensor(value.reshape(self.parts, hop, 1), dtype=torch.float32)
            self.register_buffer(name, value, persistent=False)
        self.target = DelayLine(self.bins, lookahead)
        centre = self.parts - 1  # frame j's column in its window of frames j - parts + 1 ... j + lookahead
        links = [(b, b - d, centre + d) for b in range(self.parts) for d in self._shifts(b)]
        self.overlap = BlockOverlap(self.parts, links)  # block b - d of frame j + d onto block b of j

    def _analysis_gain(self, window: np.ndarray) -> np.ndarray:
        """``window / (summed squared window of frames j - parts + 1 ... j + lookahead)`` per sample."""
        squared = (window**2).reshape(self.parts, self.hop)
        total = np.zeros_like(squared)
        for block in range(self.parts):
            for shift in self._shifts(block):
                total[block] += squared[block - shift]
        return window / np.maximum(total.reshape(-1), 1e-8)

    def _shifts(self, block: int) -> range:
        """Offsets ``d`` of the frames ``j + d`` whose block ``block - d`` lands on block ``block`` of frame
        ``j`` (frames from ``j - parts + 1`` up to the lookahead)."""
        return range(block - self.parts + 1, min(block, self.lookahead) + 1)

    @property
    def delay(self) -> int:
        return self.lookahead

    def frames_shape(self) -> tuple[int, ...]:
        """The windowed frames the layer keeps (its state without the target's delay line)."""
        return (self.parts, self.hop, self.history)

    def state_shapes(self) -> list[tuple[int, ...]]:
        return [self.frames_shape()] + self.target.state_shapes()

    def step(self, spectrum: Tensor, target: Tensor, frames: Tensor) -> tuple[Tensor, Tensor]:
        """Spectrum ``[B, 2K, T]`` and the target magnitude already delayed by ``lookahead``
        (``[B, 1, K, T]``) -> the new spectrum ``[B, 2K, T]`` and the new frames state."""
        windowed = hop_blocks(self.bases.to_time(spectrum), self.hop) * self.window
        full = torch.cat([frames, windowed], dim=-1)  # [B, parts, hop, history + T]
        segments = self.overlap(full) * self.gain  # [B, parts, hop, T]: each frame's neighbours summed
        return rescaled(self.bases.to_directions(segments), target), full[
            ..., full.shape[-1] - self.history :
        ]

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        target, target_state = self.target.stream(x[:, : self.bins], state[1:])
        spectrum, frames = self.step(x[:, self.bins :], target.unsqueeze(1), state[0])
        return torch.cat([target, spectrum], dim=1), [frames, *target_state]

    def forward(self, x: Tensor) -> Tensor:
        return self.stream(x, self.init_state(x.shape[0], x.device, x.dtype))[0]


class ConsistencyStack(Streamable, nn.Module):
    """:class:`ConsistencyLayer` s in sequence, one per entry of ``lookaheads`` (its frames of lookahead),
    ``[B, 3 * K, T] -> [B, 3 * K, T]``, with optional fast-Griffin-Lim momentum (Perraudin et al. 2013):
    the input of layer ``i + 1`` is ``c_i + momentum * (c_i - c_(i-1))`` (``c_i`` layer ``i``'s output,
    ``c_(i-1)`` delayed by layer ``i``'s lookahead to align it); the last layer's output is the result.
    Layer ``i``'s target magnitude is the input's, delayed by the lookaheads up to it: one
    :class:`TapDelayLine` serves every layer. Delay ``sum(lookaheads)`` frames.
    """

    def __init__(self, n_fft: int, hop: int, lookaheads: list[int], momentum: float, bases):
        super().__init__()
        if not 0.0 <= momentum <= 2.0:
            raise ValueError("consistency_momentum must be in [0, 2]")
        self.momentum, self.bins = momentum, n_fft // 2 + 1
        self.layers = nn.ModuleList(ConsistencyLayer(n_fft, hop, la, bases) for la in lookaheads)
        self.targets = TapDelayLine((1, self.bins), list(itertools.accumulate(lookaheads)))
        aligned = lookaheads[1:-1] if momentum else []  # layer i's lookahead aligns c_(i-1) with c_i
        self.aligners = nn.ModuleList(DelayLine(2 * self.bins, la) for la in aligned)

    @property
    def delay(self) -> int:
        return sum(layer.delay for layer in self.layers)

    def state_shapes(self) -> list[tuple[int, ...]]:
        frames = [layer.frames_shape() for layer in self.layers]
        return frames + self.targets.state_shapes() + [s for m in self.aligners for s in m.state_shapes()]

    def _split_state(self, state: State) -> tuple[State, State, list[State]]:
        """``state`` -> the layers' frames, the targets' delay line, each aligner's slice."""
        layers, targets = len(self.layers), len(self.targets.state_shapes())
        rest, aligners = state[layers + targets :], []
        for aligner in self.aligners:
            count = len(aligner.state_shapes())
            aligners.append(rest[:count])
            rest = rest[count:]
        return state[:layers], state[layers : layers + targets], aligners

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if not self.layers:
            return x, []
        frames, target_state, aligner_state = self._split_state(state)
        targets, target_state = self.targets.stream(x[:, : self.bins].unsqueeze(1), target_state)
        new_frames, aligner_out, previous, spectrum = [], [], None, x[:, self.bins :]
        for i, layer in enumerate(self.layers):
            out, layer_frames = layer.step(spectrum, targets[i], frames[i])
            new_frames.append(layer_frames)
            spectrum = out
            if self.aligners and previous is not None and i + 1 < len(self.layers):
                earlier, new = self.aligners[i - 1].stream(previous, aligner_state[i - 1])
                aligner_out += new
                spectrum = out + self.momentum * (out - earlier)
            previous = out
        magnitude = targets[-1].squeeze(1)
        return torch.cat([magnitude, out], dim=1), new_frames + target_state + aligner_out

    def forward(self, x: Tensor) -> Tensor:
        return self.stream(x, self.init_state(x.shape[0], x.device, x.dtype))[0]


class OverlapAdd(Streamable, nn.Module):
    """Frames ``[B, 3 * K, T]`` -> audio ``[B, 1, T * hop]`` (inverse real DFT, window, overlap-add).

    Emits ``hop`` samples per frame; the state is the last ``n_fft / hop - 1`` windowed time frames (as
    :func:`hop_blocks`). Output block ``t`` sums block ``r`` of frame ``t - r`` for each of the
    ``n_fft / hop`` blocks ``r`` (one :class:`BlockOverlap` over the frames with their history). Delay
    ``(n_fft - hop) / 2`` samples relative to frames centred like the mel analysis.
    """

    def __init__(self, n_fft: int, hop: int, bases: FourierBases | None = None):
        super().__init__()
        if n_fft % hop:
            raise ValueError("head_n_fft must be a multiple of hop_length")
        self.n_fft, self.hop, self.upsample = n_fft, hop, hop
        self.bins, self.parts = n_fft // 2 + 1, n_fft // hop
        self.bases = bases or FourierBases(n_fft)
        window = torch.tensor(synthesis_window(n_fft, hop).reshape(self.parts, hop, 1), dtype=torch.float32)
        self.register_buffer("window", window, persistent=False)  # per sample of hop_blocks(frames)
        history = self.parts - 1
        self.overlap = BlockOverlap(self.parts, [(0, r, history - r) for r in range(self.parts)])

    @property
    def delay(self) -> int:
        return (self.n_fft - self.hop) // 2

    def state_shapes(self) -> list[tuple[int, ...]]:
        return [(self.parts, self.hop, self.parts - 1)]

    def stream(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        history = self.parts - 1
        frames = hop_blocks(self.bases.to_time(x[:, self.bins :]), self.hop) * self.window
        full = torch.cat([state[0], frames], dim=-1)  # [B, parts, hop, history + T]
        ola = self.overlap(full)  # [B, 1, hop, T]: block r of frame t - r, summed over r
        audio = ola.transpose(2, 3).reshape(full.shape[0], 1, -1)
        return audio, [full[..., full.shape[-1] - history :]]

    def forward(self, x: Tensor) -> Tensor:
        return self.stream(x, self.init_state(x.shape[0], x.device, x.dtype))[0]
