"""Robust summaries of repeated timings: medians with spread, and per-block percentiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Percentiles of the spread over repetitions (low, high).
SPREAD_LOW, SPREAD_HIGH = 10.0, 90.0
#: Percentiles of per-block compute times.
BLOCK_PERCENTILES = (50.0, 90.0, 99.0)
#: Digits kept in reported numbers (enough for microseconds in ms, and for ratios).
DIGITS = 4


def _round(value: float) -> float:
    return round(float(value), DIGITS)


@dataclass(frozen=True)
class Spread:
    """Median and the p10/p90 band of one quantity over ``n`` repetitions."""

    median: float
    p10: float
    p90: float
    n: int

    def fields(self, prefix: str) -> dict:
        """``{prefix_median, prefix_p10, prefix_p90}`` (rounded), for a flat result row."""
        return {f"{prefix}_median": self.median, f"{prefix}_p10": self.p10, f"{prefix}_p90": self.p90}


def spread(values) -> Spread:
    """The :class:`Spread` of ``values`` (NaN when empty)."""
    data = np.asarray(list(values), dtype=np.float64)
    if data.size == 0:
        return Spread(float("nan"), float("nan"), float("nan"), 0)
    low, mid, high = np.percentile(data, [SPREAD_LOW, 50.0, SPREAD_HIGH])
    return Spread(_round(mid), _round(low), _round(high), int(data.size))


@dataclass(frozen=True)
class BlockTimes:
    """Per-block compute time in ms: p50/p90/p99/max/mean over ``n`` blocks."""

    p50: float
    p90: float
    p99: float
    max: float
    mean: float
    n: int

    def fields(self, prefix: str = "ms", period_ms: float | None = None) -> dict:
        """Flat row fields ``{prefix}_p50`` ...; with ``period_ms`` also ``frac_p50`` ... (ms / period)."""
        values = {"p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max}
        row = {f"{prefix}_{key}": value for key, value in values.items()}
        row[f"{prefix}_mean"] = self.mean
        if period_ms:
            row.update({f"frac_{key}": _round(value / period_ms) for key, value in values.items()})
        return row


def block_times(ms) -> BlockTimes:
    """:class:`BlockTimes` of per-block times ``ms`` (zeros when empty)."""
    data = np.asarray(ms, dtype=np.float64)
    if data.size == 0:
        return BlockTimes(0.0, 0.0, 0.0, 0.0, 0.0, 0)
    p50, p90, p99 = np.percentile(data, BLOCK_PERCENTILES)
    return BlockTimes(
        _round(p50), _round(p90), _round(p99), _round(data.max()), _round(data.mean()), data.size
    )


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator`` rounded, or ``None`` when undefined."""
    if denominator is None or numerator is None or not np.isfinite(denominator) or denominator == 0:
        return None
    return _round(numerator / denominator)
