"""Counters and per-block compute times, recorded from the audio thread without allocating."""

from __future__ import annotations

import time

import numpy as np

#: Block times kept for the percentiles (the most recent ones; about 12 minutes at 256 / 22050 Hz).
HISTORY = 1 << 16


class Stats:
    """Blocks, underflows and compute time per block (ms).

    ``blocks`` counts device blocks; ``starved`` counts blocks that went (partly) silent because no
    audio was ready; ``device_underflows`` counts the underflows the audio device reported (a block
    that came late; on JACK any client's xrun is reported to every client); ``late_blocks`` counts
    callbacks that took longer than the block lasts, ``overrun_blocks`` those of them whose thread itself
    computed that long (its CPU time: a late block that is no overrun was the thread kept off the CPU,
    preempted or its virtual CPU stolen, not the player's work); ``nonfinite`` counts model calls whose
    audio had a NaN or an infinity (played as silence). The summary's ``underflows`` is
    ``starved + device_underflows``. The writer is one thread at a time.
    """

    def __init__(self) -> None:
        self._times = np.zeros(HISTORY, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        self.blocks = 0
        self.starved = 0
        self.device_underflows = 0
        self.late_blocks = 0
        self.overrun_blocks = 0
        self.nonfinite = 0
        self._count = 0
        self._started = time.monotonic()

    def record(self, ms: float) -> None:
        """One block's compute time in milliseconds."""
        self._times[self._count % HISTORY] = ms
        self._count += 1

    def record_callback(self, started: float, started_cpu: float, period_s: float) -> None:
        """One audio callback that began at ``started`` (``time.perf_counter``) and ``started_cpu``
        (``time.thread_time``): its wall time is recorded; late past ``period_s``, and an overrun too if its
        thread's own CPU time passed the period."""
        ms = 1000.0 * (time.perf_counter() - started)
        self.record(ms)
        if ms > 1000.0 * period_s:
            self.late_blocks += 1
            if time.thread_time() - started_cpu > period_s:
                self.overrun_blocks += 1

    def times_ms(self) -> np.ndarray:
        """The recorded block times (a copy, oldest first within the kept history)."""
        n = min(self._count, HISTORY)
        if self._count <= HISTORY:
            return self._times[:n].copy()
        start = self._count % HISTORY
        return np.concatenate([self._times[start:], self._times[:start]])

    def summary(self) -> dict:
        """Counters, ``block_ms_p50``/``p99``/``max`` and ``wall_s`` (since the last reset)."""
        times = self.times_ms()
        pick = (lambda q: float(np.percentile(times, q))) if len(times) else (lambda q: 0.0)
        return {
            "blocks": int(self.blocks),
            "underflows": int(self.starved + self.device_underflows),
            "starved_blocks": int(self.starved),
            "device_underflows": int(self.device_underflows),
            "late_blocks": int(self.late_blocks),
            "overrun_blocks": int(self.overrun_blocks),
            "nonfinite_calls": int(self.nonfinite),
            "block_ms_p50": round(pick(50), 4),
            "block_ms_p99": round(pick(99), 4),
            "block_ms_max": round(float(times.max()) if len(times) else 0.0, 4),
            "wall_s": round(time.monotonic() - self._started, 3),
        }


def markdown_table(summary: dict) -> str:
    """A two-column Markdown table of a stats summary."""
    rows = ["| stat | value |", "| --- | --- |"]
    rows += [f"| {key} | {value} |" for key, value in summary.items()]
    return "\n".join(rows)
