"""ganvoice-bench: one smoke test per subcommand (tiny models, a second or two each).

They check the output's shape -- stable JSON keys, the Markdown table, the PNGs, one-line errors -- and
never a timing: speed is what the benchmarks report, not what the tests assert.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ganvoice.bench.cli import bench
from ganvoice.cli import cli, run
from ganvoice.realtime.model import cuda_probe

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TOP_KEYS = {"schema", "benchmark", "created_utc", "machine", "settings", "rows", "summary", "notes"}
MACHINE_KEYS = {
    "cpu_model",
    "logical_cores",
    "usable_cores",
    "memory_gib",
    "load_avg_1m",
    "os",
    "python",
    "numpy",
    "onnxruntime",
    "ort_providers",
    "torch",
    "ganvoice",
    "gpus",
}
MODEL_KEYS = {"model", "variant", "origin", "parameters", "sample_rate", "delay_ms"}
ROW_KEYS = {
    "throughput": MODEL_KEYS
    | {"runtime", "provider", "threads", "audio_s", "xrt_median", "xrt_p10", "xrt_p90", "wall_ms_median"}
    | {"repetitions"},
    "stream": MODEL_KEYS
    | {"provider", "threads", "mode", "block", "period_ms", "blocks", "stream_xrt"}
    | {"ms_p50", "ms_p90", "ms_p99", "ms_max", "ms_mean", "frac_p50", "frac_p90", "frac_p99", "frac_max"}
    | {"callback_ms_p99", "callback_frac_p99"},
    "first-audio": MODEL_KEYS
    | {"provider", "threads", "mode", "block", "cold_total_ms", "repetitions", "process_repetitions"}
    | {
        f"{q}_{s}"
        for q in ("open_ms", "first_ms", "total_ms", "process_ms")
        for s in ("median", "p10", "p90")
    },
    "budget": MODEL_KEYS
    | {"mode", "block", "device_rate", "model_delay_ms", "resampler_ms", "block_ms", "buffering_ms"}
    | {"device_ms", "total_ms", "device_source"},
    "xruns": MODEL_KEYS
    | {"provider", "threads", "period", "period_ms", "mode", "load", "load_processes", "jack_realtime"}
    | {"duration_s", "blocks", "underflows", "device_underflows", "late_blocks", "overrun_blocks"}
    | {"block_ms_p50"}
    | {"block_ms_p99", "block_ms_max", "latency_ms", "engine_latency_ms", "device_latency_ms", "wall_s"}
    | {"p99_frac"},
    "compare": MODEL_KEYS
    | {"provider", "threads", "block", "block_p99_ms", "block_p99_frac", "reference", "repetitions"}
    | {f"{q}_{s}" for q in ("offline_xrt", "stream_xrt", "ratio") for s in ("median", "p10", "p90")}
    | {"stream_ratio_median"},
}

needs_jack = pytest.mark.skipif(
    shutil.which("jackd") is None or shutil.which("jack_wait") is None, reason="jackd2 is not installed"
)


@pytest.fixture(scope="module")
def fast(tiny_model):
    return str(tiny_model)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One export cache for the module: a variant is exported once."""
    return tmp_path_factory.mktemp("bench_cache")


@pytest.fixture(scope="module")
def v3(onnx_model):
    return str(onnx_model("hifigan-v3", upsample_initial_channel=32))


def invoke(tmp_path, *args: str) -> dict:
    """Run ``ganvoice-bench ARGS --json --markdown``; check the common shape; return the JSON."""
    json_path, markdown_path = tmp_path / "result.json", tmp_path / "result.md"
    argv = [*args, "--json", str(json_path), "--markdown", str(markdown_path)]
    result = CliRunner().invoke(bench, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text, markdown = json_path.read_text(), markdown_path.read_text()
    assert json_path.stat().st_mode & 0o777 == 0o644  # written through a temp file, then made shareable
    assert result.stdout == text + "\n" + markdown  # --print both: the JSON, then the table
    data = json.loads(text)
    assert set(data) == TOP_KEYS
    assert data["schema"] == 1
    assert set(data["machine"]) == MACHINE_KEYS
    assert data["rows"], "no rows"
    for row in data["rows"]:
        assert set(row) == ROW_KEYS[data["benchmark"]]
    table = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(table) == len(data["rows"]) + 1  # the header, then one line per row
    return data


def pngs(folder) -> list[str]:
    names = sorted(p.name for p in folder.glob("*.png"))
    for name in names:
        assert (folder / name).read_bytes()[: len(PNG_MAGIC)] == PNG_MAGIC
    return names


def test_throughput(tmp_path, fast, cache):
    args = ["-m", fast, "-m", "seed-mlp", "--cache-dir", str(cache)]
    data = invoke(tmp_path, "throughput", *args, "--seconds", "0.2", "--repeat", "1", "--warmup", "0")
    runs = {(r["variant"], r["runtime"], r["threads"]) for r in data["rows"]}
    # the .onnx file runs in ONNX Runtime only; the variant exported here also in PyTorch eager
    assert runs == {
        ("fast", "onnxruntime", 1),
        ("fast", "onnxruntime", 2),
        ("seed-mlp", "onnxruntime", 1),
        ("seed-mlp", "onnxruntime", 2),
        ("seed-mlp", "torch", 1),
        ("seed-mlp", "torch", 2),
    }
    assert all(r["repetitions"] == 1 and r["provider"] == "cpu" for r in data["rows"])
    assert [p.suffix for p in cache.iterdir()] == [".onnx"]


def test_stream(tmp_path, fast):
    plots = tmp_path / "plots"
    seconds, rounds = 0.1, 2
    args = ["-m", fast, "--block-sizes", "64,256", "--seconds", str(seconds), "--rounds", str(rounds)]
    data = invoke(tmp_path, "stream", *args, "--plots", str(plots))
    assert [(r["mode"], r["block"]) for r in data["rows"]] == [
        ("callback", 64),
        ("callback", 256),
        ("buffered", 64),
        ("buffered", 256),
    ]
    for row in data["rows"]:
        per_round = math.ceil(seconds / rounds * row["sample_rate"] / row["block"])
        assert row["blocks"] == rounds * per_round
        assert row["ms_p50"] <= row["ms_p90"] <= row["ms_p99"] <= row["ms_max"]
        assert row["period_ms"] == pytest.approx(1000.0 * row["block"] / row["sample_rate"], abs=1e-3)
    assert set(data["summary"]) == {
        f"frac_p99_256/{data['rows'][0]['model']}/cpu/{m}" for m in ("callback", "buffered")
    }
    assert pngs(plots) == ["stream-hist.png", "stream-p99.png"]


def test_first_audio(tmp_path, fast):
    data = invoke(tmp_path, "first-audio", "-m", fast, "--repeat", "2", "--process-repeat", "1")
    rows = {r["mode"]: r for r in data["rows"]}
    assert set(rows) == {"callback", "buffered"}
    assert rows["callback"]["process_repetitions"] == 1 and rows["callback"]["process_ms_median"] > 0
    assert rows["buffered"]["process_repetitions"] == 0 and rows["buffered"]["process_ms_median"] is None
    assert all(r["total_ms_median"] > 0 and r["repetitions"] == 2 for r in data["rows"])


def test_budget_adds_up(tmp_path, fast):
    args = ["-m", fast, "--block-sizes", "64,256", "--device-latency-ms", "5", "--prefill", "0.1"]
    data = invoke(tmp_path, "budget", *args, "--plots", str(tmp_path / "plots"))
    assert len(data["rows"]) == 4
    parts = ("model_delay_ms", "resampler_ms", "block_ms", "buffering_ms", "device_ms")
    for row in data["rows"]:
        assert row["total_ms"] == pytest.approx(sum(row[p] for p in parts), abs=1e-2)
        assert row["device_ms"] == 5.0 and row["device_source"] == "given"
        assert row["buffering_ms"] == (pytest.approx(100.0, abs=0.1) if row["mode"] == "buffered" else 0.0)
        assert row["model_delay_ms"] == pytest.approx(row["delay_ms"], abs=1e-2)
    assert pngs(tmp_path / "plots") == ["budget.png"]


@needs_jack
def test_budget_measures_the_device_on_jack(tmp_path, fast):
    data = invoke(tmp_path, "budget", "-m", fast, "--block-sizes", "256", "--modes", "callback")
    (row,) = data["rows"]
    assert row["device_source"] == "jack-dummy" and row["device_ms"] > 0


@needs_jack
def test_xruns_on_jack_with_load(tmp_path, fast):
    modes = ["callback", "buffered", "low-latency"]
    args = ["-m", fast, "--periods", "256", "--duration", "0.3", "--load", "--modes", ",".join(modes)]
    data = invoke(tmp_path, "xruns", *args, "--plots", str(tmp_path / "plots"))
    assert [(r["period"], r["mode"]) for r in data["rows"]] == [(256, m) for m in modes]
    latency = {r["mode"]: r["latency_ms"] for r in data["rows"]}  # each mode with its own buffering
    assert latency["callback"] < latency["low-latency"] < latency["buffered"]
    for row in data["rows"]:
        assert row["blocks"] > 0 and row["load"] is True and row["load_processes"] >= 1
        assert row["underflows"] >= row["device_underflows"] >= 0
    assert data["summary"]["underflows_total"] == sum(r["underflows"] for r in data["rows"])
    assert pngs(tmp_path / "plots") == ["xruns-load-hist.png", "xruns-load-underflows.png"]


def test_compare(tmp_path, fast, v3, cache):
    args = [fast, v3, "--variants", "seed-mlp", "--no-bundled", "--cache-dir", str(cache)]
    data = invoke(tmp_path, "compare", *args, "--seconds", "0.2", "--repeat", "2", "--plots", str(tmp_path))
    rows = {r["variant"]: r for r in data["rows"]}
    assert set(rows) == {"fast", "hifigan-v3", "seed-mlp"}
    reference = rows["hifigan-v3"]
    assert data["summary"]["reference"] == reference["model"]
    assert all(r["reference"] == reference["model"] and r["repetitions"] == 2 for r in data["rows"])
    assert reference["ratio_median"] == 1.0  # each repetition's ratio to itself
    assert data["summary"]["fast_vs_ref_offline_median"] == rows["fast"]["ratio_median"]
    assert data["summary"]["fast_block256_p99_frac"] == rows["fast"]["block_p99_frac"]
    assert pngs(tmp_path) == ["compare-block-hist.png", "compare-offline-xrt.png", "compare-stream-xrt.png"]


def test_all_quick(tmp_path, fast):
    out = tmp_path / "results"
    args = ["all", "--out", str(out), "--models", fast, "--variants", "none", "--no-bundled"]
    result = CliRunner().invoke(bench, [*args, "--quick", "--no-xruns"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    names = ("compare", "throughput", "stream", "first-audio", "budget")
    for name in names:
        data = json.loads((out / f"{name}.json").read_text())
        assert data["benchmark"] == name and data["rows"]
        assert (out / f"{name}.md").read_text() in (out / "summary.md").read_text()
    assert {"compare-offline-xrt.png", "stream-hist.png", "budget.png"} <= set(pngs(out))


def one_line_error(capsys, *argv: str) -> str:
    """Run ``ganvoice ARGV`` through the CLI's error policy; return its single stderr line."""
    with pytest.raises(SystemExit) as exit_info:
        run(cli, list(argv), prog_name="ganvoice")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.skipif(cuda_probe() is None, reason="CUDA is available here: the CUDA path would run")
def test_cuda_without_cuda_is_one_line(capsys, fast):
    for command in ("stream", "throughput", "first-audio"):
        err = one_line_error(capsys, "bench", command, "-m", fast, "--provider", "cuda")
        assert err.startswith("error: --provider cuda: CUDA is not available (")


def test_bad_input_is_one_line(capsys, tmp_path):
    missing = str(tmp_path / "missing.onnx")
    assert "no such model file" in one_line_error(capsys, "bench", "stream", "-m", missing)
    err = one_line_error(capsys, "bench", "compare", "--variants", "none", "--no-bundled")
    assert err == "error: no models to benchmark: name a variant or pass an .onnx file"
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("not a model")
    assert "not a loadable ONNX model" in one_line_error(capsys, "bench", "budget", "-m", str(not_onnx))


def test_onnx_files_need_no_torch(tmp_path, fast):
    """The base install benchmarks .onnx files: torch is never imported."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from ganvoice.bench.cli import bench\n"
        f"args = ['stream', '-m', {fast!r}, '--block-sizes', '256', '--seconds', '0.05', '--rounds', '1']\n"
        "result = CliRunner().invoke(bench, args + ['--print', 'none'], catch_exceptions=False)\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, timeout=120)


def test_cached_variant_needs_no_torch(cache):
    """A variant exported once is benchmarked from the cache by an install without torch."""
    from ganvoice.bench.models import resolve_models

    (exported,) = resolve_models(["seed-mlp"], cache)
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # as if torch were not installed\n"
        "from ganvoice.bench import models\n"
        "models.torch_available = lambda: False\n"
        f"(model,) = models.resolve_models(['seed-mlp'], {str(cache)!r})\n"
        "print(model.path)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == str(exported.path)
