"""Official HiFi-GAN keys round trip: save as ``{"generator": official_state_dict}``, load, same output."""

from __future__ import annotations

import pytest
import torch

from ganvoice.models.base import build_generator
from ganvoice.models.hifigan import load_official_state_dict, official_state_dict

SMALL = {"upsample_initial_channel": 16}


@pytest.mark.parametrize("variant", ["hifigan-v1", "hifigan-v2", "hifigan-v3"])
def test_official_layout_round_trip(variant, tmp_path):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    source = build_generator(variant, SMALL).eval()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.1 * torch.randn_like(p))  # away from the init, so a missed key shows
    official = official_state_dict(source)
    expected = {
        "conv_pre.weight_g",
        "conv_pre.weight_v",
        "conv_pre.bias",
        "ups.0.weight_g",
        "conv_post.weight_v",
    }
    assert expected <= set(official)
    assert "resblocks.0.convs1.0.weight_g" in official or "resblocks.0.convs.0.weight_g" in official
    assert not any("parametrizations" in key for key in official)
    torch.save({"generator": official}, tmp_path / "g_00000000")

    loaded = torch.load(tmp_path / "g_00000000", map_location="cpu", weights_only=True)["generator"]
    torch.manual_seed(1)
    target = build_generator(variant, SMALL).eval()
    load_official_state_dict(target, loaded)
    mel = torch.randn(1, 80, 12) * 2.0 - 5.0
    with torch.no_grad():
        torch.testing.assert_close(target(mel), source(mel), rtol=0, atol=0)
