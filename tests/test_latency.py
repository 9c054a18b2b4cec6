"""One latency budget: what the player states is model delay + block + buffering + device, at any block
size, and ``ganvoice-bench budget`` tabulates the same number for the same configuration.

The player runs against a stand-in for sounddevice (:mod:`fake_sounddevice`) that reports a fixed
device latency, so every number is exact (no timing is measured).
"""

from __future__ import annotations

import numpy as np
import pytest
from fake_sounddevice import FakeSoundDevice

from ganvoice.bench.budget import BudgetConfig, run_budget
from ganvoice.bench.models import ORIGIN_FILE, BenchModel
from ganvoice.realtime import player as player_module
from ganvoice.realtime.cli import _status_line
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.latency import LatencyBudget
from ganvoice.realtime.model import read_metadata
from ganvoice.realtime.player import DEFAULT_PREFILL_S, Player, PlayerConfig
from ganvoice.realtime.sources import MelSource

DEVICE_S = 0.005  # what the stand-in device reports


def played_summary(model, monkeypatch, mode: str, blocksize: int) -> tuple[dict, str]:
    """Play a few frames on the stand-in device; (``--stats-json``'s summary, the status line)."""
    meta = read_metadata(model)
    frames = np.full((meta.channels, 4), meta.pad_value, np.float32)
    player = Player(Engine(model, "cpu"), MelSource(frames), PlayerConfig(mode=mode, blocksize=blocksize))
    fake = FakeSoundDevice(meta.sample_rate, latency=DEVICE_S)
    monkeypatch.setattr(player_module, "import_sounddevice", lambda: fake)
    with player:
        line = _status_line(player)
        assert player.wait(timeout=60)
    return player.summary(), line


@pytest.mark.parametrize("mode", ["callback", "buffered"])
def test_the_stated_latency_counts_the_block(tiny_model, monkeypatch, mode):
    meta = read_metadata(tiny_model)
    rate = meta.sample_rate
    buffering = round(DEFAULT_PREFILL_S * rate) if mode == "buffered" else 0
    stated = {}
    for blocksize in (64, 256, 4096):
        summary, line = played_summary(tiny_model, monkeypatch, mode, blocksize)
        expected = 1000.0 * (meta.delay_samples + blocksize + buffering) / rate + 1000.0 * DEVICE_S
        assert summary["latency_ms"] == pytest.approx(expected, abs=2e-3), blocksize
        assert summary["block_latency_ms"] == pytest.approx(1000.0 * blocksize / rate, abs=1e-3)
        parts = ("engine_latency_ms", "block_latency_ms", "device_latency_ms")
        assert summary["latency_ms"] == pytest.approx(sum(summary[p] for p in parts), abs=2e-3)
        assert f"latency {summary['latency_ms']:.1f} ms (model " in line
        assert f"block {1000.0 * blocksize / rate:.1f}" in line
        stated[blocksize] = summary["latency_ms"]
    assert stated[4096] - stated[64] == pytest.approx(1000.0 * (4096 - 64) / rate, abs=2e-3)


@pytest.mark.parametrize("mode", ["callback", "buffered"])
def test_bench_budget_is_the_latency_the_player_states(tiny_model, monkeypatch, mode):
    meta = read_metadata(tiny_model)
    model = BenchModel("tiny", tiny_model, ORIGIN_FILE, meta)
    for blocksize in (64, 1024):
        config = BudgetConfig((blocksize,), (mode,), DEFAULT_PREFILL_S, None, 1000.0 * DEVICE_S)
        (row,) = run_budget([model], config).rows
        summary, _ = played_summary(tiny_model, monkeypatch, mode, blocksize)
        assert row["total_ms"] == pytest.approx(summary["latency_ms"], abs=2e-3)
        assert row["block_ms"] == pytest.approx(summary["block_latency_ms"], abs=1e-3)


def test_budget_parts_add_up_at_another_device_rate(tiny_model):
    engine = Engine(tiny_model, "cpu", sample_rate=48000, max_block=256)
    budget = LatencyBudget.of(engine, 256, 3.0)
    assert budget.resampler_ms > 0 and budget.block_ms == pytest.approx(1000.0 * 256 / 48000)
    parts = budget.parts()
    assert parts["total_ms"] == pytest.approx(sum(v for k, v in parts.items() if k != "total_ms"), abs=2e-3)
    expected_engine = 1000.0 * engine.latency_samples / 48000
    assert budget.total_ms == pytest.approx(expected_engine + budget.block_ms + 3.0)
