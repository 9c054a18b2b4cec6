"""ONNX export: torch vs ONNX Runtime, ORT streaming vs ORT offline, metadata, CLI, bad input."""

import json

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from ganvoice.assets import DEFAULT_CHECKPOINT, asset_path
from ganvoice.cli import cli
from ganvoice.export.checkpoint import generator_from_checkpoint
from ganvoice.export.onnx_export import ExportOptions, export_generator
from ganvoice.export.parity import example_input, torch_vs_ort
from ganvoice.modelmeta import FORMAT_VERSION, METADATA_KEY, ModelMetadata
from ganvoice.models.base import build_generator, variant_names
from ganvoice.models.hifigan import official_state_dict
from ganvoice.onnxgraph import OnnxGenerator

# Small configs keep the suite fast; the structure (and so the streaming logic) is the full one.
SMALL = {
    "fast": {"dim": 32, "intermediate_dim": 64, "num_blocks": 2, "conv_lookahead_frames": 2},
    "hifigan-v1": {"upsample_initial_channel": 32},
    "hifigan-v2": {"upsample_initial_channel": 32},
    "hifigan-v3": {"upsample_initial_channel": 32},
    "seed-mlp": {"hidden": 32, "clip_length": 512},
}


def lively(generator, seed=0):
    """Random weights large enough that every layer matters (default inits are tiny)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in generator.named_parameters():
            if "original0" in name:  # weight-norm magnitude
                p.copy_(p.abs().mean() * 0 + 1.0)
            elif p.dim() > 1:
                p.normal_(0.0, 1.0 / np.sqrt(max(p[0].numel(), 1)))
    return generator.eval()


@pytest.fixture(scope="module", params=sorted(SMALL))
def exported(request, tmp_path_factory):
    variant = request.param
    torch.manual_seed(0)
    generator = lively(build_generator(variant, SMALL[variant]))
    path = tmp_path_factory.mktemp("onnx") / f"{variant}.onnx"
    export_generator(generator, path)
    return generator, path


def test_registry_is_covered():
    assert set(SMALL) == set(variant_names())


def test_torch_vs_ort_offline(exported):
    generator, path = exported
    x = example_input(generator, 12, batch=2)
    with torch.no_grad():
        reference = generator(torch.from_numpy(x)).numpy()
    assert reference.std() > 1e-3, "weights too small for the test to mean anything"
    assert np.abs(OnnxGenerator(str(path)).offline(x) - reference).max() <= 1e-4


@pytest.mark.parametrize("batch", [1, 3])
def test_ort_streaming_equals_offline(exported, batch):
    generator, path = exported
    graph = OnnxGenerator(str(path))
    frames = 4 if generator.variant == "seed-mlp" else 40
    x = example_input(generator, frames, batch=batch, seed=batch)
    offline = graph.offline(x)
    rng = np.random.default_rng(batch)
    sequences = [[1], [2], [5], [16], [37], list(rng.integers(1, 9, size=12))]
    for chunks in sequences:
        assert np.abs(graph.chunked(x, [int(c) for c in chunks]) - offline).max() <= 1e-4, chunks


def test_metadata_inside_the_model(exported):
    generator, path = exported
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    meta = ModelMetadata.from_json(props[METADATA_KEY])
    assert meta.format == FORMAT_VERSION
    assert meta.variant == generator.variant
    assert meta.delay_samples == generator.delay_samples
    assert meta.hop_length == generator.hop_length and meta.channels == generator.channels
    assert [s.shape[1:] for s in meta.state] == generator.state_shapes()
    assert (meta.mel is not None) == (generator.conditioning == "mel")
    assert model.opset_import[0].version == 17 and model.ir_version <= 9
    onnx.checker.check_model(model)


def test_weight_options_keep_parity(tmp_path):
    torch.manual_seed(0)
    generator = lively(build_generator("fast", SMALL["fast"]))
    sizes = {}
    x = example_input(generator, 24)
    for weights, bound in (("fp32", 1e-4), ("fp16", 5e-2), ("int8", 5e-2)):
        path = tmp_path / f"{weights}.onnx"
        export_generator(generator, path, options=ExportOptions(weights=weights))
        sizes[weights] = path.stat().st_size
        assert torch_vs_ort(generator, str(path)) <= bound
        graph = OnnxGenerator(str(path))  # every weight type streams exactly (int8: per-row activations)
        assert float(abs(graph.chunked(x, [1, 2, 5]) - graph.offline(x)).max()) <= 1e-4
    assert sizes["fp16"] < sizes["fp32"] and sizes["int8"] < sizes["fp32"]


def test_cli_exports_our_checkpoint_and_reports_parity(tmp_path):
    torch.manual_seed(0)
    generator = build_generator("fast", SMALL["fast"])
    checkpoint = tmp_path / "g.pt"
    torch.save(
        {
            "generator_variant": "fast",
            "generator_config": SMALL["fast"],
            "generator": generator.state_dict(),
            "step": 7,
        },
        checkpoint,
    )
    out = tmp_path / "g.onnx"
    result = CliRunner().invoke(cli, ["export", str(checkpoint), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "parity" in result.output and "delay 640" not in result.output
    assert OnnxGenerator(str(out)).metadata.training_step == 7


def test_cli_presets_name_weightless_options_and_set_goes_on_top(tmp_path):
    from ganvoice.models.base import make_config
    from ganvoice.models.fast import EXPORT_PRESETS

    for options in EXPORT_PRESETS.values():  # every preset is options of fast's config
        config = make_config("fast", {"magnitude": "pinv", "phase_head": "ri", **options})
        assert {key: getattr(config, key) for key in options} == options
    out = tmp_path / "g.onnx"
    base = ["export", "--variant", "fast", "--random", "--set", "dim=16", "--set", "intermediate_dim=32"]
    result = CliRunner().invoke(
        cli, [*base, "--preset", "low-latency", "--set", "consistency_iterations=2", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    config = OnnxGenerator(str(out)).metadata.extra["generator_config"]
    assert config["consistency_iterations"] == 2  # --set on top of the preset
    assert config["nnls_iterations"] == 16 and config["consistency_momentum"] == 0.8


def test_cli_imports_official_hifigan_checkpoint(tmp_path):
    overrides = SMALL["hifigan-v3"]
    torch.manual_seed(1)
    generator = lively(build_generator("hifigan-v3", overrides))
    torch.save({"generator": official_state_dict(generator)}, tmp_path / "generator_v3")
    config = {
        "resblock": "2",
        "upsample_rates": [8, 8, 4],
        "upsample_kernel_sizes": [16, 16, 8],
        "upsample_initial_channel": overrides["upsample_initial_channel"],
        "resblock_kernel_sizes": [3, 5, 7],
        "resblock_dilation_sizes": [[1, 2], [2, 6], [3, 12]],
        "num_mels": 80,
        "sampling_rate": 22050,
        "n_fft": 1024,
        "hop_size": 256,
        "win_size": 1024,
        "fmin": 0,
        "fmax": 8000,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = tmp_path / "v3.onnx"
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "generator_v3"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    x = example_input(generator, 10)
    with torch.no_grad():
        assert (
            np.abs(OnnxGenerator(str(out)).offline(x) - generator(torch.from_numpy(x)).numpy()).max() <= 1e-4
        )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--variant", "nope", "--random", "-o", "{tmp}/x.onnx"],
            "unknown generator variant 'nope'; known: fast",
        ),
        (["--variant", "fast", "--random", "-o", "{tmp}/missing/x.onnx"], "does not exist"),
        (["{tmp}/none.pt", "-o", "{tmp}/x.onnx"], "not found"),
        (["{tmp}/junk.pt", "-o", "{tmp}/x.onnx"], "not a readable checkpoint"),
        (["{tmp}/other.pt", "-o", "{tmp}/x.onnx"], "unknown variant 'vocos-9000'"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save({"generator_variant": "vocos-9000", "generator": {}}, tmp_path / "other.pt")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(cli, ["export", *args], standalone_mode=True)
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert message in str(result.exception)
    assert not (tmp_path / "x.onnx").exists()
    assert not list(tmp_path.glob(".x.onnx*"))


def test_trained_checkpoint_exports_with_parity(tmp_path):
    """The shipped fine-tuning checkpoint (8 k trained steps, fp16 weights) through `ganvoice export`."""
    checkpoint = asset_path(DEFAULT_CHECKPOINT)
    out = tmp_path / "trained.onnx"
    result = CliRunner().invoke(cli, ["export", str(checkpoint), "-o", str(out)])
    assert result.exit_code == 0, result.output
    generator, step = generator_from_checkpoint(str(checkpoint))
    assert step > 0 and OnnxGenerator(str(out)).metadata.training_step == step
    x = example_input(generator, 30)
    with torch.no_grad():
        reference = generator.eval()(torch.from_numpy(x)).numpy()
    assert reference.std() > 1e-3
    graph = OnnxGenerator(str(out))
    assert np.abs(graph.offline(x) - reference).max() <= 1e-4
    assert np.abs(graph.chunked(x, [1, 2, 5, 16, 37]) - graph.offline(x)).max() <= 1e-4
