"""One block step: the player's audio callback and ``ganvoice-bench stream`` play the same samples.

The player runs against a stand-in for sounddevice whose output stream calls the player's callback
block after block in a thread (no sound card, no pacing) and keeps what it wrote; the benchmark's
:class:`~ganvoice.bench.runners.BlockTimer` runs the same model on the same frames. Both call
:class:`~ganvoice.realtime.blockstep.BlockStep`, so their blocks are equal sample for sample.
"""

from __future__ import annotations

import numpy as np
import pytest
from fake_sounddevice import FakeSoundDevice

from ganvoice.bench.models import ORIGIN_FILE, BenchModel
from ganvoice.bench.runners import BlockTimer
from ganvoice.realtime import player as player_module
from ganvoice.realtime.blockstep import BlockStep
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.model import read_metadata
from ganvoice.realtime.player import Player, PlayerConfig
from ganvoice.realtime.sources import MelSource

BLOCK = 256
FRAMES = 120


@pytest.fixture(scope="module")
def frames(tiny_model):
    meta = read_metadata(tiny_model)
    return np.random.default_rng(0).normal(-5.0, 2.0, (meta.channels, FRAMES)).astype(np.float32)


@pytest.mark.parametrize("mode", ["callback", "buffered"])
def test_bench_blocks_are_the_players_blocks(tiny_model, frames, monkeypatch, mode):
    meta = read_metadata(tiny_model)
    player = Player(Engine(tiny_model, "cpu"), MelSource(frames), PlayerConfig(mode=mode, blocksize=BLOCK))

    def ready(block: int) -> bool:  # a paced device: the worker has time to render each block
        ring = player._ring
        return ring is None or ring.available() >= block or ring.closed

    fake = FakeSoundDevice(meta.sample_rate, ready)
    monkeypatch.setattr(player_module, "import_sounddevice", lambda: fake)
    with player:
        assert player.wait(timeout=60)
    played = np.concatenate([b[:, 0] for b in fake.blocks])
    assert np.array_equal(played, np.concatenate([b[:, 1] for b in fake.blocks]))
    assert player.stats.starved == 0

    model = BenchModel("tiny", tiny_model, ORIGIN_FILE, meta)
    timer = BlockTimer(model, frames, BLOCK, mode, "cpu", 1)
    # blocks whose samples depend only on the real frames (the bench loops its source, the player flushes)
    blocks = (FRAMES * meta.hop_length - meta.delay_samples) // BLOCK
    bench = []
    for _ in range(blocks):
        timer.run(1)
        bench.append(timer.out[:, 0].copy())
    bench = np.concatenate(bench)
    assert np.abs(bench).max() > 0
    np.testing.assert_array_equal(played[: len(bench)], bench)
    assert len(timer.compute_ms) == blocks


def test_block_step_fills_mono_and_multichannel_blocks_alike(tiny_model, frames):
    steps = []
    for shape in [(BLOCK,), (BLOCK, 3)]:
        engine = Engine(tiny_model, "cpu", max_block=BLOCK)
        engine.set_source(MelSource(frames))
        step, out, played = BlockStep(engine, BLOCK), np.zeros(shape, np.float32), []
        ended = False
        while not ended:
            got, ended = step.play(out)
            played.append((out if out.ndim == 1 else out[:, 2]).copy())
        steps.append(np.concatenate(played))
    np.testing.assert_array_equal(*steps)
    assert len(steps[0]) >= FRAMES * read_metadata(tiny_model).hop_length
