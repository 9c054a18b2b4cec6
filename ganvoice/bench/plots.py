"""PNG plots of a :class:`~ganvoice.bench.report.Result`: xRT bars, latency histograms, budget bars.

matplotlib is imported only here (the Agg backend, no display); files are written atomically.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from ganvoice.bench.report import Result
from ganvoice.errors import GanvoiceError
from ganvoice.fileio import atomic_write_bytes

DPI = 110
BAR_HEIGHT_IN = 0.32
FIG_WIDTH_IN = 8.0
MIN_FIG_HEIGHT_IN = 2.5
HIST_CELL_IN = (3.2, 2.2)
HIST_BINS = 40
#: Histogram x ranges narrower than this many decades get ticks at 1, 2 and 5 of each decade.
NARROW_DECADES = 2.0
BUDGET_PARTS = ("model_delay_ms", "resampler_ms", "block_ms", "buffering_ms", "device_ms")


def pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise GanvoiceError("--plots needs matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    fig.clf()
    return atomic_write_bytes(path, buffer.getvalue())


def _bars(plt, labels, rows: list[dict], key: str, xlabel: str, title: str, log: bool = True):
    """One bar per row: ``row[key + "_median"]`` with whiskers from ``_p10`` to ``_p90``."""
    height = max(MIN_FIG_HEIGHT_IN, BAR_HEIGHT_IN * len(labels) + 1.0)
    fig, ax = plt.subplots(figsize=(FIG_WIDTH_IN, height))
    y = np.arange(len(labels))
    values = np.array([r[f"{key}_median"] for r in rows], dtype=float)
    low = np.array([r[f"{key}_p10"] for r in rows], dtype=float)
    high = np.array([r[f"{key}_p90"] for r in rows], dtype=float)
    err = [values - low, high - values]
    ax.barh(y, values, xerr=err, color="tab:blue", ecolor="black", capsize=3)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    if log and np.all(values > 0):
        ax.set_xscale("log")
    if "xRT" in xlabel:  # the real-time line
        ax.axvline(1.0, color="tab:red", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    return fig


def _log_ticks(ax, low: float, high: float) -> None:
    """A log x axis labelled 1, 2, 5, 10 ... over narrow ranges and at the decades over wide ones."""
    from matplotlib import ticker

    ax.set_xscale("log")
    subs = (1.0, 2.0, 5.0) if math.log10(max(high, low) / low) < NARROW_DECADES else (1.0,)
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10.0, subs=subs))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def _histograms(plt, samples: dict, periods: dict, title: str, columns: int):
    keys = [key for key in samples if len(samples[key])]
    if not keys:
        return None
    columns = max(1, min(columns, len(keys)))
    rows = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(HIST_CELL_IN[0] * columns, HIST_CELL_IN[1] * rows), squeeze=False
    )
    for ax, key in zip(axes.flat, keys):
        data = np.asarray(samples[key], dtype=float)
        positive = data[data > 0]
        low, high = (positive.min(), positive.max()) if positive.size else (1e-3, 1.0)
        bins = np.geomspace(low, max(high, low * 1.01), HIST_BINS)
        ax.hist(np.clip(data, low, None), bins=bins, color="tab:blue")
        _log_ticks(ax, low, high)
        if key in periods:
            ax.axvline(periods[key], color="tab:red", linestyle="--", linewidth=1, label="period")
        ax.set_title(key, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("ms per block", fontsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _plot_throughput(plt, result: Result) -> dict:
    rows = result.rows
    labels = [f"{r['model']} {r['runtime']} {r['provider']} t{r['threads']}" for r in rows]
    fig = _bars(plt, labels, rows, "xrt", "xRT (audio s / wall s), median with p10..p90", result.title)
    return {"throughput-xrt.png": fig}


def _plot_compare(plt, result: Result) -> dict:
    rows = result.rows
    labels = [r["model"] for r in rows]
    name = (
        "compare"
        if result.settings.get("provider", "cpu") == "cpu"
        else f"compare-{result.settings['provider']}"
    )
    figs = {}
    for kind in ("offline", "stream"):
        figs[f"{name}-{kind}-xrt.png"] = _bars(
            plt,
            labels,
            rows,
            f"{kind}_xrt",
            f"{kind} xRT (audio s / compute s), median with p10..p90",
            result.title,
        )
    periods = {r["model"]: r["block_p99_ms"] / r["block_p99_frac"] for r in rows if r["block_p99_frac"]}
    figs[f"{name}-block-hist.png"] = _histograms(
        plt, result.samples, periods, f"per-block compute, block {result.settings['block']}", 3
    )
    return figs


def _plot_stream(plt, result: Result) -> dict:
    periods = {f"{r['model']} {r['provider']} {r['mode']} {r['block']}": r["period_ms"] for r in result.rows}
    columns = len(result.settings["block_sizes"])
    figs = {"stream-hist.png": _histograms(plt, result.samples, periods, result.title, columns)}
    fig, ax = plt.subplots(figsize=(FIG_WIDTH_IN, 4))
    series: dict[str, list] = {}
    for r in result.rows:
        series.setdefault(f"{r['model']} {r['provider']} {r['mode']}", []).append((r["block"], r["frac_p99"]))
    for name, points in series.items():
        blocks, fracs = zip(*sorted(points))
        ax.plot(blocks, fracs, marker="o", label=name)
    ax.axhline(1.0, color="tab:red", linestyle="--", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("block size (samples)")
    ax.set_ylabel("p99 compute / block period")
    ax.legend(fontsize=7)
    ax.set_title("per-block p99 as a fraction of the period (below the red line = in time)", fontsize=10)
    figs["stream-p99.png"] = fig
    return figs


def _plot_first_audio(plt, result: Result) -> dict:
    rows = result.rows
    labels = [f"{r['model']} {r['provider']} {r['mode']}" for r in rows]
    fig = _bars(
        plt,
        labels,
        rows,
        "total_ms",
        "ms from Engine(...) to the first block delivered, median with p10..p90",
        result.title,
    )
    return {"first-audio.png": fig}


def _plot_budget(plt, result: Result) -> dict:
    rows = result.rows
    labels = [f"{r['model']} {r['mode']} {r['block']}" for r in rows]
    height = max(MIN_FIG_HEIGHT_IN, BAR_HEIGHT_IN * len(labels) + 1.0)
    fig, ax = plt.subplots(figsize=(FIG_WIDTH_IN, height))
    y, left = np.arange(len(rows)), np.zeros(len(rows))
    for part in BUDGET_PARTS:
        values = np.array([r[part] for r in rows], dtype=float)
        ax.barh(y, values, left=left, label=part.removesuffix("_ms").replace("_", " "))
        left += values
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("ms")
    ax.legend(fontsize=7)
    ax.set_title(result.title, fontsize=10)
    return {"budget.png": fig}


def _plot_xruns(plt, result: Result) -> dict:
    rows = result.rows
    suffix = "-load" if result.settings.get("load") else ""
    periods = {f"{r['model']} {r['mode']} {r['period']}": r["period_ms"] for r in rows}
    labels = [f"{r['model']} {r['mode']} {r['period']}" for r in rows]
    counts = [r["underflows"] for r in rows]
    fig, ax = plt.subplots(figsize=(FIG_WIDTH_IN, max(MIN_FIG_HEIGHT_IN, BAR_HEIGHT_IN * len(rows) + 1.0)))
    ax.barh(np.arange(len(rows)), counts, color="tab:orange")
    ax.set_yticks(np.arange(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("underflows")
    ax.set_title(result.title, fontsize=10)
    return {
        f"xruns{suffix}-hist.png": _histograms(plt, result.samples, periods, result.title, 2),
        f"xruns{suffix}-underflows.png": fig,
    }


PLOTTERS = {
    "throughput": _plot_throughput,
    "compare": _plot_compare,
    "stream": _plot_stream,
    "first-audio": _plot_first_audio,
    "budget": _plot_budget,
    "xruns": _plot_xruns,
}


def save_plots(result: Result, directory: str | Path) -> list[Path]:
    """Write the benchmark's PNGs into ``directory`` (created if missing); returns their paths."""
    plt = pyplot()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in PLOTTERS[result.benchmark](plt, result).items():
        if fig is None:
            continue
        try:
            written.append(_save(fig, directory / name))
        finally:
            plt.close(fig)
    return written
