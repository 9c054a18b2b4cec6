"""ganvoice.audio: real files through soundfile and soxr, every error case, atomic saves."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ganvoice.audio import audio_info, load_audio, save_audio
from ganvoice.errors import AudioError

RATE = 22050
PCM16_STEP = 1.0 / 32768


def tone(seconds: float, rate: int = RATE, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    """float32 ``[N]`` sine."""
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


def test_pcm16_round_trip(tmp_path):
    audio = tone(0.5)
    path = save_audio(tmp_path / "a.wav", audio, RATE)
    assert sf.info(str(path)).subtype == "PCM_16"
    back = load_audio(path, RATE)
    assert back.dtype == np.float32 and back.shape == audio.shape
    assert np.max(np.abs(back - audio)) <= PCM16_STEP


@pytest.mark.parametrize("name", ["a.wav", "a.flac"])
def test_float_and_flac_round_trip(tmp_path, name):
    rng = np.random.default_rng(0)
    audio = np.clip(0.2 * rng.standard_normal(4000), -0.9, 0.9).astype(np.float32)
    subtype = "FLOAT" if name.endswith(".wav") else "PCM_24"
    back = load_audio(save_audio(tmp_path / name, audio, RATE, subtype=subtype), RATE)
    assert np.max(np.abs(back - audio)) <= (0 if subtype == "FLOAT" else 2.0**-22)


def test_ogg_loads(tmp_path):
    path = save_audio(tmp_path / "a.ogg", tone(0.5, 44100), 44100, subtype="VORBIS")
    back = load_audio(path, RATE)
    assert abs(len(back) - RATE // 2) <= 1
    assert 0.3 < np.max(np.abs(back)) < 0.7


def test_stereo_is_mixed_down(tmp_path):
    left, right = tone(0.2, freq=300.0), tone(0.2, freq=500.0, amp=0.25)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1), RATE, subtype="FLOAT")
    assert audio_info(path).channels == 2
    np.testing.assert_allclose(load_audio(path, RATE), (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize(("source_rate", "target_rate"), [(44100, 22050), (16000, 22050), (8000, 24000)])
def test_resampling_length_and_pitch(tmp_path, source_rate, target_rate):
    seconds, freq = 1.0, 440.0
    path = save_audio(tmp_path / "a.wav", tone(seconds, source_rate, freq), source_rate, subtype="FLOAT")
    back = load_audio(path, target_rate)
    assert abs(len(back) - round(seconds * target_rate)) <= 1
    spectrum = np.abs(np.fft.rfft(back))
    peak_hz = np.argmax(spectrum) * target_rate / len(back)
    assert abs(peak_hz - freq) <= 2.0


def test_audio_info_reads_the_header(tmp_path):
    path = save_audio(tmp_path / "a.wav", np.zeros((11025, 2), np.float32), RATE)
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.frames) == (RATE, 2, 11025)
    assert info.seconds == pytest.approx(0.5)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError) as excinfo:
        load_audio(tmp_path / "nope.wav", RATE)
    assert "no such audio file" in one_line_error(excinfo)
    with pytest.raises(AudioError):
        audio_info(tmp_path / "nope.wav")


def test_folder_is_not_audio(tmp_path):
    with pytest.raises(AudioError) as excinfo:
        load_audio(tmp_path, RATE)
    assert "folder" in one_line_error(excinfo)


def test_empty_file_zero_bytes(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError) as excinfo:
        load_audio(path, RATE)
    assert "empty" in one_line_error(excinfo)


def test_wav_with_zero_samples(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(str(path), np.zeros(0, np.float32), RATE)
    assert path.stat().st_size > 0
    with pytest.raises(AudioError) as excinfo:
        load_audio(path, RATE)
    assert "0 samples" in one_line_error(excinfo)


def test_corrupt_bytes(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError) as excinfo:
        load_audio(path, RATE)
    assert "not a readable audio file" in one_line_error(excinfo)
    with pytest.raises(AudioError):
        audio_info(path)


def test_truncated_header(tmp_path):
    good = save_audio(tmp_path / "good.wav", tone(0.1), RATE)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(good.read_bytes()[:20])
    with pytest.raises(AudioError):
        load_audio(bad, RATE)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_non_finite_content(tmp_path, bad_value):
    audio = tone(0.1)
    audio[100] = bad_value
    path = tmp_path / "nan.wav"
    sf.write(str(path), audio, RATE, subtype="FLOAT")
    with pytest.raises(AudioError) as excinfo:
        load_audio(path, RATE)
    assert "NaN or infinite" in one_line_error(excinfo)


def test_save_into_missing_folder(tmp_path):
    target = tmp_path / "no" / "such" / "folder" / "a.wav"
    with pytest.raises(AudioError) as excinfo:
        save_audio(target, tone(0.1), RATE)
    assert "does not exist" in one_line_error(excinfo)
    assert not (tmp_path / "no").exists()


def test_save_refuses_bad_audio_and_leaves_nothing(tmp_path):
    audio = tone(0.1)
    audio[5] = np.nan
    for bad in (audio, np.zeros(0, np.float32), np.zeros((2, 3, 4), np.float32)):
        with pytest.raises(AudioError):
            save_audio(tmp_path / "a.wav", bad, RATE)
    with pytest.raises(AudioError):
        save_audio(tmp_path / "a.mp4", tone(0.1), RATE)
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic_and_replaces(tmp_path):
    path = tmp_path / "a.wav"
    save_audio(path, tone(0.3), RATE)
    save_audio(path, tone(0.1), RATE)
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]  # no temp file left behind
    assert audio_info(path).frames == round(0.1 * RATE)


def test_pcm16_clips_instead_of_wrapping(tmp_path):
    loud = np.full(1000, 1.5, np.float32)
    loud[500:] = -1.5
    back = load_audio(save_audio(tmp_path / "loud.wav", loud, RATE), RATE)
    assert back[:500].min() > 0.99 and back[500:].max() < -0.99


def test_audio_and_corpus_import_no_torch():
    code = "import sys, ganvoice.audio, ganvoice.corpus.cli; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
