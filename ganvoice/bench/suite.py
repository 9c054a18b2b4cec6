"""``ganvoice-bench all``: every benchmark in one go, into one results folder.

Per benchmark ``NAME.json`` + ``NAME.md`` + its PNGs, and ``summary.md`` with every table. ``FULL`` is the
committed run's settings (a few minutes on 2 cores); ``QUICK`` tries the whole pipeline in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from ganvoice.bench.budget import BudgetConfig, run_budget
from ganvoice.bench.compare import CompareConfig, run_compare
from ganvoice.bench.first_audio import FirstAudioConfig, run_first_audio
from ganvoice.bench.models import is_path_spec, resolve_models
from ganvoice.bench.report import Result
from ganvoice.bench.runners import resolve_providers
from ganvoice.bench.stream import StreamConfig, run_stream
from ganvoice.bench.throughput import ThroughputConfig, run_throughput
from ganvoice.bench.xruns import XrunsConfig, run_xruns
from ganvoice.fileio import atomic_write_text

SUMMARY_FILE = "summary.md"


@dataclass(frozen=True)
class SuiteSettings:
    compare: CompareConfig
    throughput: ThroughputConfig
    stream: StreamConfig
    first_audio: FirstAudioConfig
    budget: BudgetConfig
    xruns: XrunsConfig


FULL = SuiteSettings(
    CompareConfig(),
    ThroughputConfig(seconds=5.0),
    StreamConfig(),
    FirstAudioConfig(),
    BudgetConfig(),
    XrunsConfig(),
)
QUICK = SuiteSettings(
    CompareConfig(seconds=0.2, repeat=2),
    ThroughputConfig(seconds=0.2, repeat=1, warmup=0, threads=(1,)),
    StreamConfig(block_sizes=(256,), seconds=0.2, rounds=1),
    FirstAudioConfig(repeat=2, process_repeat=0),
    BudgetConfig(block_sizes=(256,)),
    XrunsConfig(periods=(256,), duration=0.5),
)


@dataclass(frozen=True)
class SuiteRequest:
    """What ``all`` runs: ``models`` for the per-model benchmarks (the first one also plays in ``xruns``),
    ``variants`` (+ the bundled model, + the ``.onnx`` files among ``models``) for ``compare``."""

    models: tuple[str, ...]
    variants: tuple[str, ...]
    bundled: bool = True
    provider: str = "cpu"
    xruns: bool = True
    cache_dir: Path | None = None
    plots: bool = True


def jobs(request: SuiteRequest, settings: SuiteSettings) -> list[tuple[str, Callable[[], Result]]]:
    """``(name, job)`` pairs; every model is exported (or found in the cache) before any timing."""
    models = resolve_models(list(request.models), request.cache_dir)
    files = [spec for spec in request.models if is_path_spec(spec)]
    compared = resolve_models([*request.variants, *files], request.cache_dir, include_bundled=request.bundled)
    providers, _ = resolve_providers(request.provider)
    out = [
        (
            f"compare{'' if p == 'cpu' else '-' + p}",
            partial(run_compare, compared, replace(settings.compare, provider=p)),
        )
        for p in providers
    ]
    per_model = [
        ("throughput", run_throughput, replace(settings.throughput, provider=request.provider)),
        ("stream", run_stream, replace(settings.stream, provider=request.provider)),
        ("first-audio", run_first_audio, replace(settings.first_audio, provider=request.provider)),
        ("budget", run_budget, settings.budget),
    ]
    out += [(name, partial(run, models, config)) for name, run, config in per_model]
    if request.xruns:  # the first model only: a paced run takes its duration in wall time
        out.append(("xruns", partial(run_xruns, models[:1], settings.xruns)))
        out.append(("xruns-load", partial(run_xruns, models[:1], replace(settings.xruns, load=True))))
    return out


def run_suite(
    out_dir: Path, request: SuiteRequest, settings: SuiteSettings, log: Callable[[str], None]
) -> Path:
    """Run :func:`jobs` and write everything into ``out_dir``; returns the summary file."""
    if request.plots:
        from ganvoice.bench.plots import pyplot, save_plots

        pyplot()  # no matplotlib: say so before minutes of benchmarks, not after
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = []
    for name, job in jobs(request, settings):
        started = time.monotonic()
        log(f"bench all: {name} ...")
        result = job()
        atomic_write_text(out_dir / f"{name}.json", result.to_json())
        atomic_write_text(out_dir / f"{name}.md", result.to_markdown())
        if request.plots:
            save_plots(result, out_dir)
        sections.append(result.to_markdown())
        log(f"bench all: {name} done in {time.monotonic() - started:.0f} s")
    return atomic_write_text(out_dir / SUMMARY_FILE, "# ganvoice-bench results\n\n" + "\n".join(sections))
