"""``stream``: per-block compute time for each block size, in the engine's callback and buffered modes.

No device is needed: :class:`~ganvoice.bench.runners.BlockTimer` times the player's own block step
(:class:`~ganvoice.realtime.blockstep.BlockStep`), unpaced. All configurations advance round-robin
(``rounds`` slices), so machine noise spreads over them alike. Times are reported in ms and as a
fraction of the block period (``frac_p99`` < 1 means the 99th-percentile block is computed in less
time than it plays).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ganvoice.bench.machine import describe_machine
from ganvoice.bench.models import BenchModel
from ganvoice.bench.report import Column, Result
from ganvoice.bench.runners import BlockTimer, resolve_providers, session_settings
from ganvoice.bench.signals import conditioning, frames_for
from ganvoice.bench.timing import block_times
from ganvoice.errors import GanvoiceError
from ganvoice.realtime.blockstep import MODES
from ganvoice.realtime.model import open_model

BLOCK_SIZES = (64, 128, 256, 512, 1024)
#: The block size the summary quotes.
REFERENCE_BLOCK = 256
#: Seconds of conditioning each driver loops over.
SOURCE_SECONDS = 4.0


@dataclass(frozen=True)
class StreamConfig:
    block_sizes: tuple[int, ...] = BLOCK_SIZES
    modes: tuple[str, ...] = MODES
    seconds: float = 5.0  # audio per configuration
    warmup_seconds: float = 0.25
    rounds: int = 5
    provider: str = "cpu"
    threads: int = 1
    seed: int = 0

    def check(self) -> None:
        if not self.block_sizes or min(self.block_sizes) <= 0:
            raise GanvoiceError(f"block sizes must be positive numbers of samples, not {self.block_sizes}")
        unknown = sorted(set(self.modes) - set(MODES))
        if unknown:
            raise GanvoiceError(f"unknown mode {unknown[0]!r}; choose from {', '.join(MODES)}")
        if self.seconds <= 0 or self.rounds <= 0:
            raise GanvoiceError("--seconds and --rounds must be positive")


COLUMNS = [
    Column("model", "model"),
    Column("provider", "provider"),
    Column("mode", "mode"),
    Column("block", "block"),
    Column("period_ms", "period ms"),
    Column("ms_p50", "p50 ms"),
    Column("ms_p90", "p90 ms"),
    Column("ms_p99", "p99 ms"),
    Column("ms_max", "max ms"),
    Column("frac_p50", "p50/period"),
    Column("frac_p99", "p99/period"),
    Column("callback_frac_p99", "callback p99/period"),
    Column("stream_xrt", "xRT"),
]


def _drivers(models: list[BenchModel], config: StreamConfig, providers: list[str]) -> list[BlockTimer]:
    drivers = []
    for model in models:
        frames = conditioning(model.metadata, frames_for(model.metadata, SOURCE_SECONDS), config.seed)
        for provider in providers:
            for mode in config.modes:
                for block in config.block_sizes:
                    drivers.append(BlockTimer(model, frames, block, mode, provider, config.threads))
    return drivers


def _blocks(driver: BlockTimer, seconds: float) -> int:
    return max(1, math.ceil(seconds * driver.engine.sample_rate / driver.block))


def run_stream(models: list[BenchModel], config: StreamConfig) -> Result:
    config.check()
    providers, notes = resolve_providers(config.provider)
    drivers = _drivers(models, config, providers)
    for driver in drivers:
        driver.run(_blocks(driver, config.warmup_seconds), record=False)
    for _ in range(config.rounds):
        for driver in drivers:
            driver.run(_blocks(driver, config.seconds / config.rounds))
    rows = [_row(driver, config.threads) for driver in drivers]
    return Result(
        benchmark="stream",
        title=f"Per-block compute time: {config.seconds:g} s of audio per configuration, "
        f"{config.threads} ORT thread(s)",
        machine=describe_machine(),
        settings={
            **asdict(config),
            "providers": providers,
            "ort_session": session_settings(open_model(models[0].path, providers[0], config.threads).session),
        },
        rows=rows,
        columns=COLUMNS,
        summary=_summary(rows),
        notes=notes
        + [
            "compute = the model work per block (inside the callback in callback mode, in the worker in "
            "buffered mode); callback = time inside the audio callback; frac = time / block period.",
            "Blocks smaller than the hop run the model only every few blocks, so p50 can be far below p99.",
        ],
        samples={_sample_key(d): d.compute_ms for d in drivers},
    )


def _sample_key(driver: BlockTimer) -> str:
    return f"{driver.model.label} {driver.provider} {driver.mode} {driver.block}"


def _row(driver: BlockTimer, threads: int) -> dict:
    compute = block_times(driver.compute_ms)
    callback = block_times(driver.callback_ms)
    return {
        **driver.model.describe(),
        "provider": driver.provider,
        "threads": threads,
        "mode": driver.mode,
        "block": driver.block,
        "period_ms": round(driver.period_ms, 4),
        "blocks": compute.n,
        **compute.fields("ms", driver.period_ms),
        "callback_ms_p99": callback.p99,
        "callback_frac_p99": round(callback.p99 / driver.period_ms, 4),
        "stream_xrt": round(driver.stream_xrt(), 3),
    }


def _summary(rows: list[dict]) -> dict:
    """p99 / period at the reference block size, per model, provider and mode."""
    return {
        f"frac_p99_{REFERENCE_BLOCK}/{r['model']}/{r['provider']}/{r['mode']}": r["frac_p99"]
        for r in rows
        if r["block"] == REFERENCE_BLOCK
    }
