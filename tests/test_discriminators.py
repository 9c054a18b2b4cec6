"""Discriminators: output structure per type, the combined set, the registry's one-line errors."""

from __future__ import annotations

import pytest
import torch

from ganvoice.errors import GanvoiceError
from ganvoice.models.discriminators import (
    MLPDiscriminator,
    build_discriminators,
    discriminator_names,
    make_discriminator_config,
)

SMALL = {
    "mpd": {"periods": [2, 3], "channels": [4, 8]},
    "msd": {"scales": 2, "channels": [16, 16, 16, 16, 16, 16, 16], "groups": [1, 4, 4, 4, 4, 4, 1]},
    "mrd": {"resolutions": [[256, 64, 256], [512, 128, 512]], "channels": 4, "layers": 2},
    "mlp": {"clip_length": 1024, "hidden": 8},
}
COUNTS = {"mpd": 2, "msd": 2, "mrd": 2, "mlp": 1}


def test_registry_lists_all():
    assert discriminator_names() == ["mlp", "mpd", "mrd", "msd"]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_each_discriminator_returns_logits_and_features(name):
    torch.manual_seed(0)
    discriminator = build_discriminators({name: SMALL[name]})
    audio = torch.randn(3, 2048, requires_grad=True)
    logits, features = discriminator(audio)
    assert len(logits) == len(features) == COUNTS[name]
    for score, maps in zip(logits, features):
        assert score.dim() == 2 and score.shape[0] in (3, 6)  # the MLP cuts 2048 into two clips
        assert all(torch.isfinite(m).all() for m in maps) and len(maps) >= 1
    sum(s.mean() for s in logits).backward()
    assert audio.grad is not None and audio.grad.abs().sum() > 0


def test_a_set_concatenates_in_name_order():
    both = build_discriminators({"mrd": SMALL["mrd"], "mpd": SMALL["mpd"]})
    assert list(both) == ["mpd", "mrd"]
    logits, features = both(torch.randn(2, 2048))
    assert len(logits) == len(features) == 4


def test_odd_lengths_are_padded_for_periods():
    logits, _ = build_discriminators({"mpd": SMALL["mpd"]})(torch.randn(1, 2049))
    assert len(logits) == 2


def test_registry_errors_are_one_line():
    with pytest.raises(GanvoiceError, match="unknown discriminator 'xyz'"):
        build_discriminators({"xyz": {}})
    with pytest.raises(GanvoiceError, match="unknown config keys for discriminator 'mpd': period"):
        make_discriminator_config("mpd", {"period": 2})
    with pytest.raises(GanvoiceError, match="at least one"):
        build_discriminators({})


def test_mlp_is_the_seed_discriminator():
    mlp = MLPDiscriminator(make_discriminator_config("mlp", {"clip_length": 64, "hidden": 4}))
    probability = mlp.probability(torch.randn(5, 64))
    assert probability.shape == (5, 1) and ((probability > 0) & (probability < 1)).all()
    with pytest.raises(GanvoiceError, match="clips of 64"):
        mlp(torch.randn(1, 100))
