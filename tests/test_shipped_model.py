"""The bundled models: metadata, streaming parity, quality against Griffin-Lim, the fine-tuning checkpoint."""

from pathlib import Path

import numpy as np
import pytest

from ganvoice.audio import load_audio
from ganvoice.corpus.build import CorpusConfig, build_corpus
from ganvoice.corpus.sources import KLETTRES_HELD_OUT, KLETTRES_ROOT
from ganvoice.evaluate import evaluate_model, select_clips
from ganvoice.mel import MelAnalyzer, MelSpec
from ganvoice.onnxgraph import OnnxGenerator

ASSETS = Path(__file__).resolve().parents[1] / "ganvoice" / "assets"
DEFAULT, NOISE, FINETUNE = ASSETS / "default.onnx", ASSETS / "noise.onnx", ASSETS / "default-finetune.pt"
HELD_OUT = Path("/usr/share/klettres/en")  # klettres-data's English readings: never trained on
MAX_MODEL_BYTES = 8 * 1024 * 1024
TEST_SPLIT_CLIPS = 94
# measured when the model shipped (see the model card), less a margin for other machines' float rounding
SHIPPED_FLOOR = {"pesq_wb": 3.3, "stoi": 0.905, "mel_l1": 0.112}  # measured 3.389 / 0.912 / 0.105


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
    assert meta.training_step > 0 and len(meta.checkpoint_sha256) == 64
    assert meta.extra.get("weights") == "fp32"
    config = meta.extra[
        "generator_config"
    ]  # the delay is the layers': conv lookahead, consistency, overlap-add
    frames = (
        config["conv_lookahead_frames"] + config["consistency_iterations"] * config["consistency_lookahead"]
    )
    assert meta.delay_samples == frames * meta.hop_length + meta.mel.padding


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


@pytest.fixture(scope="module")
def test_split(tmp_path_factory):
    """The corpus's whole held-out ``test`` split (klettres ``en`` + ``en_GB``), built as the builder does."""
    if not all((KLETTRES_ROOT / lang).is_dir() for lang in KLETTRES_HELD_OUT):
        pytest.skip("klettres-data is not installed (make system-deps installs it)")
    root = tmp_path_factory.mktemp("klettres")
    for lang in KLETTRES_HELD_OUT:
        (root / lang).symlink_to(KLETTRES_ROOT / lang)
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(CorpusConfig(out=out, sources=(f"klettres:{root}",), progress=False))
    return select_clips(str(out), "test", max_clips=10_000)


@pytest.fixture(scope="module")
def test_split_result(test_split):
    """The default model streamed one frame per call over every held-out clip, next to Griffin-Lim-32."""
    assert len(test_split) == TEST_SPLIT_CLIPS
    result = evaluate_model(str(DEFAULT), test_split, chunk_frames=1, offline=False)
    return result["means"]["streaming"], result["means"]["griffin_lim"]


def test_default_model_keeps_its_measured_quality_on_the_whole_test_split(test_split_result):
    """The model card's figures (``ganvoice/assets/default.md``) hold: a regression guard, set a little
    below what was measured when the model shipped."""
    ours, _ = test_split_result
    assert ours["pesq_wb"] >= SHIPPED_FLOOR["pesq_wb"], ours
    assert ours["stoi"] >= SHIPPED_FLOOR["stoi"], ours
    assert ours["mel_l1"] <= SHIPPED_FLOOR["mel_l1"], ours


def test_default_model_beats_griffin_lim_on_the_whole_test_split(test_split_result):
    """Streamed one frame per call, over every held-out clip: PESQ-wb and STOI higher and mel L1 lower
    than Griffin-Lim-32 from the same mel."""
    ours, floor = test_split_result
    assert ours["pesq_wb"] > floor["pesq_wb"], (ours, floor)
    assert ours["stoi"] > floor["stoi"], (ours, floor)
    assert ours["mel_l1"] < floor["mel_l1"], (ours, floor)


def test_finetune_checkpoint_is_the_shipped_generator(default_model):
    torch = pytest.importorskip("torch")
    from ganvoice.export.checkpoint import generator_from_checkpoint

    # the export-time options (consistency layers, NNLS steps) travel in the model's metadata
    options = default_model.metadata.extra["generator_config"]
    generator, step = generator_from_checkpoint(str(FINETUNE), overrides=options)
    assert step == default_model.metadata.training_step
    x = np.random.default_rng(1).normal(-6.0, 2.0, (1, 80, 20)).astype(np.float32)
    with torch.no_grad():
        ours = generator.float().eval()(torch.from_numpy(x)).numpy()
    shipped = default_model.offline(x)
    correlation = np.corrcoef(ours.ravel(), shipped.ravel())[0, 1]
    assert correlation > 0.999  # float16 weights in the checkpoint, float32 in the ONNX file
