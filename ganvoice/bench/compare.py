"""``compare``: several models side by side in one run, with interleaved repetitions.

Each repetition runs every model once (in a rotated order), so machine noise hits all of them alike:
an offline run of ``seconds`` of audio (ONNX Runtime, one call) and the same audio streamed through the
engine's callback path in blocks of ``block`` samples. Per model: xRT (median, p10/p90 over repetitions),
the per-block p99 as a fraction of the period, and the ratio to the reference model (HiFi-GAN V3 by
default) computed *per repetition* before taking the median, which cancels most of the shared noise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ganvoice.bench.machine import describe_machine
from ganvoice.bench.models import DEFAULT_VARIANT, REFERENCE_VARIANT, BenchModel, find_variant
from ganvoice.bench.report import Column, Result
from ganvoice.bench.runners import BlockTimer, OrtOffline, resolve_providers, session_settings, timed
from ganvoice.bench.signals import conditioning, frames_for
from ganvoice.bench.timing import block_times, spread
from ganvoice.errors import GanvoiceError

WARMUP_SECONDS = 0.25


@dataclass(frozen=True)
class CompareConfig:
    seconds: float = 2.0
    repeat: int = 7
    block: int = 256
    provider: str = "cpu"  # cpu | cuda
    threads: int = 1
    reference: str = REFERENCE_VARIANT
    seed: int = 0


COLUMNS = [
    Column("model", "model"),
    Column("parameters", "params"),
    Column("delay_ms", "delay ms"),
    Column("offline_xrt_median", "offline xRT"),
    Column("offline_xrt_p10", "p10"),
    Column("offline_xrt_p90", "p90"),
    Column("stream_xrt_median", "stream xRT"),
    Column("block_p99_frac", "block p99/period"),
    Column("ratio_median", "× ref (offline)"),
    Column("ratio_p10", "p10"),
    Column("ratio_p90", "p90"),
    Column("stream_ratio_median", "× ref (stream)"),
]


@dataclass
class _Entry:
    model: BenchModel
    offline: OrtOffline
    driver: BlockTimer
    offline_xrt: list[float]
    stream_xrt: list[float]


def _entries(models: list[BenchModel], config: CompareConfig, provider: str) -> list[_Entry]:
    entries = []
    for model in models:
        frames = conditioning(model.metadata, frames_for(model.metadata, config.seconds), config.seed)
        offline = OrtOffline(model, frames, provider, config.threads)
        driver = BlockTimer(model, frames, config.block, "callback", provider, config.threads)
        entries.append(_Entry(model, offline, driver, [], []))
    return entries


def _stream_blocks(entry: _Entry, seconds: float) -> int:
    return max(1, math.ceil(seconds * entry.driver.engine.sample_rate / entry.driver.block))


def _measure(entry: _Entry, config: CompareConfig) -> None:
    entry.offline_xrt.append(entry.offline.audio_seconds / timed(entry.offline))
    before = len(entry.driver.compute_ms)
    entry.driver.run(_stream_blocks(entry, config.seconds))
    spent = sum(entry.driver.compute_ms[before:])
    played = (len(entry.driver.compute_ms) - before) * entry.driver.period_ms
    entry.stream_xrt.append(played / spent if spent > 0 else float("nan"))


def run_compare(models: list[BenchModel], config: CompareConfig) -> Result:
    if config.repeat <= 0 or config.seconds <= 0 or config.block <= 0:
        raise GanvoiceError("--repeat, --seconds and --block must be positive")
    providers, notes = resolve_providers(config.provider)
    if len(providers) != 1:
        raise GanvoiceError("compare runs one provider at a time: --provider cpu or --provider cuda")
    entries = _entries(models, config, providers[0])
    for entry in entries:
        timed(entry.offline)
        entry.driver.run(_stream_blocks(entry, WARMUP_SECONDS), record=False)
    for rep in range(config.repeat):
        shift = rep % len(entries)
        for entry in entries[shift:] + entries[:shift]:
            _measure(entry, config)
    reference = find_variant([e.model for e in entries], config.reference)
    ref = next((e for e in entries if e.model is reference), None)
    if ref is None:
        notes.append(f"no {config.reference} model in this run: ratios are empty")
    rows = [_row(entry, ref) for entry in entries]
    return Result(
        benchmark="compare",
        title=f"Models side by side: {config.seconds:g} s of audio × {config.repeat} interleaved "
        f"repetitions, {providers[0]}, {config.threads} ORT thread(s), stream block {config.block}",
        machine=describe_machine(),
        settings={
            **asdict(config),
            "providers": providers,
            "models": [e.model.label for e in entries],
            "ort_session": session_settings(entries[0].offline.session),
        },
        rows=rows,
        columns=COLUMNS,
        summary=_summary(rows, entries, ref, config),
        notes=notes
        + [
            "xRT = audio seconds per compute second (higher is faster); p10/p90 over repetitions.",
            "× ref = the model's xRT divided by the reference's in the same repetition (median, p10, p90).",
            "Random weights: speed only (the graphs are the trained ones' graphs).",
        ],
        samples={e.model.label: e.driver.compute_ms for e in entries},
    )


def _ratios(entry: _Entry, ref: _Entry | None, field: str) -> list[float]:
    if ref is None:
        return []
    return [a / b for a, b in zip(getattr(entry, field), getattr(ref, field)) if b > 0]


def _row(entry: _Entry, ref: _Entry | None) -> dict:
    blocks = block_times(entry.driver.compute_ms)
    return {
        **entry.model.describe(),
        "provider": entry.driver.provider,
        "threads": entry.offline.threads,
        **spread(entry.offline_xrt).fields("offline_xrt"),
        **spread(entry.stream_xrt).fields("stream_xrt"),
        "block": entry.driver.block,
        "block_p99_ms": blocks.p99,
        "block_p99_frac": round(blocks.p99 / entry.driver.period_ms, 4),
        **spread(_ratios(entry, ref, "offline_xrt")).fields("ratio"),
        "stream_ratio_median": spread(_ratios(entry, ref, "stream_xrt")).median,
        "reference": ref.model.label if ref else None,
        "repetitions": len(entry.offline_xrt),
    }


def _summary(rows: list[dict], entries: list[_Entry], ref: _Entry | None, config: CompareConfig) -> dict:
    fast = find_variant([e.model for e in entries], DEFAULT_VARIANT)
    summary = {"reference": ref.model.label if ref else None}
    row = next((r for r, e in zip(rows, entries) if e.model is fast), None)
    if row is not None and ref is not None:
        summary.update(
            {
                f"{DEFAULT_VARIANT}_vs_ref_offline_median": row["ratio_median"],
                f"{DEFAULT_VARIANT}_vs_ref_offline_p10": row["ratio_p10"],
                f"{DEFAULT_VARIANT}_vs_ref_offline_p90": row["ratio_p90"],
                f"{DEFAULT_VARIANT}_vs_ref_stream_median": row["stream_ratio_median"],
                f"{DEFAULT_VARIANT}_block{config.block}_p99_frac": row["block_p99_frac"],
            }
        )
    return summary
