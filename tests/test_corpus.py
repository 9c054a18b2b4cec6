"""ganvoice corpus build: real files, real espeak-ng, real Debian speech packages, the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ganvoice.audio import audio_info, load_audio, save_audio
from ganvoice.corpus.build import CorpusConfig, TrimConfig, build_corpus, limit_peak, plan_clips, trim_silence
from ganvoice.corpus.errors import ManifestError, SourceError
from ganvoice.corpus.manifest import MANIFEST_NAME, read_manifest
from ganvoice.corpus.sources import (
    FILLETS_ROOT,
    KLETTRES_HELD_OUT,
    KLETTRES_ROOT,
    fillets_speaker,
    fillets_texts,
)
from ganvoice.corpus.split import assign_split, seeded_subset
from ganvoice.corpus.synth import load_sentences

RATE = 22050
KEYS = ["path", "seconds", "sample_rate", "source", "speaker", "split", "text"]
SENTENCES = ["Hello there.", "Is it raining?", "Seven, eight, nine!"]
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
needs_festival = pytest.mark.skipif(shutil.which("text2wave") is None, reason="festival is not installed")
needs_fillets = pytest.mark.skipif(
    not any(FILLETS_ROOT.glob("sound/*/cs/*.ogg")), reason="fillets-ng-data-cs is not installed"
)
needs_klettres = pytest.mark.skipif(
    not any(KLETTRES_ROOT.glob("*/*/*.ogg")), reason="klettres-data is not installed"
)


def speechlike(seconds: float, rate: int, seed: int, pause: float = 0.0) -> np.ndarray:
    """float32 ``[N]``: a decaying harmonic tone, optionally split by a silent pause in the middle."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    f0 = rng.uniform(100, 250)
    audio = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 0.2
    audio = audio + 0.005 * rng.standard_normal(len(t))
    if pause:
        half = len(audio) // 2
        audio = np.concatenate([audio[:half], np.zeros(round(pause * rate)), audio[half:]])
    return audio.astype(np.float32)


def make_folder(root: Path) -> Path:
    """A folder source: wav and flac at several rates, a stereo file, a nested folder, a transcript."""
    root.mkdir(parents=True)
    (root / "nested").mkdir()
    save_audio(root / "a.wav", speechlike(0.8, 16000, 0), 16000)
    save_audio(root / "b.flac", speechlike(0.6, 44100, 1), 44100)
    stereo = np.stack([speechlike(0.5, 22050, 2), speechlike(0.5, 22050, 3)], axis=1)
    save_audio(root / "nested" / "c.wav", stereo, 22050)
    (root / "nested" / "c.txt").write_text("  the nested\nclip  ", encoding="utf-8")
    (root / "notes.md").write_text("not audio", encoding="utf-8")
    return root


def config(out: Path, *sources: str, **kwargs) -> CorpusConfig:
    return CorpusConfig(out=out, sources=sources, progress=False, **kwargs)


def manifest_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST_NAME).read_text(encoding="utf-8").splitlines()]


def check_manifest(out: Path) -> list[dict]:
    """Every line has exactly the contract's keys; every clip exists as mono 16-bit wav at its rate."""
    lines = manifest_lines(out)
    assert lines
    for line in lines:
        assert list(line) == KEYS
        assert line["split"] in ("train", "val", "test")
        info = sf.info(str(out / line["path"]))
        assert (info.channels, info.subtype, info.samplerate) == (1, "PCM_16", line["sample_rate"])
        assert line["seconds"] == pytest.approx(info.frames / info.samplerate, abs=1e-5)
    assert len({line["path"] for line in lines}) == len(lines)
    return lines


def test_folder_source(tmp_path):
    src = make_folder(tmp_path / "my voice")
    out = tmp_path / "corpus"
    result = build_corpus(config(out, f"folder:{src}"))
    lines = check_manifest(out)
    assert [line["path"] for line in lines] == [
        "clips/folder-my_voice/a.wav",
        "clips/folder-my_voice/b.wav",
        "clips/folder-my_voice/nested/c.wav",
    ]
    assert {line["source"] for line in lines} == {"folder-my_voice"}
    assert all(line["sample_rate"] == RATE for line in lines)
    assert lines[2]["text"] == "the nested clip"
    assert lines[0]["text"] is None and lines[0]["speaker"] is None
    assert (result.converted, result.reused, result.dropped) == (3, 0, [])


def test_ljspeech_source(tmp_path):
    root = tmp_path / "LJ"
    (root / "wavs").mkdir(parents=True)
    rows = [("LJ001-0001", "Printing, in the only sense.", "Printing, in the only sense."),
            ("LJ001-0002", "In 1850 it was.", "In eighteen fifty it was.")]  # fmt: skip
    for index, (clip, _, _) in enumerate(rows):
        save_audio(root / "wavs" / f"{clip}.wav", speechlike(0.5, 22050, index), 22050)
    (root / "metadata.csv").write_text("\n".join("|".join(row) for row in rows) + "\n", encoding="utf-8")
    out = tmp_path / "corpus"
    build_corpus(config(out, f"ljspeech:{root}", sample_rate=16000))
    lines = check_manifest(out)
    assert [line["text"] for line in lines] == ["Printing, in the only sense.", "In eighteen fifty it was."]
    assert [line["path"] for line in lines] == [
        "clips/ljspeech-LJ/LJ001-0001.wav",
        "clips/ljspeech-LJ/LJ001-0002.wav",
    ]
    assert all(line["sample_rate"] == 16000 for line in lines)


def test_broken_and_silent_clips_are_dropped_not_fatal(tmp_path):
    src = make_folder(tmp_path / "src")
    (src / "corrupt.wav").write_bytes(b"RIFF garbage")
    save_audio(src / "silent.wav", np.zeros(8000, np.float32), 16000)
    out = tmp_path / "corpus"
    result = build_corpus(config(out, f"folder:{src}"))
    assert sorted(clip_id.split("/")[-1] for clip_id, _ in result.dropped) == ["corrupt", "silent"]
    assert len(check_manifest(out)) == 3


def test_trim_keeps_inner_pauses_and_a_margin():
    trim = TrimConfig()
    speech = speechlike(0.5, RATE, 0, pause=0.4)
    padded = np.concatenate([np.zeros(RATE), speech, 1e-5 * np.ones(3 * RATE, np.float32)])
    trimmed = trim_silence(padded, RATE, trim)
    margin = 2 * trim.keep_seconds
    assert len(speech) / RATE <= len(trimmed) / RATE <= len(speech) / RATE + margin + 0.02
    assert len(trim_silence(speech, RATE, trim)) == len(speech)  # nothing to cut: inner pause kept
    assert len(trim_silence(np.zeros(RATE, np.float32), RATE, trim)) == 0


def test_trim_cuts_a_noisy_tail_but_keeps_the_speech():
    rng = np.random.default_rng(0)
    speech = speechlike(0.6, RATE, 1, pause=0.3)
    floor = (0.003 * rng.standard_normal(4 * RATE)).astype(np.float32)  # about -45 dB below the speech
    noisy = np.concatenate([floor[:RATE], speech + floor[: len(speech)], floor[RATE:]])
    trimmed = trim_silence(noisy, RATE, TrimConfig())
    assert len(speech) <= len(trimmed) <= len(speech) + 2 * TrimConfig().keep_seconds * RATE + 0.05 * RATE


def test_limit_peak_scales_instead_of_clipping():
    audio = np.array([0.1, -1.2, 0.6], np.float32)
    limited = limit_peak(audio, 0.99)
    assert np.max(np.abs(limited)) == pytest.approx(0.99)
    np.testing.assert_allclose(limited / limited[0], audio / audio[0], rtol=1e-6)
    assert limit_peak(audio * 0.5, 0.99) is not None and np.array_equal(limit_peak(audio * 0.5), audio * 0.5)


@needs_espeak
def test_espeak_source(tmp_path):
    out = tmp_path / "corpus"
    build_corpus(config(out, "espeak:en-us,en-gb", max_synthetic=4), sentences=SENTENCES)
    lines = check_manifest(out)
    assert len(lines) == 4
    assert {line["source"] for line in lines} == {"espeak"}
    assert {line["text"] for line in lines} <= set(SENTENCES)
    assert all(line["speaker"].startswith(("espeak/en-us+", "espeak/en-gb+")) for line in lines)
    assert all(0.3 < line["seconds"] < 5 for line in lines)


@needs_flite
def test_flite_source(tmp_path):
    out = tmp_path / "corpus"
    build_corpus(config(out, "flite", max_synthetic=2), sentences=SENTENCES)
    lines = check_manifest(out)
    assert len(lines) == 2 and {line["source"] for line in lines} == {"flite"}
    assert all(line["speaker"].split("/")[1] in ("kal", "kal16", "awb", "rms", "slt") for line in lines)


@needs_festival
def test_festival_source(tmp_path):
    out = tmp_path / "corpus"
    build_corpus(config(out, "festival", max_synthetic=1), sentences=SENTENCES[:1])
    (line,) = check_manifest(out)
    assert line["source"] == "festival" and line["text"] == SENTENCES[0] and line["seconds"] > 0.3


def test_shipped_sentence_list():
    sentences = load_sentences()
    assert len(sentences) >= 300 and len(set(sentences)) == len(sentences)
    assert sum(s.endswith("?") for s in sentences) >= 30 and sum(s.endswith("!") for s in sentences) >= 30
    assert sum(any(word in s for word in ("hundred", "thousand", "seven")) for s in sentences) >= 20
    lengths = [len(s.split()) for s in sentences]
    assert min(lengths) <= 2 and max(lengths) >= 15


@needs_fillets
def test_debian_fillets_slice(tmp_path):
    out = tmp_path / "corpus"
    build_corpus(config(out, "fillets-cs", max_clips=3))
    lines = check_manifest(out)
    assert len(lines) == 3 and {line["source"] for line in lines} == {"fillets-cs"}
    assert not any("-x-" in line["path"] for line in lines)
    planned = plan_clips(config(out, "fillets-cs"), sentences=[])
    assert planned and not any("-x-" in clip.clip_id for clip in planned)
    assert sum(clip.text is not None for clip in planned) > 0.9 * len(planned)


def test_fillets_names_and_dialogs(tmp_path):
    assert [fillets_speaker(s) for s in ("let-m-divna", "agenti-m", "init-0-0", "help1")] == [
        "m",
        "m",
        None,
        None,
    ]
    script = tmp_path / "script" / "level"
    script.mkdir(parents=True)
    (script / "dialogs_cs.lua").write_text(
        'dialogId("lev-v-a", "font_big", "He said \\"hi\\" (twice).")\ndialogStr("Řekl \\"ahoj\\".")\n',
        encoding="utf-8",
    )
    assert fillets_texts(tmp_path, "cs") == {"lev-v-a": 'Řekl "ahoj".'}


@needs_klettres
def test_klettres_english_is_held_out(tmp_path):
    planned = plan_clips(config(tmp_path / "unused", "klettres"), sentences=[])
    for clip in planned:
        held_out = clip.clip_id.split("/")[1] in KLETTRES_HELD_OUT
        assert (clip.split == "test") == held_out, clip.clip_id
    assert sum(clip.split == "test" for clip in planned) >= 50
    # a real slice through the builder: two held-out clips and one French clip
    root = tmp_path / "klettres"
    for rel in ("en/alpha/A.ogg", "en_GB/alpha/b.ogg", "fr/alpha/a-0.ogg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(KLETTRES_ROOT / rel, root / rel)
    out = tmp_path / "corpus"
    build_corpus(config(out, f"klettres:{root}", val_fraction=0.5))
    splits = {line["path"]: line["split"] for line in check_manifest(out)}
    assert splits["clips/klettres/en/alpha/A.wav"] == splits["clips/klettres/en_GB/alpha/b.wav"] == "test"
    assert splits["clips/klettres/fr/alpha/a-0.wav"] in ("train", "val")
    # the long silent tail is gone
    assert (
        audio_info(out / "clips/klettres/en/alpha/A.wav").seconds
        < 0.8 * audio_info(root / "en/alpha/A.ogg").seconds
    )


def test_split_is_seeded_stable_and_by_clip():
    ids = [f"src/clip{i:04d}" for i in range(2000)]
    first = [assign_split(clip_id, 0, 0.05) for clip_id in ids]
    assert first == [assign_split(clip_id, 0, 0.05) for clip_id in ids]
    assert 0.03 < first.count("val") / len(ids) < 0.07
    assert first != [assign_split(clip_id, 1, 0.05) for clip_id in ids]
    assert assign_split("klettres/en/alpha/A", 0, 0.05, forced="test") == "test"
    assert seeded_subset(ids, 10, 0) == seeded_subset(list(reversed(ids)), 10, 0)
    assert len(seeded_subset(ids, 10, 0)) == 10 and seeded_subset(ids, None, 0) == set(ids)


def test_split_of_a_clip_ignores_the_rest_of_the_corpus(tmp_path):
    a = make_folder(tmp_path / "a")
    b = make_folder(tmp_path / "b")
    alone = tmp_path / "alone"
    both = tmp_path / "both"
    build_corpus(config(alone, f"folder:{a}", val_fraction=0.5))
    build_corpus(config(both, f"folder:{b}", f"folder:{a}", val_fraction=0.5))
    split_alone = {line["path"]: line["split"] for line in manifest_lines(alone)}
    split_both = {line["path"]: line["split"] for line in manifest_lines(both)}
    assert split_alone.items() <= split_both.items()


def test_rerun_is_idempotent(tmp_path):
    src = make_folder(tmp_path / "src")
    out = tmp_path / "corpus"
    build_corpus(config(out, f"folder:{src}"))
    manifest_before = (out / MANIFEST_NAME).read_bytes()
    clips = sorted(out.rglob("*.wav"))
    stamps = [path.stat().st_mtime_ns for path in clips]
    again = build_corpus(config(out, f"folder:{src}"))
    assert (again.converted, again.reused) == (0, 3)
    assert (out / MANIFEST_NAME).read_bytes() == manifest_before
    assert [path.stat().st_mtime_ns for path in sorted(out.rglob("*.wav"))] == stamps
    assert sorted(p.name for p in out.iterdir()) == ["clips", MANIFEST_NAME]  # no temp files left


def test_rerun_at_another_rate_reconverts(tmp_path):
    src = make_folder(tmp_path / "src")
    out = tmp_path / "corpus"
    build_corpus(config(out, f"folder:{src}"))
    again = build_corpus(config(out, f"folder:{src}", sample_rate=16000))
    assert again.converted == 3
    assert {line["sample_rate"] for line in check_manifest(out)} == {16000}
    np.testing.assert_equal(load_audio(out / "clips/folder-src/a.wav", 16000).ndim, 1)


def test_manifest_reader(tmp_path):
    src = make_folder(tmp_path / "src")
    out = tmp_path / "corpus"
    result = build_corpus(config(out, f"folder:{src}"))
    assert read_manifest(out) == result.entries
    with pytest.raises(ManifestError):
        read_manifest(tmp_path / "missing")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "x.wav"}\n', encoding="utf-8")
    with pytest.raises(ManifestError, match="bad.jsonl:1"):
        read_manifest(bad)


def test_unknown_and_missing_sources(tmp_path):
    with pytest.raises(SourceError, match="unknown corpus source"):
        plan_clips(config(tmp_path, "nosuch"), sentences=[])
    with pytest.raises(SourceError, match="apt-get install -y fillets-ng-data-nl"):
        plan_clips(config(tmp_path, f"fillets-nl:{tmp_path}"), sentences=[])
    with pytest.raises(SourceError, match="does not exist"):
        plan_clips(config(tmp_path, f"folder:{tmp_path / 'nope'}"), sentences=[])
    with pytest.raises(SourceError, match="no audio files"):
        plan_clips(config(tmp_path, f"folder:{tmp_path}"), sentences=[])


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ganvoice.cli", "corpus", "build", "--no-progress", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_cli_builds_and_prints_a_summary(tmp_path):
    src = make_folder(tmp_path / "src")
    done = run_cli("--out", str(tmp_path / "corpus"), "--source", f"folder:{src}", "--val-fraction", "0.4")
    assert done.returncode == 0, done.stderr
    assert "| source | split | clips | hours |" in done.stdout
    assert "| total |" in done.stdout
    assert len(check_manifest(tmp_path / "corpus")) == 3


def test_cli_missing_tool_is_one_line(tmp_path):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {**os.environ, "PATH": str(empty_bin)}
    out = tmp_path / "corpus"
    done = run_cli("--out", str(out), "--source", "espeak", env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "espeak-ng" in done.stderr and "apt-get install -y espeak-ng" in done.stderr
    assert not out.exists()


def test_cli_missing_debian_package_is_one_line(tmp_path):
    done = run_cli("--out", str(tmp_path / "corpus"), "--source", f"klettres:{tmp_path}")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "apt-get install -y klettres-data" in done.stderr
