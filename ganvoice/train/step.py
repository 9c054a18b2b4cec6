"""The training state and the ONE GAN step function (plus validation).

Phases: while ``step < gan_start_step`` a step is spectral only (mel L1 + MR-STFT, no discriminator work);
afterwards each step updates the discriminators, then the generator with the adversarial, feature-matching
and spectral terms. The head-frame terms (amplitude, phase derivatives, R/I, consistency) join in both
phases when the recipe weights them. Noise-conditioned generators have no target for their input: their
generator loss is the adversarial term alone.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganvoice.losses import (
    PHASE_TERMS,
    Adversarial,
    MelL1Loss,
    MultiResolutionSTFTLoss,
    PhaseLosses,
    feature_matching,
)
from ganvoice.models.base import Generator
from ganvoice.models.discriminators import DiscriminatorSet


@dataclass
class TrainState:
    """Everything a checkpoint holds that changes during training.

    ``g_model``/``d_model`` are what the step calls: the modules themselves, or their DDP wrappers.
    """

    generator: Generator
    discriminators: DiscriminatorSet | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler | None
    step: int = 0
    best_val: float = math.inf
    g_model: nn.Module | None = None
    d_model: nn.Module | None = None

    def __post_init__(self) -> None:
        self.g_model = self.g_model or self.generator
        self.d_model = self.d_model or self.discriminators


@dataclass
class StepSetup:
    """The fixed parts of a step: losses, their weights, phase boundary, precision, clipping."""

    weights: dict[str, float]
    adversarial: Adversarial
    mel_loss: MelL1Loss
    stft_loss: MultiResolutionSTFTLoss
    gan_start_step: int
    conditioning: str
    grad_clip: float
    phase_loss: PhaseLosses | None = None
    device_type: str = "cpu"
    bf16: bool = False

    @property
    def phase_terms(self) -> tuple[str, ...]:
        """The head-frame terms this recipe weights (computed only when weighted)."""
        if self.phase_loss is None or self.conditioning != "mel":
            return ()
        return tuple(name for name in PHASE_TERMS if self.weights.get(name, 0.0) > 0.0)

    def autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)


def train_step(state: TrainState, cond: Tensor, real: Tensor, setup: StepSetup) -> dict[str, float]:
    """One optimisation step on ``cond [B, C, T]`` (mel or latent noise) and ``real [B, T * hop]``.

    Returns the logged scalars: each loss term, ``gen_total``, ``disc`` (GAN phase), grad norms, LRs.
    """
    gan = state.step >= setup.gan_start_step
    with setup.autocast():
        fake, frames = (
            state.g_model(cond, with_frames=True) if setup.phase_terms else (state.g_model(cond), None)
        )
    fake = fake.float()
    logs: dict[str, float] = {}
    real_features = None
    if gan:
        logs["disc"], logs["grad_norm_d"], real_features = _discriminator_update(state, real, fake, setup)
    terms = _generator_terms(state, fake, real, real_features, gan, setup)
    if frames is not None:
        terms.update(setup.phase_loss(frames, real, fake, setup.phase_terms))
    total = sum(setup.weights[name] * value for name, value in terms.items())
    state.opt_g.zero_grad(set_to_none=True)
    total.backward()
    logs["grad_norm_g"] = _clip(state.generator.parameters(), setup.grad_clip)
    state.opt_g.step()
    state.sched_g.step()
    logs.update({name: value.item() for name, value in terms.items()})
    logs["gen_total"] = total.item()
    logs["lr_g"] = state.opt_g.param_groups[0]["lr"]
    state.step += 1
    return logs


def _discriminator_update(
    state: TrainState, real: Tensor, fake: Tensor, setup: StepSetup
) -> tuple[float, float, list[list[Tensor]]]:
    """One discriminator step on real and (detached) fake audio in one batch; returns the loss, the grad
    norm and the real features (detached) for the generator's feature matching."""
    batch = real.shape[0]
    with setup.autocast():
        logits, features = state.d_model(torch.cat([real, fake.detach()]))
    loss = setup.adversarial.discriminator([x[:batch] for x in logits], [x[batch:] for x in logits])
    state.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    norm = _clip(state.discriminators.parameters(), setup.grad_clip)
    state.opt_d.step()
    state.sched_d.step()
    real_features = [[f[:batch].detach() for f in maps] for maps in features]
    return loss.item(), norm, real_features


def _generator_terms(
    state: TrainState,
    fake: Tensor,
    real: Tensor,
    real_features: list[list[Tensor]] | None,
    gan: bool,
    setup: StepSetup,
) -> dict[str, Tensor]:
    terms: dict[str, Tensor] = {}
    paired = setup.conditioning == "mel"
    if paired:
        terms["mel"] = setup.mel_loss(fake, real)
        terms["mrstft"] = setup.stft_loss(fake, real)
    if gan:
        discriminators = state.discriminators  # unwrapped: no DDP gradient sync for this pass
        discriminators.requires_grad_(False)
        try:
            with setup.autocast():
                logits, features = discriminators(fake)
        finally:
            discriminators.requires_grad_(True)
        terms["adv"] = setup.adversarial.generator(logits)
        if paired:
            terms["fm"] = feature_matching(real_features, features)
    return terms


def _clip(parameters, max_norm: float) -> float:
    limit = max_norm if max_norm > 0 else math.inf
    return float(torch.nn.utils.clip_grad_norm_(list(parameters), limit))


@dataclass
class Validation:
    metric: float
    fake: Tensor  # [B, N] generated audio of the logged clips
    real: Tensor  # [B, N]
    fake_mel: Tensor  # [B, n_mels, T]
    real_mel: Tensor


@torch.no_grad()
def validate(
    generator: Generator, cond: Tensor, real: Tensor, mel_loss: MelL1Loss, batch_size: int
) -> Validation:
    """Mel L1 of the generator on fixed validation segments ``cond [V, C, T]``, ``real [V, N]``.

    Paired (mel) conditioning: mean mel L1 against the targets. Noise conditioning has no target per clip:
    the metric is the L1 distance between the average log-mel spectra of generated and real audio.
    """
    was_training = generator.training
    generator.eval()
    fakes = torch.cat([generator(cond[i : i + batch_size]).float() for i in range(0, len(cond), batch_size)])
    generator.train(was_training)
    fake_mel, real_mel = mel_loss.mel(fakes), mel_loss.mel(real.float())
    if generator.conditioning == "mel":
        metric = F.l1_loss(fake_mel, real_mel).item()
    else:
        metric = F.l1_loss(fake_mel.mean(dim=(0, 2)), real_mel.mean(dim=(0, 2))).item()
    return Validation(metric, fakes, real, fake_mel, real_mel)
