"""The bundled models: metadata, streaming parity, quality against Griffin-Lim, the fine-tuning checkpoint."""

from pathlib import Path

import numpy as np
import pytest

from ganvoice.audio import load_audio
from ganvoice.mel import MelAnalyzer, MelSpec
from ganvoice.metrics import griffin_lim, mrstft_distance
from ganvoice.onnxgraph import OnnxGenerator

ASSETS = Path(__file__).resolve().parents[1] / "ganvoice" / "assets"
DEFAULT, NOISE, FINETUNE = ASSETS / "default.onnx", ASSETS / "noise.onnx", ASSETS / "default-finetune.pt"
HELD_OUT = Path("/usr/share/klettres/en")  # klettres-data's English readings: never trained on
MAX_MODEL_BYTES = 8 * 1024 * 1024


def held_out_clips(count=4):
    clips = sorted(HELD_OUT.rglob("*.ogg"))[::7][:count]
    if not clips:
        pytest.skip("klettres-data is not installed (make system-deps installs it)")
    return clips


@pytest.fixture(scope="module")
def default_model():
    return OnnxGenerator(DEFAULT)


def test_default_model_metadata(default_model):
    meta = default_model.metadata
    assert DEFAULT.stat().st_size <= MAX_MODEL_BYTES
    assert meta.variant == "fast" and meta.conditioning == "mel"
    assert meta.mel == MelSpec() and meta.sample_rate == 22050 and meta.hop_length == 256
    assert meta.delay_samples == 640 and meta.training_step > 0 and len(meta.checkpoint_sha256) == 64
    assert meta.extra.get("weights") == "fp32"


def test_noise_model_metadata_and_parity():
    model = OnnxGenerator(NOISE)
    meta = model.metadata
    assert meta.conditioning == "noise" and meta.mel is None and meta.training_step > 0
    z = np.random.default_rng(0).standard_normal((1, meta.channels, 30)).astype(np.float32)
    offline = model.offline(z)
    assert np.abs(offline).max() > 1e-3
    assert np.abs(model.chunked(z, [1, 4, 2, 9]) - offline).max() <= 1e-4


def test_default_model_streams_like_offline_on_speech(default_model):
    audio = load_audio(held_out_clips(1)[0], 22050)
    mel = MelAnalyzer(default_model.metadata.mel)(audio)[None]
    offline = default_model.offline(mel)
    for chunks in ([1], [2, 5], [16], [3, 1, 7]):
        assert np.abs(default_model.chunked(mel, chunks) - offline).max() <= 1e-4


def test_default_model_beats_griffin_lim_on_held_out_speech(default_model):
    """Multi-resolution STFT distance, lower is better; Griffin-Lim (32 iterations) is the floor."""
    spec = default_model.metadata.mel
    ours, floor = [], []
    for clip in held_out_clips():
        audio = load_audio(clip, spec.sample_rate)
        mel = MelAnalyzer(spec)(audio)
        reference = audio[: mel.shape[1] * spec.hop_length]
        ours.append(mrstft_distance(reference, default_model.offline(mel[None])[0]))
        floor.append(mrstft_distance(reference, griffin_lim(mel, spec)))
    assert np.mean(ours) < np.mean(floor), (ours, floor)


def test_finetune_checkpoint_is_the_shipped_generator(default_model):
    torch = pytest.importorskip("torch")
    from ganvoice.export.checkpoint import generator_from_checkpoint

    generator, step = generator_from_checkpoint(str(FINETUNE))
    assert step == default_model.metadata.training_step
    x = np.random.default_rng(1).normal(-6.0, 2.0, (1, 80, 20)).astype(np.float32)
    with torch.no_grad():
        ours = generator.float().eval()(torch.from_numpy(x)).numpy()
    shipped = default_model.offline(x)
    correlation = np.corrcoef(ours.ravel(), shipped.ravel())[0, 1]
    assert correlation > 0.999  # float16 weights in the checkpoint, float32 in the ONNX file
