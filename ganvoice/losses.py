"""Training losses: adversarial (LSGAN, hinge, BCE), feature matching, mel L1, multi-resolution STFT,
and the spectral/phase terms of a generator's head frames (APNet2 / FreeV style, :class:`PhaseLosses`).

All take and return float32 tensors; audio is ``[B, N]``. Adversarial losses take the ``logits`` lists
of a :class:`~ganvoice.models.discriminators.DiscriminatorSet` and sum the per-sub-discriminator means.
The trainer weights the terms with ONE dict keyed by the names it logs (``mel``, ``mrstft``, ``adv``,
``fm``); see :data:`DEFAULT_WEIGHTS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganvoice.errors import GanvoiceError
from ganvoice.mel import MelSpec
from ganvoice.mel_torch import MelSpectrogram

# HiFi-GAN's balance (45 x mel, 2 x feature matching); the MR-STFT term weighted like the mel term.
# The head-frame terms (see PhaseLosses) are off unless a recipe weights them.
DEFAULT_WEIGHTS: dict[str, float] = {"mel": 45.0, "mrstft": 45.0, "adv": 1.0, "fm": 2.0}
PHASE_TERMS = ("amplitude", "ip", "gd", "iaf", "ri", "consistency")
DEFAULT_WEIGHTS.update(dict.fromkeys(PHASE_TERMS, 0.0))
LOSS_NAMES = tuple(DEFAULT_WEIGHTS)
PHASE_WEIGHTINGS = ("magnitude", "none")
STFT_MAGNITUDE_FLOOR = 1e-7


@dataclass(frozen=True)
class Adversarial:
    """One adversarial objective: ``discriminator(real, fake)`` and ``generator(fake)`` over logit lists."""

    name: str

    def discriminator(self, real: list[Tensor], fake: list[Tensor]) -> Tensor:
        return sum(self._d(r.float(), f.float()) for r, f in zip(real, fake))

    def generator(self, fake: list[Tensor]) -> Tensor:
        return sum(self._g(f.float()) for f in fake)

    def _d(self, r: Tensor, f: Tensor) -> Tensor:
        if self.name == "lsgan":
            return torch.mean((1.0 - r) ** 2) + torch.mean(f**2)
        if self.name == "hinge":
            return torch.mean(F.relu(1.0 - r)) + torch.mean(F.relu(1.0 + f))
        ones, zeros = torch.ones_like(r), torch.zeros_like(f)
        return F.binary_cross_entropy_with_logits(r, ones) + F.binary_cross_entropy_with_logits(f, zeros)

    def _g(self, f: Tensor) -> Tensor:
        if self.name == "lsgan":
            return torch.mean((1.0 - f) ** 2)
        if self.name == "hinge":
            return -torch.mean(f)
        return F.binary_cross_entropy_with_logits(f, torch.ones_like(f))


ADVERSARIAL = ("lsgan", "hinge", "bce")


def adversarial(name: str) -> Adversarial:
    if name not in ADVERSARIAL:
        raise GanvoiceError(f"unknown adversarial loss {name!r}; known: {', '.join(ADVERSARIAL)}")
    return Adversarial(name)


def feature_matching(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """Sum over sub-discriminators and layers of ``mean |real - fake|`` (real features detached)."""
    total = 0.0
    for real_maps, fake_maps in zip(real, fake):
        for r, f in zip(real_maps, fake_maps):
            total = total + torch.mean(torch.abs(r.detach().float() - f.float()))
    return total


class MelL1Loss(nn.Module):
    """``(fake [B, N], real [B, N]) -> mean |logmel(fake) - logmel(real)|`` (float32 training mel)."""

    def __init__(self, spec: MelSpec | None = None):
        super().__init__()
        self.mel = MelSpectrogram(spec, precise=False)

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        return F.l1_loss(self.mel(fake.float()), self.mel(real.float()))


class MultiResolutionSTFTLoss(nn.Module):
    """Mean over resolutions of spectral convergence + L1 log-magnitude (Yamamoto et al. 2020).

    ``resolutions``: ``(n_fft, hop, win)`` triples; default FFT 512/1024/2048 with hop = n_fft / 4.
    ``(fake [B, N], real [B, N]) -> scalar``.
    """

    def __init__(self, resolutions: tuple[tuple[int, int, int], ...] | None = None):
        super().__init__()
        self.resolutions = tuple(resolutions or ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048)))
        for i, (_, _, win) in enumerate(self.resolutions):
            self.register_buffer(f"window{i}", torch.hann_window(win), persistent=False)

    def magnitude(self, audio: Tensor, index: int) -> Tensor:
        n_fft, hop, win = self.resolutions[index]
        window = getattr(self, f"window{index}")
        stft = torch.stft(audio.float(), n_fft, hop, win, window, center=True, return_complex=True)
        return torch.sqrt((stft.real**2 + stft.imag**2).clamp_min(STFT_MAGNITUDE_FLOOR**2))

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        total = 0.0
        for i in range(len(self.resolutions)):
            f, r = self.magnitude(fake, i), self.magnitude(real, i)
            convergence = torch.linalg.norm(r - f) / torch.linalg.norm(r).clamp_min(STFT_MAGNITUDE_FLOOR)
            total = total + convergence + F.l1_loss(torch.log(f), torch.log(r))
        return total / len(self.resolutions)


def anti_wrap(x: Tensor) -> Tensor:
    """``|x - 2 pi round(x / 2 pi)|``: distance of a phase difference from the nearest multiple of 2 pi."""
    return torch.abs(x - 2.0 * math.pi * torch.round(x / (2.0 * math.pi)))


class PhaseLosses(nn.Module):
    """Losses on a generator's head frames against the true STFT taken with the mel's framing.

    ``(frames [B, 3 * K, T], real [B, T * hop], fake [B, T * hop], names) -> {name: scalar}``. Terms:
    ``amplitude`` (MSE of log-magnitudes), ``ip`` (instantaneous phase), ``gd`` (group delay: phase
    difference along frequency), ``iaf`` (instantaneous angular frequency: along time), all anti-wrapped and,
    with ``weighting="magnitude"``, weighted by the true magnitude normalised to mean 1 per example;
    ``ri`` (L1 of real and imaginary parts) and ``consistency`` (L1 between the head's complex frames and
    the STFT of the audio actually generated). The ``edge`` frames at each end, whose true STFT needs
    samples outside the segment, are left out.
    """

    def __init__(self, spec: MelSpec, weighting: str = "magnitude"):
        super().__init__()
        if weighting not in PHASE_WEIGHTINGS:
            raise GanvoiceError(
                f"unknown phase weighting {weighting!r}; known: {', '.join(PHASE_WEIGHTINGS)}"
            )
        self.weighting = weighting
        self.analysis = MelSpectrogram(spec, precise=False)  # its STFT frames are the head's frames
        self.edge = math.ceil(spec.padding / spec.hop_length)

    def _trim(self, x: Tensor) -> Tensor:
        return x[..., self.edge : x.shape[-1] - self.edge]

    def forward(
        self, frames: Tensor, real: Tensor, fake: Tensor, names: tuple[str, ...]
    ) -> dict[str, Tensor]:
        bins = frames.shape[1] // 3
        magnitude, re, im = (self._trim(part.float()) for part in frames.split(bins, dim=1))
        true = self._trim(self.analysis.stft(real.float()))
        true_magnitude = true.abs()
        weight = torch.ones_like(true_magnitude)
        if self.weighting == "magnitude":
            weight = true_magnitude / true_magnitude.mean(dim=(1, 2), keepdim=True).clamp_min(1e-8)
        out: dict[str, Tensor] = {}
        if "amplitude" in names:
            floor = STFT_MAGNITUDE_FLOOR
            out["amplitude"] = F.mse_loss(
                torch.log(magnitude.clamp_min(floor)), torch.log(true_magnitude + floor)
            )
        if {"ip", "gd", "iaf"} & set(names):
            phase, true_phase = torch.atan2(im, re), torch.angle(true)
            error = phase - true_phase
            if "ip" in names:
                out["ip"] = torch.mean(weight * anti_wrap(error))
            if "gd" in names:
                pair = 0.5 * (weight[:, 1:] + weight[:, :-1])
                out["gd"] = torch.mean(pair * anti_wrap(torch.diff(error, dim=1)))
            if "iaf" in names:
                pair = 0.5 * (weight[..., 1:] + weight[..., :-1])
                out["iaf"] = torch.mean(pair * anti_wrap(torch.diff(error, dim=2)))
        if "ri" in names:
            out["ri"] = F.l1_loss(re, true.real) + F.l1_loss(im, true.imag)
        if "consistency" in names:
            generated = self._trim(self.analysis.stft(fake.float()))
            out["consistency"] = F.l1_loss(re, generated.real) + F.l1_loss(im, generated.imag)
        return out


def weights_from(overrides: dict[str, float] | None) -> dict[str, float]:
    """:data:`DEFAULT_WEIGHTS` updated by ``overrides``; unknown names are a one-line error."""
    weights = dict(DEFAULT_WEIGHTS)
    for key, value in (overrides or {}).items():
        if key not in weights:
            raise GanvoiceError(f"unknown loss weight {key!r}; known: {', '.join(LOSS_NAMES)}")
        weights[key] = float(value)
    return weights
