"""``xruns``: paced playback through a JACK dummy server at several periods, counting underflows.

For each period (the JACK period = the player's block size) a private ``jackd -d dummy`` is started at
the model's rate; :class:`~ganvoice.realtime.Player` plays a looping mel for ``duration`` seconds in each
mode, exactly as ``ganvoice-play`` would, and its stats are kept. ``load`` adds busy processes pinned to
the other core(s) (``CpuLoad``), so the run shows what a competing job does to the stream.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ganvoice.bench.jack import JACK_DEVICE, REALTIME_PRIORITY, CpuLoad, JackServer, settle
from ganvoice.bench.machine import describe_machine, usable_cores
from ganvoice.bench.models import BenchModel
from ganvoice.bench.report import Column, Result
from ganvoice.bench.signals import conditioning, frames_for
from ganvoice.errors import GanvoiceError
from ganvoice.realtime.blockstep import MODES
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.player import PLAYER_MODES, Player, PlayerConfig
from ganvoice.realtime.sources import MelSource

PERIODS = (64, 128, 256)
SOURCE_SECONDS = 4.0
#: Seconds a new server (or the load) runs before a measured stream starts.
SETTLE_S = 0.2
#: Seconds beyond ``duration`` that a stream may take before it counts as hung.
WAIT_SLACK_S = 30.0


@dataclass(frozen=True)
class XrunsConfig:
    periods: tuple[int, ...] = PERIODS
    modes: tuple[str, ...] = MODES
    duration: float = 10.0
    load: bool = False
    prefill: float | None = None  # seconds; None: each mode's own (buffered 0.1 s, low-latency one frame)
    provider: str = "cpu"
    threads: int = 1
    seed: int = 0

    def check(self) -> None:
        if not self.periods or min(self.periods) <= 0:
            raise GanvoiceError(f"periods must be positive numbers of samples, not {self.periods}")
        if self.duration <= 0:
            raise GanvoiceError(f"--duration must be > 0 seconds, not {self.duration}")
        unknown = sorted(set(self.modes) - set(PLAYER_MODES))
        if unknown:
            raise GanvoiceError(f"unknown mode {unknown[0]!r}; choose from {', '.join(PLAYER_MODES)}")

    @property
    def load_processes(self) -> int:
        return max(1, usable_cores() - 1) if self.load else 0


COLUMNS = [
    Column("model", "model"),
    Column("period", "period"),
    Column("mode", "mode"),
    Column("load", "load"),
    Column("blocks", "blocks"),
    Column("underflows", "underflows"),
    Column("device_underflows", "device xruns"),
    Column("late_blocks", "late blocks"),
    Column("overrun_blocks", "overruns"),
    Column("block_ms_p50", "p50 ms"),
    Column("block_ms_p99", "p99 ms"),
    Column("block_ms_max", "max ms"),
    Column("p99_frac", "p99/period"),
    Column("latency_ms", "latency ms"),
]


def _play(
    engine: Engine, source: MelSource, config: XrunsConfig, period: int, mode: str
) -> tuple[dict, list]:
    player_config = PlayerConfig(
        mode=mode, blocksize=period, device=JACK_DEVICE, prefill=config.prefill, duration=config.duration
    )
    player = Player(engine, source, player_config)
    try:
        player.start()
        if not player.wait(timeout=config.duration + WAIT_SLACK_S):
            raise GanvoiceError(f"xruns: the stream at period {period} did not end")
    finally:
        player.stop()
    return player.summary(), engine.stats.times_ms()


def _row(model: BenchModel, summary: dict, config: XrunsConfig, server: JackServer) -> dict:
    period = server.period
    period_ms = 1000.0 * period / summary["sample_rate"]
    keys = (
        *("blocks", "underflows", "device_underflows", "late_blocks", "overrun_blocks"),
        *("block_ms_p50", "block_ms_p99", "block_ms_max"),
        *("latency_ms", "engine_latency_ms", "device_latency_ms", "wall_s"),
    )
    return {
        **model.describe(),
        "provider": summary["provider"],
        "threads": config.threads,
        "period": period,
        "period_ms": round(period_ms, 4),
        "mode": summary["mode"],
        "load": config.load,
        "load_processes": config.load_processes,
        "jack_realtime": server.realtime,
        "duration_s": config.duration,
        **{key: summary[key] for key in keys},
        "p99_frac": round(summary["block_ms_p99"] / period_ms, 4),
    }


def run_xruns(models: list[BenchModel], config: XrunsConfig) -> Result:
    config.check()
    rows, samples = [], {}
    provider = "cuda" if config.provider == "cuda" else "cpu"
    for model in models:
        engine = Engine(model.path, provider, config.threads)
        frames = conditioning(model.metadata, frames_for(model.metadata, SOURCE_SECONDS), config.seed)
        source = MelSource(frames, loop=True)
        for period in config.periods:
            with JackServer(model.metadata.sample_rate, period) as server, CpuLoad(config.load_processes):
                settle(SETTLE_S)
                for mode in config.modes:
                    summary, times = _play(engine, source, config, period, mode)
                    rows.append(_row(model, summary, config, server))
                    samples[f"{model.label} {mode} {period}"] = np.asarray(times)
    load = f", with {config.load_processes} busy process(es) on the other core(s)" if config.load else ""
    return Result(
        benchmark="xruns",
        title=f"Paced playback on a JACK dummy server: {config.duration:g} s per period and mode{load}",
        machine=describe_machine(),
        settings={**asdict(config), "load_processes": config.load_processes},
        rows=rows,
        columns=COLUMNS,
        summary={"underflows_total": int(sum(r["underflows"] for r in rows))},
        notes=[
            "underflows = blocks that went (partly) silent, including device xruns that JACK reported; "
            "late blocks = callback longer than the period (callback mode); overruns = late blocks whose "
            "thread computed that long itself (CPU time; the others were the thread kept off the CPU).",
            "Block times: callback mode = inside the audio callback; buffered mode = the worker's fills.",
            _scheduling_note(rows),
        ],
        samples=samples,
    )


def _scheduling_note(rows: list[dict]) -> str:
    if rows and all(r["jack_realtime"] for r in rows):
        return f"jackd ran with realtime scheduling (-R, priority {REALTIME_PRIORITY})."
    return "jackd ran (at least partly) with --no-realtime (realtime scheduling not allowed here)."
