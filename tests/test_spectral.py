"""The spectral parts of ``fast``: overlap-add, consistency layers, the pinv magnitude, the phase losses,
recipes that name a base, and every spectral option exported to ONNX (torch == ORT, chunked == offline)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganvoice.audio import load_audio
from ganvoice.errors import GanvoiceError
from ganvoice.export.onnx_export import export_generator
from ganvoice.export.parity import example_input
from ganvoice.losses import PhaseLosses
from ganvoice.mel import MelAnalyzer, MelSpec, mel_filterbank
from ganvoice.mel_torch import MelSpectrogram
from ganvoice.models.base import build_generator
from ganvoice.models.spectral import (
    ConsistencyLayer,
    ConsistencyStack,
    FourierBases,
    OverlapAdd,
    SpectrumHead,
    real_dft_scale,
)
from ganvoice.onnxgraph import OnnxGenerator
from ganvoice.train.config import load_recipe

SPEC = MelSpec()
STFT = MelSpectrogram(SPEC, precise=False).stft  # framed like the mel: frame t is mel frame t
EDGE = 8  # frames at each end whose neighbours are missing (zero state, reflect padding)


@pytest.fixture(scope="module")
def speech(demo_wav) -> torch.Tensor:
    audio = load_audio(demo_wav, SPEC.sample_rate)
    length = min(len(audio), 2 * SPEC.sample_rate) // SPEC.hop_length * SPEC.hop_length
    return torch.tensor(np.asarray(audio[:length], dtype=np.float32))[None]


def true_frames(audio: torch.Tensor) -> torch.Tensor:
    stft = STFT(audio)
    return torch.cat([stft.abs(), stft.real, stft.imag], dim=1)


def with_phase(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    return torch.cat([magnitude, magnitude * torch.cos(phase), magnitude * torch.sin(phase)], dim=1)


def inconsistency(frames: torch.Tensor) -> float:
    """Spectral convergence between the frames' magnitude and the STFT of their overlap-add."""
    audio = OverlapAdd(SPEC.n_fft, SPEC.hop_length)(frames)[:, 0, SPEC.padding :]
    again = STFT(torch.nn.functional.pad(audio, (0, SPEC.padding)))
    target = frames[:, : again.shape[1], : again.shape[-1]]
    inner = slice(EDGE, -EDGE)
    return float(
        torch.linalg.norm(again.abs()[..., inner] - target[..., inner])
        / torch.linalg.norm(target[..., inner])
    )


@pytest.mark.parametrize("n_fft", [1024, 768, 512, 64, 16])
def test_the_two_stage_dft_pair_equals_numpys(n_fft):
    """``FourierBases`` (Cooley-Tukey as matmuls over the conjugate-free groups) against ``numpy.fft``."""
    bases, generator = FourierBases(n_fft), torch.Generator().manual_seed(n_fft)
    frames = torch.randn(2, n_fft, 5, generator=generator)
    re, im = bases.to_directions(frames).unbind(1)
    expected = np.fft.rfft(frames.double().numpy(), axis=1) * real_dft_scale(n_fft)[None, :, None]
    assert np.abs(re.numpy() - expected.real).max() < 1e-6
    assert np.abs(im.numpy() - expected.imag).max() < 1e-6
    re, im = (torch.randn(2, n_fft // 2 + 1, 5, generator=generator) for _ in range(2))
    expected = np.fft.irfft(re.double().numpy() + 1j * im.double().numpy(), n=n_fft, axis=1)
    assert np.abs(bases.to_time(torch.cat([re, im], dim=1)).numpy() - expected).max() < 1e-6


def test_a_stack_of_layers_with_their_own_lookaheads_streams_in_chunks(speech):
    """Each layer's state is its own slice (layers with and without lookahead have different state lists);
    momentum aligns with each layer's own lookahead; the delay is their sum."""
    stack = ConsistencyStack(SPEC.n_fft, SPEC.hop_length, [1, 0, 2, 1], 0.8, FourierBases(SPEC.n_fft))
    frames = true_frames(speech)
    frames = torch.cat([frames[:, : frames.shape[1] // 3], frames[:, frames.shape[1] // 3 :].roll(3, -1)], 1)
    whole, _ = stack.stream(frames, stack.init_state(1, frames.device, frames.dtype))
    state, pieces, start = stack.init_state(1, frames.device, frames.dtype), [], 0
    for size in [1, 3, 2, 7, 1, 16] * 20:
        if start >= frames.shape[-1]:
            break
        piece, state = stack.stream(frames[..., start : start + size], state)
        pieces.append(piece)
        start += size
    assert stack.delay == 4
    assert (torch.cat(pieces, dim=-1) - whole).abs().max() <= 1e-5


def test_overlap_add_inverts_the_mel_framed_stft(speech):
    audio = OverlapAdd(SPEC.n_fft, SPEC.hop_length)(true_frames(speech))[:, 0, SPEC.padding :]
    inner = slice(SPEC.n_fft, audio.shape[-1] - SPEC.n_fft)
    assert (audio[:, inner] - speech[:, inner]).abs().max() < 1e-4


@pytest.mark.parametrize("lookahead", [0, 1, 3])
def test_true_phase_is_a_fixed_point_of_the_consistency_layer(speech, lookahead):
    frames = true_frames(speech)
    out = ConsistencyLayer(SPEC.n_fft, SPEC.hop_length, lookahead)(frames)[..., lookahead:]
    reference = frames[..., : out.shape[-1]]
    error = (out - reference)[..., EDGE:-EDGE].abs().max() / reference.abs().max()
    assert error < 1e-5


def test_consistency_layers_make_a_random_phase_consistent(speech):
    magnitude = true_frames(speech)[:, : SPEC.n_fft // 2 + 1]
    phase = torch.rand(magnitude.shape, generator=torch.Generator().manual_seed(0)) * 2 * np.pi
    frames = with_phase(magnitude, phase)
    before = inconsistency(frames)
    layer = ConsistencyLayer(SPEC.n_fft, SPEC.hop_length, 1)
    for _ in range(4):
        frames = torch.nn.functional.pad(layer(frames)[..., 1:], (0, 1))  # undo the layer's 1-frame delay
    after = inconsistency(frames)
    assert before > 0.5 and after < 0.7 * before, (before, after)


def test_pinv_magnitude_reproduces_the_mel(speech):
    torch.manual_seed(0)  # random head weights and features: an (R, I) pair near zero misses the rtol
    mel = torch.tensor(MelAnalyzer(SPEC)(speech[0].numpy()))[None]
    head = SpectrumHead(dim=4, n_fft=SPEC.n_fft, spec=SPEC, magnitude="pinv", phase_head="ri")
    frames = head(torch.cat([torch.randn(1, 4, mel.shape[-1]), mel - head.mel_offset], dim=1))
    bins = SPEC.n_fft // 2 + 1
    magnitude = frames[:, :bins]
    remel = torch.tensor(mel_filterbank(SPEC), dtype=torch.float32) @ magnitude
    loud = mel > -6.0  # away from the floor; the clamp of negative pinv bins moves the mel a little
    error = (torch.log(remel) - mel)[loud].abs()
    assert error.median() < 1e-3 and error.mean() < 0.05, (error.median(), error.mean(), error.max())
    power = frames[:, bins : 2 * bins] ** 2 + frames[:, 2 * bins :] ** 2  # the (R, I) pair has unit length
    assert torch.allclose(power, magnitude**2, rtol=1e-3, atol=0.0)


def test_phase_losses_vanish_at_the_true_phase_and_not_elsewhere(speech):
    losses = PhaseLosses(SPEC)
    names = ("amplitude", "ip", "gd", "iaf", "ri", "consistency")
    frames = true_frames(speech)
    exact = losses(frames, speech, speech, names)
    assert all(value < 1e-3 for value in exact.values()), exact
    phase = torch.rand(frames[:, :513].shape, generator=torch.Generator().manual_seed(1)) * 2 * np.pi
    wrong = losses(with_phase(frames[:, :513], phase), speech, speech, names)
    assert wrong["gd"] > 0.5 and wrong["iaf"] > 0.5 and wrong["ip"] > 0.5 and wrong["amplitude"] < 1e-3


def test_nnls_steps_bring_the_magnitude_closer_to_the_mel(speech):
    mel = torch.tensor(MelAnalyzer(SPEC)(speech[0].numpy()))[None]
    features = torch.cat([torch.zeros(1, 4, mel.shape[-1]), mel - SPEC.log_floor], dim=1)
    filterbank = torch.tensor(mel_filterbank(SPEC), dtype=torch.float32)
    errors = []
    for steps in (0, 4, 16):
        head = SpectrumHead(4, SPEC.n_fft, SPEC, "pinv", "ri", nnls_iterations=steps)
        magnitude = head(features)[:, : SPEC.n_fft // 2 + 1]
        assert magnitude.min() >= 1e-5
        errors.append(float(torch.linalg.norm(filterbank @ magnitude - torch.exp(mel))))
    assert errors[2] < errors[1] < 0.9 * errors[0], errors


@pytest.mark.parametrize("magnitude", ["pinv", "pinv_residual"])
def test_a_stream_of_silence_starts_silent(magnitude):
    """The zero start state means silence, not a frame of log-mel 0 (a loud click at the start)."""
    torch.manual_seed(0)
    generator = build_generator(
        "fast", {"dim": 16, "intermediate_dim": 32, "num_blocks": 1, "magnitude": magnitude}
    )
    silence = torch.full((1, 80, 12), SPEC.log_floor)
    with torch.no_grad():
        streamed, _ = generator.stream(silence, generator.init_state(1))
    assert streamed.abs().max() < 1e-3


def test_pinv_needs_the_mels_fft_size():
    with pytest.raises(ValueError, match="head_n_fft"):
        build_generator("fast", {"magnitude": "pinv", "head_n_fft": 512})


def test_a_recipe_inherits_its_base(tmp_path):
    recipe = load_recipe("recipes/fast-phase.toml")
    assert recipe.name == "fast-phase"
    assert recipe.generator.config["magnitude"] == "pinv" and recipe.generator.config["dim"] == 192
    assert "mpd" in recipe.discriminators and recipe.train.loss_weights["gd"] == 100.0
    polish = load_recipe("recipes/fast-phase-gan.toml")
    assert sorted(polish.discriminators) == ["mrd"] and polish.generator.config["magnitude"] == "pinv"
    loop = tmp_path / "loop.toml"
    loop.write_text('base = "loop.toml"\n')
    with pytest.raises(GanvoiceError, match="includes itself"):
        load_recipe(loop)


SPECTRAL_OPTIONS = [
    {"magnitude": "pinv", "phase_head": "ri", "consistency_iterations": 1, "consistency_lookahead": 1},
    {
        "magnitude": "pinv_residual",
        "phase_head": "ri",
        "consistency_iterations": 2,
        "consistency_lookahead": 2,
        "nnls_iterations": 4,
    },
    {
        "magnitude": "pinv",
        "phase_head": "ri",
        "consistency_iterations": 3,
        "consistency_lookahead": 1,
        "consistency_momentum": 0.5,
    },
    {"magnitude": "learned", "phase_head": "angle", "consistency_iterations": 1, "consistency_lookahead": 0},
]


@pytest.mark.parametrize("options", SPECTRAL_OPTIONS, ids=lambda o: f"{o['magnitude']}-{o['phase_head']}")
def test_spectral_options_export_with_parity(options, tmp_path):
    torch.manual_seed(0)
    generator = build_generator("fast", {"dim": 32, "intermediate_dim": 64, "num_blocks": 2, **options})
    generator.eval()
    path = tmp_path / "g.onnx"
    meta = export_generator(generator, path)
    assert meta.delay_samples == generator.delay_samples
    expected_frames = 1 + options["consistency_iterations"] * options["consistency_lookahead"]
    assert meta.delay_samples == expected_frames * SPEC.hop_length + SPEC.padding
    graph = OnnxGenerator(str(path))
    x = example_input(generator, 30, batch=1)
    with torch.no_grad():
        reference = generator(torch.from_numpy(x)).numpy()
    offline = graph.offline(x)
    assert reference.std() > 1e-3 and np.abs(offline - reference).max() <= 1e-4
    for chunks in ([1], [2], [7], [3, 1, 5]):
        assert np.abs(graph.chunked(x, chunks) - offline).max() <= 1e-4, chunks
