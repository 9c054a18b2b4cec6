"""Render a source through the engine into an audio file, faster than real time (`ganvoice-play -o`).

A rendered file lines up with its input (:attr:`Engine.compensate_delay`) and, for an audio input, has
its length: the file source's frames cover the last partial hop, and the render is cut to
:attr:`Source.samples`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ganvoice.errors import GanvoiceError
from ganvoice.fileio import FILE_FOLDER_MISSING, require_folder
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.sources import NoiseSource, Source

#: Samples per engine call when rendering to a file (bigger is faster; the result is the same).
RENDER_BLOCK = 8192
#: soundfile sample format for each output extension (wav keeps the float32 samples exactly).
OUTPUT_SUBTYPES = {".wav": "FLOAT", ".flac": "PCM_24", ".ogg": "VORBIS"}
#: How long file rendering waits when a live source (stdin) has no frame yet (seconds).
STARVED_SLEEP_S = 0.002


def render_to_file(engine: Engine, source: Source, path: Path, duration: float | None) -> dict:
    """Render ``source`` through the engine (faster than real time) into ``path``, atomically."""
    from ganvoice.audio import save_audio

    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUBTYPES:
        raise GanvoiceError(f"{path}: unknown audio extension (use one of {', '.join(OUTPUT_SUBTYPES)})")
    require_folder(path, FILE_FOLDER_MISSING)  # before rendering, not only when save_audio writes
    if duration is None and (getattr(source, "loop", False) or isinstance(source, NoiseSource)):
        raise GanvoiceError("an endless input (--loop or --noise) needs --duration with --output")
    engine.prepare(engine.model_rate, RENDER_BLOCK)
    engine.set_source(source)
    limit = None if duration is None else round(duration * engine.sample_rate)
    if source.samples is not None:  # the input's length (the model renders whole hops)
        limit = source.samples if limit is None else min(limit, source.samples)
    audio = _render_all(engine, limit)
    if len(audio) == 0:
        raise GanvoiceError("nothing to write: the input made no audio")
    save_audio(path, audio, engine.sample_rate, subtype=OUTPUT_SUBTYPES[suffix])
    summary = engine.stats.summary()
    seconds = len(audio) / engine.sample_rate
    summary.update(
        seconds=round(seconds, 3),
        provider=engine.provider,
        mode="render",
        blocksize=RENDER_BLOCK,
        sample_rate=engine.sample_rate,
        model=engine.model_path,
        latency_ms=0.0,
        realtime_factor=round(summary["wall_s"] / seconds, 4) if seconds else 0.0,
    )
    return summary


def _render_all(engine: Engine, limit: int | None) -> np.ndarray:
    """Pull the engine's audio until its source ends (or ``limit`` samples), timing every block."""
    pieces, total = [], 0
    block = np.zeros(RENDER_BLOCK, dtype=np.float32)
    while not engine.finished and (limit is None or total < limit):
        start = time.perf_counter()
        got = engine.fill(block)
        if got:
            engine.stats.record(1000.0 * (time.perf_counter() - start))
            engine.stats.blocks += 1
            pieces.append(block[:got].copy())
            total += got
        elif not engine.finished:
            time.sleep(STARVED_SLEEP_S)  # a live source (stdin) has nothing yet
    audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return audio[:limit]
