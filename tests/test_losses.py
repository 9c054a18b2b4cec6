"""Adversarial, feature-matching and spectral losses: known values, zeros, gradients, one-line errors."""

from __future__ import annotations

import pytest
import torch

from ganvoice.errors import GanvoiceError
from ganvoice.losses import (
    DEFAULT_WEIGHTS,
    MelL1Loss,
    MultiResolutionSTFTLoss,
    adversarial,
    feature_matching,
    weights_from,
)


def test_adversarial_losses_known_values():
    real, fake = [torch.ones(2, 3)], [torch.zeros(2, 3)]
    lsgan = adversarial("lsgan")
    assert lsgan.discriminator(real, fake).item() == 0.0
    assert lsgan.generator(fake).item() == 1.0
    hinge = adversarial("hinge")
    assert hinge.discriminator(real, fake).item() == pytest.approx(1.0)  # relu(1 - 1) + relu(1 + 0)
    assert hinge.generator([torch.full((2,), 0.5)]).item() == pytest.approx(-0.5)
    bce = adversarial("bce")
    assert bce.discriminator(real, fake).item() == pytest.approx(0.31326 + 0.69315, abs=1e-4)
    assert bce.generator([torch.full((1,), 50.0)]).item() == pytest.approx(0.0, abs=1e-6)


def test_adversarial_sums_over_sub_discriminators():
    lsgan = adversarial("lsgan")
    assert lsgan.generator([torch.zeros(4), torch.zeros(2, 2)]).item() == 2.0


def test_unknown_adversarial_and_weights_are_one_line_errors():
    with pytest.raises(GanvoiceError, match="unknown adversarial loss 'wgan'"):
        adversarial("wgan")
    with pytest.raises(GanvoiceError, match="unknown loss weight 'melx'"):
        weights_from({"melx": 1.0})
    assert weights_from({"mel": 10}) == {**DEFAULT_WEIGHTS, "mel": 10.0}


def test_feature_matching_is_zero_for_equal_maps_and_detaches_real():
    real = [[torch.randn(2, 4, requires_grad=True), torch.randn(2, 3)]]
    fake = [[r.detach().clone().requires_grad_(True) for r in real[0]]]
    assert feature_matching(real, fake).item() == 0.0
    fake[0][0].data += 1.0
    loss = feature_matching(real, fake)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert real[0][0].grad is None and fake[0][0].grad is not None


def test_spectral_losses_zero_for_equal_audio_and_grow_with_error():
    torch.manual_seed(0)
    real = 0.3 * torch.randn(2, 4096)
    mel, stft = MelL1Loss(), MultiResolutionSTFTLoss()
    assert mel(real, real).item() == 0.0
    assert stft(real, real).item() == 0.0
    near, far = real + 0.01 * torch.randn_like(real), real + 0.3 * torch.randn_like(real)
    assert 0 < mel(near, real) < mel(far, real)
    assert 0 < stft(near, real) < stft(far, real)


def test_spectral_losses_give_finite_gradients_for_near_silence():
    torch.manual_seed(0)
    fake = (1e-6 * torch.randn(1, 4096)).requires_grad_(True)
    real = 0.1 * torch.randn(1, 4096)
    (MelL1Loss()(fake, real) + MultiResolutionSTFTLoss()(fake, real)).backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
