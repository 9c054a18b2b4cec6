"""Play options a new user tripped on (issue 13): each is one line, before any audio is made."""

from __future__ import annotations

import pytest

from ganvoice.errors import GanvoiceError
from ganvoice.realtime.player import PlayerConfig

CASES = [
    (["--duration", "nan"], "--duration must be a finite"),
    (["--duration", "inf"], "--duration must be a finite"),
    (["--prefill", "nan"], "--prefill must be 0 to"),
    (["--prefill", "1e9"], "--prefill must be 0 to"),
    (["--blocksize", "100000"], "--blocksize must be 1 to"),
]


@pytest.mark.parametrize("extra, words", CASES)
def test_play_numbers_out_of_range_are_one_line(tiny_model, demo_wav, tmp_path, extra, words):
    from ganvoice.realtime.cli import play

    out = tmp_path / "x.wav"
    args = ["--model", str(tiny_model), "--input", str(demo_wav), "--output", str(out), *extra]
    with pytest.raises(GanvoiceError, match=words) as error:
        play.main(args=args, standalone_mode=False)
    assert "\n" not in str(error.value) and not out.exists()


@pytest.mark.parametrize(
    "config",
    [
        {"duration": float("nan")},
        {"duration": float("inf")},
        {"prefill": float("nan")},
        {"prefill": 1e9},
        {"blocksize": 100_000},
    ],
)
def test_player_config_refuses_the_same_numbers(config):
    with pytest.raises(GanvoiceError):
        PlayerConfig(**config).check()
