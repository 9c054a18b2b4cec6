"""Streaming parity for every registered generator: chunked ``stream`` equals the offline ``forward``.

For input ``x [1, C, T]``: ``forward(x)`` appends ``flush_length`` frames of ``pad_value`` and drops the
first ``delay_samples`` samples, so ``stream(x ++ pad)[delay : delay + T * hop]`` run in chunks of any size
must equal it (fp32, random weights, <= 1e-5 max abs).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from ganvoice.models.base import build_generator, stream_in_chunks, variant_names

TOLERANCE = 1e-5
FRAMES = 70
CHUNKINGS = [[1], [2], [3], [7], [16], [64]] + [
    np.random.default_rng(seed).integers(1, 20, size=12).tolist() for seed in range(3)
]
# every magnitude / phase-head option and consistency layers of lookahead 0, 1 and 2
FAST_SPECTRAL_OPTIONS = [
    {
        "magnitude": "pinv",
        "phase_head": "ri",
        "consistency_iterations": 1,
        "consistency_lookahead": 1,
        "nnls_iterations": 3,
    },
    {
        "magnitude": "pinv_residual",
        "phase_head": "angle",
        "consistency_iterations": 2,
        "consistency_lookahead": 0,
    },
    {"magnitude": "learned", "phase_head": "ri", "consistency_iterations": 1, "consistency_lookahead": 2},
    {"magnitude": "pinv", "phase_head": "angle", "consistency_iterations": 0},
    {"magnitude": "pinv", "phase_head": "ri", "consistency_iterations": 4, "consistency_momentum": 0.8},
]
# small configs (many chunks): the layer structure and the delays are those of the full models
CONFIGS = {
    "fast": [
        # 8 frames: 6 in the embedding, 2 in the first block (its channels-last conv and delayed skip)
        {"dim": 16, "intermediate_dim": 32, "num_blocks": 2, "conv_lookahead_frames": la}
        for la in (0, 1, 2, 8)
    ]
    + [{"dim": 16, "intermediate_dim": 32, "num_blocks": 1, "conditioning": "noise", "latent_channels": 8}]
    + [{"dim": 16, "intermediate_dim": 32, "num_blocks": 1, **options} for options in FAST_SPECTRAL_OPTIONS],
    "hifigan-v1": [{"upsample_initial_channel": 16}],
    "hifigan-v2": [{"upsample_initial_channel": 32}],
    "hifigan-v3": [{"upsample_initial_channel": 32}],
    "seed-mlp": [{"hidden": 16, "clip_length": 256, "latent_channels": 8}],
}
CASES = [(variant, config) for variant, configs in CONFIGS.items() for config in configs]


def test_every_generator_is_covered():
    assert sorted(CONFIGS) == variant_names()


def randomize(generator: torch.nn.Module, seed: int) -> None:
    """Non-trivial weights: weight-normed layers get unit-norm rows (HiFi-GAN's init is ~0.01, which
    would make almost any output pass), biases are random too."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in generator.modules():
            if parametrize.is_parametrized(module, "weight"):
                module.parametrizations.weight.original0.fill_(1.0)
                module.parametrizations.weight.original1.normal_()
            if getattr(module, "bias", None) is not None:
                module.bias.normal_(0.0, 0.1)


@pytest.mark.parametrize("variant, config", CASES, ids=[f"{v}-{i}" for i, (v, _) in enumerate(CASES)])
def test_chunked_stream_equals_offline(variant, config):
    torch.set_num_threads(1)
    generator = build_generator(variant, config).eval()
    randomize(generator, seed=len(CASES))
    torch.manual_seed(1)
    x = torch.randn(1, generator.channels, FRAMES)
    if generator.conditioning == "mel":
        x = x * 2.0 - 5.0  # log-mel-like values
    with torch.no_grad():
        offline = generator(x)
    assert offline.shape == (1, FRAMES * generator.hop_length)
    assert offline.abs().max() > 0.05 and torch.isfinite(offline).all()  # not trivially small
    padded = F.pad(x, (0, generator.flush_length), value=generator.pad_value)
    delay, length = generator.delay_samples, FRAMES * generator.hop_length
    for sizes in CHUNKINGS:
        streamed = stream_in_chunks(generator, padded, sizes)[:, delay : delay + length]
        error = (streamed - offline).abs().max().item()
        assert error <= TOLERANCE, f"{variant} {config} chunks {sizes}: max abs error {error:.2e}"


def test_parity_test_can_fail():
    """A generator whose state is dropped between chunks must fail the comparison."""
    generator = build_generator("fast", CONFIGS["fast"][1]).eval()
    randomize(generator, seed=0)
    x = torch.randn(1, generator.channels, 20) * 2.0 - 5.0
    with torch.no_grad():
        offline = generator(x)
        padded = F.pad(x, (0, generator.flush_length), value=generator.pad_value)
        pieces = [
            generator.stream(padded[..., i : i + 4], generator.init_state(1))[0] for i in range(0, 21, 4)
        ]
    broken = torch.cat(pieces, dim=-1)[
        :, generator.delay_samples : generator.delay_samples + offline.shape[-1]
    ]
    assert (broken - offline).abs().max() > TOLERANCE
