"""``throughput``: offline real-time factor (audio seconds per wall second) per model, provider, threads.

Every runner (ONNX Runtime per provider and intra-op thread count; PyTorch eager for comparison where
torch is installed) runs the same ``seconds`` of audio. Repetitions are interleaved across runners, so
machine noise hits all of them alike; the first ``warmup`` runs of each are not counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ganvoice.bench.machine import describe_machine
from ganvoice.bench.models import BenchModel, torch_available
from ganvoice.bench.report import Column, Result
from ganvoice.bench.runners import OrtOffline, TorchEager, resolve_providers, session_settings, timed
from ganvoice.bench.signals import conditioning, frames_for
from ganvoice.bench.timing import spread

DEFAULT_THREADS = (1, 2)


@dataclass(frozen=True)
class ThroughputConfig:
    seconds: float = 10.0
    repeat: int = 5
    warmup: int = 1
    threads: tuple[int, ...] = DEFAULT_THREADS
    provider: str = "cpu"  # cpu | cuda | all
    torch: bool = True  # PyTorch eager rows where torch is installed
    seed: int = 0


COLUMNS = [
    Column("model", "model"),
    Column("runtime", "runtime"),
    Column("provider", "provider"),
    Column("threads", "threads"),
    Column("audio_s", "audio s"),
    Column("xrt_median", "xRT median"),
    Column("xrt_p10", "xRT p10"),
    Column("xrt_p90", "xRT p90"),
    Column("wall_ms_median", "wall ms"),
]


def _runners(models: list[BenchModel], config: ThroughputConfig, providers: list[str]) -> list:
    runners = []
    use_torch = config.torch and torch_available()
    for model in models:
        frames = conditioning(model.metadata, frames_for(model.metadata, config.seconds), config.seed)
        for provider in providers:
            runners += [(model, OrtOffline(model, frames, provider, t)) for t in config.threads]
        if use_torch and TorchEager.supports(model):
            runners += [(model, TorchEager(model, frames, t)) for t in config.threads]
    return runners


def run_throughput(models: list[BenchModel], config: ThroughputConfig) -> Result:
    providers, notes = resolve_providers(config.provider)
    if config.torch and not torch_available():
        notes.append("PyTorch eager rows skipped: torch is not installed")
    runners = _runners(models, config, providers)
    for _ in range(config.warmup):
        for _, run in runners:
            timed(run)
    walls: list[list[float]] = [[] for _ in runners]
    for _ in range(config.repeat):
        for index, (_, run) in enumerate(runners):
            walls[index].append(timed(run))
    rows = [_row(model, run, wall) for (model, run), wall in zip(runners, walls)]
    return Result(
        benchmark="throughput",
        title=f"Offline throughput: {config.seconds:g} s of audio, {config.repeat} interleaved repetitions",
        machine=describe_machine(),
        settings={**asdict(config), "providers": providers, "ort_sessions": _sessions(runners)},
        rows=rows,
        columns=COLUMNS,
        notes=notes + ["xRT = audio seconds per wall second (higher is faster); spread = p10..p90."],
    )


def _sessions(runners: list) -> list[dict]:
    """The distinct ONNX Runtime session settings used (one per provider and thread count)."""
    seen = []
    for _, run in runners:
        if isinstance(run, OrtOffline) and session_settings(run.session) not in seen:
            seen.append(session_settings(run.session))
    return seen


def _row(model: BenchModel, run, wall: list[float]) -> dict:
    return {
        **model.describe(),
        "runtime": run.runtime,
        "provider": run.provider,
        "threads": run.threads,
        "audio_s": round(run.audio_seconds, 3),
        **spread(run.audio_seconds / w for w in wall).fields("xrt"),
        "wall_ms_median": spread(1000.0 * w for w in wall).median,
        "repetitions": len(wall),
    }
