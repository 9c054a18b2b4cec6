"""``first-audio``: time from starting the engine to the first generated sample delivered.

In process, per repetition: construct :class:`~ganvoice.realtime.Engine` (check the model, open the ONNX
Runtime session, preallocate) and attach a source (``open``), then deliver the first block the way the
audio callback would (``first``): in callback mode one :meth:`Engine.fill`; in buffered mode the worker
renders the prefill into the ring, then the callback copies the first block out. The first repetition
is reported apart (``cold``: caches and lazy ORT initialisation not yet warm). ``process`` repetitions
start a fresh interpreter (imports included) that does the callback-mode start and reports its first block.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from ganvoice.bench.machine import describe_machine
from ganvoice.bench.models import BenchModel
from ganvoice.bench.report import Column, Result
from ganvoice.bench.runners import RING_BLOCKS, resolve_providers
from ganvoice.bench.signals import conditioning, frames_for
from ganvoice.bench.timing import spread
from ganvoice.errors import GanvoiceError
from ganvoice.realtime.blockstep import MODES, BlockStep
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.player import DEFAULT_PREFILL_S
from ganvoice.realtime.sources import MelSource

MS = 1000.0
SOURCE_SECONDS = 1.0
#: Seconds a cold child process may take before the benchmark gives up on it.
CHILD_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class FirstAudioConfig:
    block: int = 256
    modes: tuple[str, ...] = MODES
    repeat: int = 5
    process_repeat: int = 3  # cold interpreter starts (callback mode); 0 skips them
    prefill: float = DEFAULT_PREFILL_S
    provider: str = "cpu"
    threads: int = 1
    seed: int = 0


COLUMNS = [
    Column("model", "model"),
    Column("provider", "provider"),
    Column("mode", "mode"),
    Column("open_ms_median", "open ms"),
    Column("first_ms_median", "first block ms"),
    Column("total_ms_median", "total ms"),
    Column("total_ms_p90", "total p90"),
    Column("cold_total_ms", "cold total ms"),
    Column("process_ms_median", "new process ms"),
]


def _start(model: BenchModel, frames: np.ndarray, mode: str, config: FirstAudioConfig, provider: str):
    """One engine start; returns ``(open_s, first_s)``."""
    start = time.perf_counter()
    engine = Engine(model.path, provider, config.threads, max_block=config.block)
    engine.set_source(MelSource(frames, loop=True))
    opened = time.perf_counter()
    out = np.zeros(config.block, dtype=np.float32)
    prefill = max(1, round(config.prefill * engine.sample_rate))
    step = BlockStep(engine, config.block, mode, prefill + RING_BLOCKS * config.block)
    if mode == "buffered":
        while step.ring.available() < prefill:
            step.render()
        step.play(out)
    else:
        while step.play(out)[0] == 0:
            pass
    return opened - start, time.perf_counter() - opened


def _process_start(model: BenchModel, config: FirstAudioConfig, provider: str) -> float:
    """Seconds from launching a fresh interpreter to its first delivered block."""
    command = [sys.executable, "-m", "ganvoice.bench.child", str(model.path), provider]
    command += [str(config.threads), str(config.block)]
    start = time.perf_counter()
    try:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
            line = child.stdout.readline()
            elapsed = time.perf_counter() - start
            _, err = child.communicate(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise GanvoiceError(
            f"first-audio: the engine process did not finish in {CHILD_TIMEOUT_S:g} s"
        ) from exc
    if child.returncode != 0 or not line.strip():
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise GanvoiceError(f"first-audio: the engine process failed: {last}")
    json.loads(line)  # the child's own timings: a check that it really delivered a block
    return elapsed


def _row(model, provider, mode, config: FirstAudioConfig, starts, processes) -> dict:
    totals = [a + b for a, b in starts]
    warm = starts[1:] or starts
    return {
        **model.describe(),
        "provider": provider,
        "threads": config.threads,
        "mode": mode,
        "block": config.block,
        **spread(MS * a for a, _ in warm).fields("open_ms"),
        **spread(MS * b for _, b in warm).fields("first_ms"),
        **spread(MS * (a + b) for a, b in warm).fields("total_ms"),
        "cold_total_ms": round(MS * totals[0], 3),
        **spread(MS * p for p in processes).fields("process_ms"),
        "repetitions": len(starts),
        "process_repetitions": len(processes),
    }


def run_first_audio(models: list[BenchModel], config: FirstAudioConfig) -> Result:
    if config.repeat <= 0 or config.block <= 0:
        raise GanvoiceError("--repeat and --block must be positive")
    providers, notes = resolve_providers(config.provider)
    rows = []
    for model in models:
        frames = conditioning(model.metadata, frames_for(model.metadata, SOURCE_SECONDS), config.seed)
        for provider in providers:
            for mode in config.modes:
                starts = [_start(model, frames, mode, config, provider) for _ in range(config.repeat)]
                runs = config.process_repeat if mode == "callback" else 0
                processes = [_process_start(model, config, provider) for _ in range(runs)]
                rows.append(_row(model, provider, mode, config, starts, processes))
    return Result(
        benchmark="first-audio",
        title=f"Time to first audio: block {config.block}, buffered prefill {config.prefill:g} s",
        machine=describe_machine(),
        settings={**asdict(config), "providers": providers},
        rows=rows,
        columns=COLUMNS,
        notes=notes
        + [
            "open = Engine(...) + set_source (model check, ORT session, buffers); first = the first block "
            "delivered (buffered: after rendering the prefill); medians exclude the cold first start.",
            "new process = a fresh Python interpreter: imports + open + first block (callback mode).",
        ],
    )
