"""SegmentDataset, augmentation and the step sampler, on a small synthetic corpus written to tmp_path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from synthetic_corpus import write_corpus
from torch.utils.data import DataLoader

from ganvoice.corpus.manifest import read_manifest
from ganvoice.data import (
    AugmentConfig,
    SegmentDataset,
    StepSampler,
    augment,
    collate,
    lowpass,
)
from ganvoice.errors import GanvoiceError
from ganvoice.mel import MelAnalyzer, MelSpec

SEGMENT = 2048


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def test_manifest_paths_are_resolved_against_its_folder(manifest):
    entries = read_manifest(manifest.parent, lenient=True, resolve=True)
    assert len(entries) == 5
    assert all(e.path.is_file() and e.path.is_absolute() for e in entries)
    assert {e.split for e in entries} == {"train", "val"}


def test_item_shapes(manifest):
    spec = MelSpec()
    dataset = SegmentDataset(manifest, "train", segment_samples=SEGMENT, spec=spec, seed=3)
    item = dataset[0]
    assert item["audio"].dtype == np.float32 and item["audio"].shape == (SEGMENT,)
    assert item["mel"].dtype == np.float32 and item["mel"].shape == (spec.n_mels, SEGMENT // spec.hop_length)
    no_mel = SegmentDataset(manifest, segment_samples=SEGMENT, with_mel=False)[0]
    assert set(no_mel) == {"audio"}


def test_interior_segment_mel_equals_whole_clip_frames(manifest):
    spec = MelSpec()
    dataset = SegmentDataset(manifest, "train", segment_samples=SEGMENT, spec=spec)
    clip, _ = sf.read(str(dataset.clips[1].entry.path), dtype="float64")
    whole = MelAnalyzer(spec)(clip)
    offset = 8 * spec.hop_length
    window = dataset._read_window(dataset.clips[1], offset)
    mel = dataset._mel_of_window(window)
    np.testing.assert_allclose(mel, whole[:, 8 : 8 + SEGMENT // spec.hop_length], atol=1e-5)
    # at the clip's start the window is reflect-padded like the whole-clip analysis
    start_mel = dataset._mel_of_window(dataset._read_window(dataset.clips[1], 0))
    np.testing.assert_allclose(start_mel, whole[:, : SEGMENT // spec.hop_length], atol=1e-5)


def test_segments_are_deterministic_per_seed_epoch_index(manifest):
    a = SegmentDataset(manifest, segment_samples=SEGMENT, seed=1)
    b = SegmentDataset(manifest, segment_samples=SEGMENT, seed=1)
    np.testing.assert_array_equal(a[0]["audio"], b[0]["audio"])
    np.testing.assert_array_equal(a[(5, 2)]["mel"], b[(5, 2)]["mel"])
    b.set_epoch(1)
    assert not np.array_equal(a[0]["audio"], b[0]["audio"])
    c = SegmentDataset(manifest, segment_samples=SEGMENT, seed=2)
    assert not np.array_equal(a[0]["audio"], c[0]["audio"])


def test_workers_give_the_same_batches(manifest):
    dataset = SegmentDataset(manifest, segment_samples=SEGMENT, seed=4, augment=AugmentConfig())
    sampler = StepSampler(dataset.clip_weights(), batch_size=3, seed=4, stop_step=3)
    single = list(DataLoader(dataset, batch_sampler=sampler, collate_fn=collate))
    multi = list(DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=2))
    assert len(single) == len(multi) == 3
    for x, y in zip(single, multi):
        assert x["audio"].shape == (3, SEGMENT)
        np.testing.assert_array_equal(x["audio"].numpy(), y["audio"].numpy())
        np.testing.assert_array_equal(x["mel"].numpy(), y["mel"].numpy())


def test_step_sampler_is_a_function_of_the_step():
    weights = np.full(10, 0.1)
    full = list(StepSampler(weights, 4, seed=7, stop_step=6))
    resumed = list(StepSampler(weights, 4, seed=7, start_step=3, stop_step=6))
    assert full[3:] == resumed
    rank0 = StepSampler(weights, 4, seed=7, rank=0, world_size=2).batch(0)
    rank1 = StepSampler(weights, 4, seed=7, rank=1, world_size=2).batch(0)
    assert {draw for draw, _ in rank0}.isdisjoint({draw for draw, _ in rank1})


def test_short_clips_are_skipped(tmp_path):
    manifest = write_corpus(
        tmp_path, [("sine", 1.0, "train", "a"), ("sine", 0.05, "train", "a"), ("chirp", 0.05, "val", "a")]
    )
    dataset = SegmentDataset(manifest, segment_samples=SEGMENT)
    assert len(dataset) == 1 and dataset.skipped == 1
    with pytest.raises(GanvoiceError, match="shorter than one segment"):
        SegmentDataset(manifest, "val", segment_samples=SEGMENT)


@pytest.mark.parametrize(
    "content, message",
    [("", "is empty"), ("{not json}\n", "bad manifest line"), ('{"path": "x.wav"}\n', "bad manifest line")],
)
def test_bad_manifests_are_one_line_errors(tmp_path, content, message):
    (tmp_path / "manifest.jsonl").write_text(content)
    with pytest.raises(GanvoiceError, match=message) as info:
        SegmentDataset(tmp_path / "manifest.jsonl")
    assert "\n" not in str(info.value)


def test_missing_split_and_wrong_rate_are_errors(tmp_path):
    manifest = write_corpus(tmp_path, [("sine", 1.0, "train", "a")], sample_rate=16000)
    with pytest.raises(GanvoiceError, match="16000 Hz"):
        SegmentDataset(manifest, segment_samples=SEGMENT)
    with pytest.raises(GanvoiceError, match="no clips in split 'val'"):
        SegmentDataset(manifest, "val", segment_samples=SEGMENT, spec=MelSpec(sample_rate=16000))
    with pytest.raises(GanvoiceError, match="multiple of hop_length"):
        SegmentDataset(manifest, segment_samples=1000)


def test_source_weights_set_each_sources_share(tmp_path):
    clips = [("sine", 1.0, "train", "big")] * 4 + [("noise", 0.5, "train", "small")]
    manifest = write_corpus(tmp_path, clips)
    dataset = SegmentDataset(manifest, segment_samples=SEGMENT)
    by_duration = dataset.clip_weights()
    assert by_duration[-1] == pytest.approx(0.5 / 4.5, rel=1e-3)
    equal = dataset.clip_weights({"big": 1.0, "small": 1.0})
    assert equal[-1] == pytest.approx(0.5) and equal[:4].sum() == pytest.approx(0.5)
    assert dataset.clip_weights({"small": 3.0})[-1] == pytest.approx(0.75)


def test_augmentations_do_what_they_say():
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.5, 0.5, 8192)
    silent = augment(audio, AugmentConfig(0, gain_prob=0, noise_prob=0, silence_prob=1), rng, 22050)
    assert np.sum(silent == 0.0) > 0 and np.max(np.abs(silent)) <= 1.0
    quiet = augment(
        audio, AugmentConfig(0, gain_prob=1, gain_db=(-20, -20), noise_prob=0, silence_prob=0), rng, 1
    )
    np.testing.assert_allclose(quiet, audio * 0.1, rtol=1e-9)
    filtered = lowpass(audio, 22050, 3000.0, 300.0)
    spectrum = np.abs(np.fft.rfft(filtered))
    freqs = np.fft.rfftfreq(len(audio), 1 / 22050)
    assert spectrum[freqs > 3200].max() < 1e-9 * spectrum.max() + 1e-9
    config = AugmentConfig.from_dict({"gain_db": [-6, 0]})
    assert config.gain_db == (-6, 0)
    with pytest.raises(GanvoiceError, match="unknown augment keys: bogus"):
        AugmentConfig.from_dict({"bogus": 1})


def test_manifest_relative_paths(tmp_path):
    manifest = write_corpus(tmp_path / "c", [("sine", 1.0, "train", "a")])
    row = json.loads(manifest.read_text().splitlines()[0])
    assert not row["path"].startswith("/")
