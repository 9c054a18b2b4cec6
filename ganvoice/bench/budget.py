"""``budget``: the latency from a frame entering the engine to its sound leaving the device, in ms.

Per model, block size and mode: model delay (the generator's lookahead) + resampler hold (when the device
rate differs) + one block (a block is computed before it plays) + buffering (the buffered mode's prefill)
+ device latency (what PortAudio reports for the stream: measured on a JACK dummy server per block size,
or given with ``--device-latency-ms``). The sum is :class:`~ganvoice.realtime.latency.LatencyBudget`,
the same definition as the latency ``ganvoice-play`` states. Compute time is not added: a block that is
computed in time is inside its block.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ganvoice.bench.jack import JACK_DEVICE, JackServer, jack_missing
from ganvoice.bench.machine import describe_machine
from ganvoice.bench.models import BenchModel
from ganvoice.bench.report import Column, Result
from ganvoice.bench.runners import CALLBACK_CHANNELS
from ganvoice.bench.stream import BLOCK_SIZES
from ganvoice.errors import GanvoiceError
from ganvoice.realtime.blockstep import MODES
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.latency import LatencyBudget
from ganvoice.realtime.player import DEFAULT_PREFILL_S, import_sounddevice

MS = 1000.0
DEVICE_MEASURED = "jack-dummy"
DEVICE_GIVEN = "given"
DEVICE_UNKNOWN = "not measured"


@dataclass(frozen=True)
class BudgetConfig:
    block_sizes: tuple[int, ...] = BLOCK_SIZES
    modes: tuple[str, ...] = MODES
    prefill: float = DEFAULT_PREFILL_S
    device_rate: int | None = None  # None: each model's own rate
    device_latency_ms: float | None = None  # None: measure on a JACK dummy server when possible


COLUMNS = [
    Column("model", "model"),
    Column("mode", "mode"),
    Column("block", "block"),
    Column("model_delay_ms", "model delay"),
    Column("resampler_ms", "resampler"),
    Column("block_ms", "block"),
    Column("buffering_ms", "buffering"),
    Column("device_ms", "device"),
    Column("total_ms", "total ms"),
]


def _silence(outdata, frames, time_info, status) -> None:
    outdata.fill(0.0)


def device_latency_ms(rate: int, block: int) -> float:
    """The output latency PortAudio reports for a low-latency stream on a JACK dummy server."""
    with JackServer(rate, block):
        sd = import_sounddevice()
        stream = sd.OutputStream(
            device=JACK_DEVICE,
            samplerate=rate,
            blocksize=block,
            channels=CALLBACK_CHANNELS,
            dtype="float32",
            latency="low",
            callback=_silence,
        )
        try:
            return MS * float(stream.latency)
        finally:
            stream.close()


def _device_latencies(rates: set[int], config: BudgetConfig) -> tuple[dict, str, list[str]]:
    """``{(rate, block): ms}``, where they came from, and notes."""
    keys = [(rate, block) for rate in sorted(rates) for block in config.block_sizes]
    if config.device_latency_ms is not None:
        return {key: config.device_latency_ms for key in keys}, DEVICE_GIVEN, []
    reason = jack_missing()
    if reason:
        note = f"device latency not measured ({reason}); give it with --device-latency-ms"
        return {key: 0.0 for key in keys}, DEVICE_UNKNOWN, [note]
    return {key: device_latency_ms(*key) for key in keys}, DEVICE_MEASURED, []


def _row(engine: Engine, model: BenchModel, mode: str, block: int, device_ms: float, prefill: float) -> dict:
    rate = engine.sample_rate
    engine.prepare(rate, block)
    engine.buffer_samples = round(prefill * rate) if mode == "buffered" else 0  # as the player sets it
    return {
        **model.describe(),
        "mode": mode,
        "block": block,
        "device_rate": rate,
        **LatencyBudget.of(engine, block, device_ms).parts(),
    }


def run_budget(models: list[BenchModel], config: BudgetConfig) -> Result:
    if not config.block_sizes or min(config.block_sizes) <= 0:
        raise GanvoiceError(f"block sizes must be positive numbers of samples, not {config.block_sizes}")
    if config.prefill < 0:
        raise GanvoiceError(f"prefill must be >= 0 seconds, not {config.prefill}")
    rates = {config.device_rate or m.metadata.sample_rate for m in models}
    devices, source, notes = _device_latencies(rates, config)
    rows = []
    for model in models:
        rate = config.device_rate or model.metadata.sample_rate
        engine = Engine(model.path, "cpu", 1, sample_rate=rate, max_block=max(config.block_sizes))
        for mode in config.modes:
            for block in config.block_sizes:
                rows.append(_row(engine, model, mode, block, devices[(rate, block)], config.prefill))
    for row in rows:
        row["device_source"] = source
    return Result(
        benchmark="budget",
        title="Latency budget (ms): model delay + resampler + block + buffering + device",
        machine=describe_machine(),
        settings=asdict(config),
        rows=rows,
        columns=COLUMNS,
        notes=notes
        + [
            f"device latency: {source} (PortAudio's reported output latency, latency='low').",
            "Live input (microphone) adds the mel analysis lookahead and one hop on the input side.",
        ],
    )
