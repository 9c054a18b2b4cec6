"""``ganvoice eval`` and the metrics behind it."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ganvoice.assets import bundled_model_path
from ganvoice.audio import save_audio
from ganvoice.cli import cli
from ganvoice.mel import MelAnalyzer, MelSpec
from ganvoice.metrics import griffin_lim, mel_l1, mrstft_distance, pesq_wb, stoi

DEFAULT = bundled_model_path()
HELD_OUT = Path("/usr/share/klettres/en/alpha")


def harmonic(seconds=1.0, sr=22050, f0=150.0):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))).astype(np.float32)


def test_metrics_rank_a_degraded_signal_below_the_clean_one():
    spec = MelSpec()
    clean = harmonic()
    noisy = clean + 0.05 * np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32)
    assert mel_l1(clean, clean, spec) == 0.0 and mrstft_distance(clean, clean) < 1e-6
    assert mel_l1(clean, noisy, spec) > 0.1 and mrstft_distance(clean, noisy) > 0.1
    assert pesq_wb(clean, clean, 22050) > pesq_wb(clean, noisy, 22050)
    assert stoi(clean, clean, 22050) > 0.99


def test_griffin_lim_inverts_a_mel_roughly():
    spec = MelSpec()
    audio = harmonic(0.5)
    mel = MelAnalyzer(spec)(audio)
    rebuilt = griffin_lim(mel, spec)
    assert rebuilt.shape == (mel.shape[1] * spec.hop_length,)
    assert mel_l1(audio[: len(rebuilt)], rebuilt, spec) < 0.5


def test_eval_cli_reports_streaming_offline_and_griffin_lim(tmp_path):
    clips = sorted(HELD_OUT.glob("*.ogg"))[:2]
    if not clips:
        pytest.skip("klettres-data is not installed (make system-deps installs it)")
    data = tmp_path / "clips"
    data.mkdir()
    for clip in clips:
        shutil.copy(clip, data / clip.name)
    out = tmp_path / "eval.json"
    args = ["eval", "--model", str(DEFAULT), "--data", str(data), "--max-seconds", "1.5", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "| griffin_lim |" in result.output and "| streaming |" in result.output
    report = json.loads(out.read_text())
    assert "| recordings |" in result.output  # DNSMOS of the recordings themselves, next to the systems
    systems = {"streaming", "offline", "griffin_lim"}
    assert report["clips"] == 2 and set(report["means"]) == systems | {"recordings"}
    for system in systems:
        assert set(report["means"][system]) == {"pesq_wb", "stoi", "mel_l1", "mrstft", "dnsmos"}
    assert set(report["means"]["recordings"]) == {"dnsmos"}
    assert all(1.0 <= report["means"][s]["dnsmos"] <= 5.0 for s in systems | {"recordings"})
    streaming, offline = report["means"]["streaming"], report["means"]["offline"]
    assert abs(streaming["mel_l1"] - offline["mel_l1"]) < 1e-3  # streaming is exact


def test_eval_rejects_a_noise_model_and_an_empty_folder(tmp_path):
    save_audio(tmp_path / "a.wav", harmonic(0.5), 22050)
    noise = bundled_model_path(noise=True)
    result = CliRunner().invoke(cli, ["eval", "--model", str(noise), "--data", str(tmp_path)])
    assert result.exit_code != 0 and "mel-conditioned" in str(result.exception)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["eval", "--model", str(DEFAULT), "--data", str(empty)])
    assert result.exit_code != 0 and "no evaluation clips" in str(result.exception)
