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

from ganvoice.assets import DEMO_AUDIO, asset_path
from ganvoice.audio import load_audio
from ganvoice.cli import run
from ganvoice.mel import MelAnalyzer, pad_to_whole_hops
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


def offline_render(generator: OnnxGenerator, audio: np.ndarray) -> np.ndarray:
    """What ``--input FILE --output`` renders: the offline render of the file completed to whole hops
    (:func:`~ganvoice.mel.pad_to_whole_hops`), cut to the file's length."""
    padded = pad_to_whole_hops(audio, generator.metadata.hop_length)
    return generator.offline(MelAnalyzer(generator.metadata.mel)(padded)[None])[0][: len(audio)]


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
    expected = offline_render(generator, source)
    assert rate == generator.metadata.sample_rate
    assert audio.shape == source.shape == expected.shape and np.abs(audio - expected).max() <= TOLERANCE
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


@pytest.mark.parametrize("extra", [0, 1, 207, 255])
def test_a_render_keeps_the_input_length_and_renders_its_last_partial_hop(tiny_model, tmp_path, extra):
    """The model makes whole hops: the last ``N % hop`` samples are rendered too, the file cut to N."""
    generator = OnnxGenerator(tiny_model)
    rate, hop = generator.metadata.sample_rate, generator.metadata.hop_length
    n = 40 * hop + extra
    rng = np.random.default_rng(extra)
    audio = (0.5 * np.sin(2 * np.pi * 220 * np.arange(n) / rate) + 0.05 * rng.standard_normal(n)).astype(
        np.float32
    )  # loud up to its last sample
    path, out = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(path, audio, rate, subtype="FLOAT")
    ganvoice(play, "--model", tiny_model, "--input", path, "--output", out)
    rendered, _ = sf.read(out, dtype="float32")
    assert len(rendered) == n
    assert np.abs(rendered - offline_render(generator, audio)).max() <= TOLERANCE
    tail = rendered[-(extra or hop) :]  # the model's audio of the input's end, not padding silence
    assert np.sqrt(np.mean(tail**2)) > 0.1 * np.sqrt(np.mean(rendered**2))


def test_a_render_of_another_rate_keeps_the_length_at_the_model_rate(tiny_model, tmp_path):
    rate = OnnxGenerator(tiny_model).metadata.sample_rate
    audio = np.random.default_rng(1).uniform(-0.3, 0.3, 16000 + 77).astype(np.float32)
    path, out = tmp_path / "in16k.wav", tmp_path / "out.wav"
    sf.write(path, audio, 16000, subtype="FLOAT")
    ganvoice(play, "--model", tiny_model, "--input", path, "--output", out)
    rendered, out_rate = sf.read(out, dtype="float32")
    assert out_rate == rate and len(rendered) == len(load_audio(path, rate))


def test_the_demo_render_has_the_demo_clip_s_length(tmp_path):
    """``ganvoice-play --demo --output x.wav`` (the bundled model): every sample of the clip, none lost."""
    out = tmp_path / "demo.wav"
    ganvoice(play, "--demo", "--output", out)
    rendered, rate = sf.read(out, dtype="float32")
    assert len(rendered) == len(load_audio(asset_path(DEMO_AUDIO), rate))


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
