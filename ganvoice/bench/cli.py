"""``ganvoice bench`` / ``ganvoice-bench``: the latency and throughput benchmark suite (a click group).

Every subcommand prints its result as JSON (stable keys, the machine included) followed by a Markdown
table, and can write ``--json FILE``, ``--markdown FILE`` and ``--plots DIR`` (PNG). ``all`` runs the
whole suite into one folder (what ``benchmarks/results/`` holds).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import click

from ganvoice.bench.budget import BudgetConfig, run_budget
from ganvoice.bench.compare import CompareConfig, run_compare
from ganvoice.bench.first_audio import FirstAudioConfig, run_first_audio
from ganvoice.bench.models import COMPARE_VARIANTS, DEFAULT_VARIANT, REFERENCE_VARIANT, resolve_models
from ganvoice.bench.report import Result
from ganvoice.bench.runners import PROVIDER_CHOICES, resolve_providers
from ganvoice.bench.stream import BLOCK_SIZES, StreamConfig, run_stream
from ganvoice.bench.suite import FULL, QUICK, SuiteRequest, run_suite
from ganvoice.bench.throughput import DEFAULT_THREADS, ThroughputConfig, run_throughput
from ganvoice.bench.xruns import PERIODS, XrunsConfig, run_xruns
from ganvoice.errors import GanvoiceError
from ganvoice.fileio import atomic_write_text
from ganvoice.realtime.blockstep import MODES
from ganvoice.realtime.player import DEFAULT_PREFILL_S, PLAYER_MODES

PRINT_CHOICES = ("both", "json", "markdown", "none")
NONE_WORD = "none"
#: What ``all`` benchmarks besides ``compare`` (which runs its own default set).
SUITE_MODELS = f"{DEFAULT_VARIANT},{REFERENCE_VARIANT}"


# -- option parsing ------------------------------------------------------------------------------------
def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _int_list(ctx, param, value) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(int(part) for part in _split(value))
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated whole numbers, not {value!r}") from exc
    if not numbers or min(numbers) <= 0:
        raise click.BadParameter(f"expected positive numbers, not {value!r}")
    return numbers


def _modes_of(allowed: tuple[str, ...]):
    def parse(ctx, param, value) -> tuple[str, ...]:
        modes = tuple(_split(value))
        if not modes or any(m not in allowed for m in modes):
            raise click.BadParameter(f"choose from {', '.join(allowed)} (comma-separated), not {value!r}")
        return modes

    return parse


_modes = _modes_of(MODES)


def _plots_dir(ctx, param, value):
    """``--plots DIR``: check for matplotlib before the benchmark runs, not after."""
    if value is not None:
        from ganvoice.bench.plots import pyplot

        pyplot()
    return value


def output_options(command):
    """``--json``, ``--markdown``, ``--plots`` and ``--print`` (what goes to stdout)."""
    options = [
        click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the JSON here."),
        click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False), help="Write the table."),
        click.option(
            "--plots",
            "plots_dir",
            type=click.Path(file_okay=False),
            callback=_plots_dir,
            help="PNG plots here.",
        ),
        click.option(
            "--print",
            "show",
            type=click.Choice(PRINT_CHOICES),
            default="both",
            show_default=True,
            help="Stdout.",
        ),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), command)


def model_options(default: tuple[str, ...] = (DEFAULT_VARIANT,)):
    """``--model`` (repeatable: a variant name or an .onnx file), ``--cache-dir``, ``--seed``."""

    def wrap(command):
        options = [
            click.option(
                "--model",
                "-m",
                "model_specs",
                multiple=True,
                default=default,
                show_default=True,
                help="Variant name (random weights, exported into the cache; needs torch) or .onnx file.",
            ),
            click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help=_CACHE_HELP),
            click.option("--seed", type=int, default=0, show_default=True, help="Random-weights seed."),
        ]
        return functools.reduce(lambda f, option: option(f), reversed(options), command)

    return wrap


_CACHE_HELP = "Where exported variants are cached [~/.cache/ganvoice/bench]."
_PROVIDER = click.option("--provider", type=click.Choice(PROVIDER_CHOICES), default="cpu", show_default=True)


def emit(result: Result, json_path, markdown_path, plots_dir, show: str) -> None:
    """Write the requested files, then print JSON and/or the Markdown table."""
    if json_path:
        atomic_write_text(json_path, result.to_json())
    if markdown_path:
        atomic_write_text(markdown_path, result.to_markdown())
    if plots_dir:
        from ganvoice.bench.plots import save_plots

        save_plots(result, plots_dir)
    if show in ("both", "json"):
        click.echo(result.to_json(), nl=False)
    if show == "both":
        click.echo()
    if show in ("both", "markdown"):
        click.echo(result.to_markdown(), nl=False)


def _models(specs, cache_dir, seed, provider: str = "cpu", include_bundled: bool = False):
    """Check the provider first (a missing CUDA fails before any export), then resolve the models."""
    resolve_providers(provider)
    return resolve_models(list(specs), Path(cache_dir) if cache_dir else None, seed, include_bundled)


# -- the group -----------------------------------------------------------------------------------------
@click.group()
def bench() -> None:
    """Latency and throughput benchmarks of exported models (JSON + Markdown + PNG)."""


@bench.command()
@model_options()
@_PROVIDER
@click.option("--seconds", type=float, default=10.0, show_default=True, help="Audio per run.")
@click.option("--repeat", type=int, default=5, show_default=True, help="Timed repetitions (interleaved).")
@click.option("--warmup", type=int, default=1, show_default=True, help="Untimed runs first.")
@click.option("--threads", default=",".join(map(str, DEFAULT_THREADS)), callback=_int_list, show_default=True)
@click.option("--torch/--no-torch", "use_torch", default=True, help="PyTorch eager rows (needs torch).")
@output_options
def throughput(model_specs, cache_dir, seed, provider, seconds, repeat, warmup, threads, use_torch, **out):
    """Offline real-time factor per model, provider and ORT intra-op threads (PyTorch eager alongside)."""
    if seconds <= 0 or repeat <= 0 or warmup < 0:
        raise GanvoiceError("--seconds and --repeat must be positive, --warmup >= 0")
    config = ThroughputConfig(seconds, repeat, warmup, threads, provider, use_torch, seed)
    emit(run_throughput(_models(model_specs, cache_dir, seed, provider), config), **out)


@bench.command()
@model_options()
@_PROVIDER
@click.option("--block-sizes", default=",".join(map(str, BLOCK_SIZES)), callback=_int_list, show_default=True)
@click.option("--modes", default=",".join(MODES), callback=_modes, show_default=True)
@click.option("--seconds", type=float, default=5.0, show_default=True, help="Audio per configuration.")
@click.option("--rounds", type=int, default=5, show_default=True, help="Round-robin slices.")
@click.option("--threads", type=int, default=1, show_default=True, help="ORT intra-op threads.")
@output_options
def stream(model_specs, cache_dir, seed, provider, block_sizes, modes, seconds, rounds, threads, **out):
    """Per-block compute time (p50/p90/p99/max) per block size, callback and buffered modes."""
    config = StreamConfig(
        block_sizes, modes, seconds, rounds=rounds, provider=provider, threads=threads, seed=seed
    )
    emit(run_stream(_models(model_specs, cache_dir, seed, provider), config), **out)


@bench.command("first-audio")
@model_options()
@_PROVIDER
@click.option("--block", type=int, default=256, show_default=True)
@click.option("--modes", default=",".join(MODES), callback=_modes, show_default=True)
@click.option("--repeat", type=int, default=5, show_default=True, help="In-process engine starts.")
@click.option("--process-repeat", type=int, default=3, show_default=True, help="Fresh-interpreter starts.")
@click.option(
    "--prefill", type=float, default=DEFAULT_PREFILL_S, show_default=True, help="Buffered prefill s."
)
@click.option("--threads", type=int, default=1, show_default=True)
@output_options
def first_audio(
    model_specs, cache_dir, seed, provider, block, modes, repeat, process_repeat, prefill, threads, **out
):
    """Time from starting the engine to the first generated sample delivered."""
    config = FirstAudioConfig(block, modes, repeat, process_repeat, prefill, provider, threads, seed)
    emit(run_first_audio(_models(model_specs, cache_dir, seed, provider), config), **out)


@bench.command()
@model_options()
@click.option("--block-sizes", default=",".join(map(str, BLOCK_SIZES)), callback=_int_list, show_default=True)
@click.option("--modes", default=",".join(MODES), callback=_modes, show_default=True)
@click.option(
    "--prefill", type=float, default=DEFAULT_PREFILL_S, show_default=True, help="Buffered prefill s."
)
@click.option("--device-rate", type=int, default=None, help="Device sample rate [the model's].")
@click.option(
    "--device-latency-ms", type=float, default=None, help="Device latency [measured on JACK dummy]."
)
@output_options
def budget(model_specs, cache_dir, seed, block_sizes, modes, prefill, device_rate, device_latency_ms, **out):
    """Latency budget per configuration: model delay + resampler + block + buffering + device, in ms."""
    config = BudgetConfig(block_sizes, modes, prefill, device_rate, device_latency_ms)
    emit(run_budget(_models(model_specs, cache_dir, seed), config), **out)


@bench.command()
@model_options()
@click.option("--provider", type=click.Choice(("cpu", "cuda")), default="cpu", show_default=True)
@click.option("--periods", default=",".join(map(str, PERIODS)), callback=_int_list, show_default=True)
@click.option(
    "--modes",
    default=",".join(MODES),
    callback=_modes_of(PLAYER_MODES),
    show_default=True,
    help=f"Of {', '.join(PLAYER_MODES)} (low-latency: buffered with a one-frame cushion).",
)
@click.option("--duration", type=float, default=10.0, show_default=True, help="Seconds per period and mode.")
@click.option("--load/--no-load", default=False, help="Busy processes on the other core(s) meanwhile.")
@click.option(
    "--prefill",
    type=float,
    default=None,
    help="Seconds rendered ahead in the buffered modes [default: each mode's own: buffered 0.1, low-latency "
    "one frame].",
)
@click.option("--threads", type=int, default=1, show_default=True)
@output_options
def xruns(model_specs, cache_dir, seed, provider, periods, modes, duration, load, prefill, threads, **out):
    """Paced playback on a private JACK dummy server at each period, counting underflows."""
    config = XrunsConfig(periods, modes, duration, load, prefill, provider, threads, seed)
    emit(run_xruns(_models(model_specs, cache_dir, seed, provider), config), **out)


@bench.command()
@click.argument("onnx_files", nargs=-1, type=click.Path(dir_okay=False))
@click.option(
    "--variants",
    default=",".join(COMPARE_VARIANTS),
    show_default=True,
    help=f"Variants with random weights (comma-separated; '{NONE_WORD}' for none).",
)
@click.option("--bundled/--no-bundled", default=True, help="Include the bundled default model if present.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help=_CACHE_HELP)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--provider", type=click.Choice(("cpu", "cuda")), default="cpu", show_default=True)
@click.option("--seconds", type=float, default=2.0, show_default=True, help="Audio per model per repetition.")
@click.option("--repeat", type=int, default=7, show_default=True, help="Interleaved repetitions.")
@click.option("--block", type=int, default=256, show_default=True, help="Block size of the streamed runs.")
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--reference", default=REFERENCE_VARIANT, show_default=True, help="Model the ratios refer to.")
@output_options
def compare(
    onnx_files,
    variants,
    bundled,
    cache_dir,
    seed,
    provider,
    seconds,
    repeat,
    block,
    threads,
    reference,
    **out,
):
    """Several models side by side in one run: xRT with spread and the ratio to HiFi-GAN V3."""
    names = [] if variants.strip().lower() == NONE_WORD else _split(variants)
    models = _models([*names, *onnx_files], cache_dir, seed, provider, include_bundled=bundled)
    config = CompareConfig(seconds, repeat, block, provider, threads, reference, seed)
    emit(run_compare(models, config), **out)


# -- the whole suite -------------------------------------------------------------------------------------
@bench.command("all")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Results folder.")
@click.option("--models", default=SUITE_MODELS, show_default=True, help="Models of the per-model benchmarks.")
@click.option("--variants", default=",".join(COMPARE_VARIANTS), show_default=True, help="compare's variants.")
@click.option("--bundled/--no-bundled", default=True, help="compare includes the bundled model if present.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help=_CACHE_HELP)
@_PROVIDER
@click.option("--duration", type=float, default=None, help="xruns seconds per setting [10; quick 0.5].")
@click.option("--xruns/--no-xruns", "with_xruns", default=True, help="The JACK runs (need jackd2).")
@click.option("--plots/--no-plots", default=True, help="PNG plots (need matplotlib).")
@click.option("--quick", is_flag=True, help="Tiny durations: try the pipeline, not for numbers.")
def run_all(out_dir, models, variants, bundled, cache_dir, provider, duration, with_xruns, plots, quick):
    """Run every benchmark; write JSON, Markdown and PNGs into OUT, and a summary.md of every table."""
    resolve_providers(provider)
    settings = QUICK if quick else FULL
    if duration is not None:
        if duration <= 0:
            raise GanvoiceError(f"--duration must be > 0 seconds, not {duration}")
        settings = replace(settings, xruns=replace(settings.xruns, duration=duration))
    names = () if variants.strip().lower() == NONE_WORD else tuple(_split(variants))
    cache = Path(cache_dir) if cache_dir else None
    request = SuiteRequest(tuple(_split(models)), names, bundled, provider, with_xruns, cache, plots)
    summary = run_suite(Path(out_dir), request, settings, lambda line: click.echo(line, err=True))
    click.echo(f"bench all: wrote {summary}", err=True)
