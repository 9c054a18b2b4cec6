"""``ganvoice-play`` and ``ganvoice info`` without an audio device: file rendering, stdin, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from model_files import with_metadata

from ganvoice.cli import run
from ganvoice.mel import MelAnalyzer
from ganvoice.onnxgraph import OnnxGenerator
from ganvoice.realtime.cli import info, play
from ganvoice.realtime.model import cuda_session

TOLERANCE = 1e-4
NO_DEVICE_ENV = {"JACK_DEFAULT_SERVER": "ganvoice-no-such-server"}


def ganvoice(command, *args) -> None:
    """Run a command with the CLI's error policy (as the console scripts do)."""
    run(command, [str(a) for a in args], prog_name="ganvoice-play")


def fails(capsys, command, *args) -> str:
    """Run, expect exit status 2 and one error line on stderr; return that line."""
    with pytest.raises(SystemExit) as exit_info:
        ganvoice(command, *args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture(scope="module")
def speech(tmp_path_factory, demo_wav):
    audio, rate = sf.read(demo_wav, dtype="float32")
    path = tmp_path_factory.mktemp("play") / "speech.wav"
    sf.write(path, audio[: rate // 2], rate)
    return path


def test_output_renders_the_offline_audio(tiny_model, speech, tmp_path, capsys):
    out, stats = tmp_path / "out.wav", tmp_path / "stats.json"
    ganvoice(play, "--model", tiny_model, "--input", speech, "--output", out, "--stats-json", stats)
    audio, rate = sf.read(out, dtype="float32")
    generator = OnnxGenerator(tiny_model)
    source, _ = sf.read(speech, dtype="float32")
    expected = generator.offline(MelAnalyzer(generator.metadata.mel)(source)[None])[0]
    assert rate == generator.metadata.sample_rate
    assert audio.shape == expected.shape and np.abs(audio - expected).max() <= TOLERANCE
    summary = json.loads(stats.read_text())
    for key in (
        "blocks",
        "underflows",
        "block_ms_p50",
        "block_ms_p99",
        "block_ms_max",
        "latency_ms",
        "provider",
    ):
        assert key in summary
    assert summary["underflows"] == 0 and summary["provider"] == "cpu"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav", "stats.json"]  # no temp files left


def test_mel_input_and_duration(tiny_model, speech, tmp_path):
    generator = OnnxGenerator(tiny_model)
    source, _ = sf.read(speech, dtype="float32")
    np.save(tmp_path / "speech.npy", MelAnalyzer(generator.metadata.mel)(source))
    out = tmp_path / "mel.wav"
    ganvoice(
        play,
        "--model",
        tiny_model,
        "--input",
        tmp_path / "speech.npy",
        "--loop",
        "--duration",
        1.0,
        "--output",
        out,
    )
    audio, rate = sf.read(out)
    assert len(audio) == rate


def test_noise_model_renders_noise(onnx_model, tmp_path):
    model = onnx_model("seed-mlp", hidden=32, clip_length=512)
    out = tmp_path / "noise.wav"
    ganvoice(play, "--model", model, "--noise", "--seed", 5, "--duration", 0.5, "--output", out)
    audio, rate = sf.read(out)
    assert len(audio) == rate // 2 and np.abs(audio).max() > 0


def play_command(*args) -> list[str]:
    """``ganvoice play ARGS`` as a fresh interpreter runs it (the real console-script path)."""
    return [sys.executable, "-m", "ganvoice.cli", "play", *map(str, args)]


def test_stdin_frames(tiny_model, speech, tmp_path):
    """A program pipes raw float32 mel frames into ganvoice-play (the push queue path)."""
    generator = OnnxGenerator(tiny_model)
    source, _ = sf.read(speech, dtype="float32")
    mel = MelAnalyzer(generator.metadata.mel)(source)
    out = tmp_path / "stdin.wav"
    command = play_command("--model", tiny_model, "--stdin", "--output", out)
    result = subprocess.run(
        command, input=np.ascontiguousarray(mel.T).astype("<f4").tobytes(), capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()
    audio, _ = sf.read(out, dtype="float32")
    assert np.abs(audio - generator.offline(mel[None])[0]).max() <= TOLERANCE


def test_info_prints_metadata_size_opset_and_providers(tiny_model, capsys):
    ganvoice(info, tiny_model)
    text = capsys.readouterr().out
    for words in ("variant:      fast", "22050 Hz, hop 256", "opset 17", " MB)", "CPU: yes", "delay:"):
        assert words in text


def test_bad_input_is_one_line(tiny_model, speech, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07")  # a valid but empty protobuf: not a usable model
    foreign = with_metadata(tiny_model, tmp_path / "foreign.onnx", None)
    newer = with_metadata(tiny_model, tmp_path / "newer.onnx", lambda meta: {**meta, "format": 99})
    np.save(tmp_path / "narrow.npy", np.zeros((64, 10), np.float32))
    base = ["--model", tiny_model, "--input", speech]
    cases = [
        (["--model", tmp_path / "missing.onnx", "--input", speech], "no such model file"),
        (["--model", garbage, "--input", speech], "not a loadable onnx model"),
        (["--model", foreign, "--input", speech], "without ganvoice metadata"),
        (["--model", newer, "--input", speech], "newer than this ganvoice understands"),
        (["--model", tiny_model, "--mic", "--output", "x.wav"], "--mic needs an audio device"),
        (["--model", tiny_model, "--input", tmp_path / "narrow.npy", "--output", "x.wav"], "model takes"),
        ([*base, "--blocksize", 0], "--blocksize"),
        ([*base, "--duration", -1], "--duration"),
        ([*base, "--stats-json", tmp_path / "no" / "s.json"], "does not exist"),
        ([*base, "--mic", "--output", "x.wav"], "choose one input"),
        (["--model", tiny_model, "--noise", "--output", "x.wav"], "--noise needs a noise model"),
        (
            ["--model", tiny_model, "--input", tmp_path / "missing.wav", "--output", "x.wav"],
            "no such audio file",
        ),
        ([*base, "--output", tmp_path / "no" / "x.wav"], "does not exist"),
    ]
    if cuda_session(tiny_model)[0] is None:
        cases.append(([*base, "--provider", "cuda"], "CUDA is not available"))
    for args, words in cases:
        line = fails(capsys, play, *args)
        assert words.lower() in line.lower(), (args, line)
    made = ["foreign.onnx", "garbage.onnx", "narrow.npy", "newer.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == made  # nothing half-written


def test_no_device_says_so_and_suggests_output(tiny_model, speech):
    """No audio device (PortAudio without a JACK server or sound card): one line that suggests --output."""
    command = play_command("--model", tiny_model, "--input", speech)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, **NO_DEVICE_ENV}
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--output" in lines[0] and "device" in lines[0], lines


def test_demo_without_a_device_renders_a_file(tiny_model, tmp_path):
    command = play_command("--demo", "--model", tiny_model)
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **NO_DEVICE_ENV},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "ganvoice-demo.wav" in result.stderr
    audio, rate = sf.read(tmp_path / "ganvoice-demo.wav")
    assert rate == 22050 and 2.5 < len(audio) / rate < 4.0


def test_missing_bundled_model_is_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("ganvoice.assets.assets_dir", lambda: tmp_path)
    line = fails(capsys, play, "--noise")
    assert "--model" in line and "noise.onnx" in line


def test_console_script_exists():
    script = Path(sys.executable).parent / "ganvoice-play"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--mode" in result.stdout
