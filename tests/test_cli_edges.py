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


def test_list_devices_without_any_device_says_so(tmp_path):
    """No JACK server and no sound card: one line and exit status 2 (it printed an empty line, exit 0)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "JACK_DEFAULT_SERVER": "ganvoice-no-such-server"}
    command = [sys.executable, "-m", "ganvoice.cli", "play", "--list-devices"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "no audio device" in lines[0], result


def test_a_render_states_how_much_faster_than_real_time_it_ran(tiny_model, demo_wav, tmp_path, capsys):
    """The speed line reads like the README's xRT (it printed wall/audio: "0.0363 x real time")."""
    from ganvoice.realtime.cli import play

    out = tmp_path / "x.wav"
    play.main(
        args=["--model", str(tiny_model), "--input", str(demo_wav), "--output", str(out)],
        standalone_mode=False,
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    factor = float(line.split("rendered ")[1].split("x faster")[0])
    assert factor > 1.0, line  # the tiny model renders far faster than real time
