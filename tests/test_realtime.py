"""The realtime engine without a device: parity with the offline render, sources, ring, errors, no torch."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import soxr
from model_files import with_metadata

from ganvoice.audio import STREAM_RESAMPLE_QUALITY
from ganvoice.errors import DeviceError, GanvoiceError, ModelFormatError, SpecMismatchError
from ganvoice.mel import MelAnalyzer, pad_to_whole_hops
from ganvoice.onnxgraph import OnnxGenerator
from ganvoice.realtime import Engine, FileSource, MelSource, NoiseSource, PushSource
from ganvoice.realtime.model import cuda_session
from ganvoice.realtime.player import GIL_SWITCH_INTERVAL_S, QuietInterpreter
from ganvoice.realtime.ring import Ring
from ganvoice.realtime.sources import load_mel
from ganvoice.realtime.stats import Stats

TOLERANCE = 1e-4  # max abs difference from the offline render (float32 graph, different call splits)
RATE = 22050


@pytest.fixture(scope="module")
def speech(tmp_path_factory, demo_wav):
    """A short speech-like file (the demo sentence, first 1.5 s) and its audio."""
    audio, rate = sf.read(demo_wav, dtype="float32")
    audio = audio[: int(1.5 * rate)]
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    sf.write(path, audio, rate, subtype="FLOAT")
    return path, audio


@pytest.fixture(scope="module")
def reference(tiny_model, speech):
    """(mel [80, T], offline audio [T * hop], full streaming output) of the tiny model on the speech.

    The mel is the file source's: the speech completed to whole hops (its last frame covers the
    samples after the last whole hop)."""
    generator = OnnxGenerator(tiny_model)
    meta = generator.metadata
    mel = MelAnalyzer(meta.mel)(pad_to_whole_hops(speech[1], meta.hop_length))
    offline = generator.offline(mel[None])[0]
    padded = np.concatenate([mel, generator.flush_frames(1)[0]], axis=1)
    stream, _ = generator.stream(padded[None], generator.zero_state(1))
    return mel, offline, stream[0, : meta.delay_samples + offline.shape[0]]


def pull_all(engine: Engine, rng: np.random.Generator) -> np.ndarray:
    """Render until finished in random block sizes."""
    pieces = []
    while not engine.finished:
        pieces.append(engine.render(int(rng.integers(1, engine.max_block + 1))))
    return np.concatenate(pieces)


def test_importing_the_runtime_does_not_import_torch():
    code = (
        "import sys, ganvoice.realtime, ganvoice.realtime.cli, ganvoice.realtime.player;"
        "bad = [m for m in ('torch', 'onnx') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("compensate_delay", [False, True])
@pytest.mark.parametrize("kind", ["file", "mel"])
def test_pull_render_equals_offline(tiny_model, speech, reference, kind, compensate_delay):
    mel, offline, stream = reference
    engine = Engine(tiny_model, "cpu", max_block=300, compensate_delay=compensate_delay)
    engine.set_source(FileSource(speech[0], engine.metadata.mel) if kind == "file" else MelSource(mel))
    audio = pull_all(engine, np.random.default_rng(0))
    expected = offline if compensate_delay else stream
    assert audio.shape == expected.shape
    assert np.abs(audio - expected).max() <= TOLERANCE
    assert engine.render(10).shape == (0,)
    if not compensate_delay:  # the offline render starts exactly after the declared model delay
        delay = engine.metadata.delay_samples
        assert engine.output_delay == delay
        assert np.abs(audio[delay:] - offline).max() <= TOLERANCE


def test_reset_starts_a_new_identical_stream(tiny_model, reference):
    mel, offline, _ = reference
    engine = Engine(tiny_model, "cpu", compensate_delay=True)
    engine.set_source(MelSource(mel))
    first = engine.render(5000)
    engine.reset()
    assert np.array_equal(engine.render(5000), first)


def test_process_and_flush_equal_the_streaming_output(tiny_model, reference):
    mel, _, stream = reference
    engine = Engine(tiny_model, "cpu", max_block=512)
    rng = np.random.default_rng(1)
    pieces, start = [], 0
    while start < mel.shape[1]:
        size = int(rng.integers(1, 40))
        pieces.append(engine.process(mel[:, start : start + size]))
        start += size
    audio = np.concatenate(pieces + [engine.flush()])
    assert np.abs(audio[: len(stream)] - stream).max() <= TOLERANCE


def test_resampled_output_matches_soxr_of_the_offline_render(tiny_model, reference):
    mel, offline, _ = reference
    engine = Engine(tiny_model, "cpu", sample_rate=48000, max_block=256, compensate_delay=True)
    engine.set_source(MelSource(mel))
    audio = pull_all(engine, np.random.default_rng(2))
    expected = soxr.resample(offline, RATE, 48000, STREAM_RESAMPLE_QUALITY)
    assert abs(len(audio) - len(expected)) <= 1
    n = min(len(audio), len(expected))
    assert np.abs(audio[:n] - expected[:n]).max() <= TOLERANCE
    assert engine.latency_samples >= round(engine.metadata.delay_samples * 48000 / RATE)


def test_push_source_fed_by_another_thread(tiny_model, reference):
    mel, offline, _ = reference
    engine = Engine(tiny_model, "cpu", max_block=256, compensate_delay=True)
    source = PushSource(engine.channels, capacity=8)

    def produce():
        rng = np.random.default_rng(3)
        start = 0
        while start < mel.shape[1]:
            size = int(rng.integers(1, 12))
            source.push(mel[:, start : start + size])
            start += size
        source.close()

    engine.set_source(source)
    producer = threading.Thread(target=produce)
    producer.start()
    audio = pull_all(engine, np.random.default_rng(4))
    producer.join()
    assert np.abs(audio - offline).max() <= TOLERANCE


def test_fill_allocates_no_arrays_in_steady_state(tiny_model, reference):
    """The callback path (fill with a realtime-safe source) allocates nothing but small Python objects
    (array views, ints): any copy of a block of 2048 float32 samples would add 8 KiB."""
    mel, _, _ = reference
    engine = Engine(tiny_model, "cpu", max_block=2048)
    engine.set_source(MelSource(mel, loop=True))
    block = np.zeros(2048, dtype=np.float32)
    engine.fill(block)
    engine.fill(block)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(50):
            engine.fill(block)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < block.nbytes // 2
    assert current - base < block.nbytes // 2


def test_noise_source_is_seeded_smooth_and_bounded():
    first, second = np.zeros((16, 4000), np.float32), np.zeros((16, 4000), np.float32)
    NoiseSource(16, seed=7).read(first)
    NoiseSource(16, seed=7).read(second)
    assert np.array_equal(first, second)
    lag1 = np.mean([np.corrcoef(row[:-1], row[1:])[0, 1] for row in first])
    assert 0.8 < lag1 < 0.97
    assert 0.7 < first.std() < 1.3


def test_noise_model_renders_the_same_audio_for_the_same_seed(onnx_model):
    path = onnx_model("seed-mlp", hidden=32, clip_length=512)
    renders = []
    for _ in range(2):
        engine = Engine(path, "cpu")
        engine.set_source(NoiseSource(engine.channels, seed=3))
        renders.append(engine.render(4096))
    assert renders[0].shape == (4096,) and np.isfinite(renders[0]).all()
    assert np.array_equal(renders[0], renders[1])


def test_ring_wraps_around_and_serialises_producers():
    ring = Ring(2, 7)
    data = np.arange(2 * 40, dtype=np.float32).reshape(2, 40)
    out = np.zeros((2, 40), np.float32)
    got = 0
    for start in range(0, 40, 5):
        ring.push(data[:, start : start + 5])
        got += ring.read(out[:, got : got + 3])
        got += ring.read(out[:, got : got + 3])
    assert got == 40 and np.array_equal(out, data)
    many = Ring(1, 64)
    threads = [threading.Thread(target=lambda: [many.push(np.ones(3)) for _ in range(50)]) for _ in range(4)]
    total = np.zeros(1000, np.float32)
    for thread in threads:
        thread.start()
    count = 0
    while count < 600:
        count += many.read(total[count : count + 16])
    for thread in threads:
        thread.join()
    assert count == 600 and total[:600].sum() == 600


def test_bad_models_are_one_line_errors(tiny_model, tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all")
    foreign = with_metadata(tiny_model, tmp_path / "foreign.onnx", None)
    newer = with_metadata(tiny_model, tmp_path / "newer.onnx", lambda m: {**m, "format": 99})
    cases = {
        tmp_path / "missing.onnx": "no such model file",
        garbage: "not a loadable ONNX model",
        foreign: "without ganvoice metadata",
        newer: "newer than this ganvoice understands",
    }
    for path, words in cases.items():
        with pytest.raises(ModelFormatError, match=words) as error:
            Engine(path, "cpu")
        assert "\n" not in str(error.value)


def test_cuda_without_cuda_is_a_device_error(tiny_model):
    if cuda_session(tiny_model)[0] is not None:
        pytest.skip("CUDA works on this machine")
    with pytest.raises(DeviceError, match="CUDA is not available"):
        Engine(tiny_model, "cuda")
    assert Engine(tiny_model, "auto").provider == "cpu"


def test_mel_files_with_the_wrong_spec_are_refused(tiny_model, tmp_path, reference):
    mel = reference[0]
    meta = Engine(tiny_model, "cpu").metadata
    np.save(tmp_path / "good.npy", mel)
    assert load_mel(tmp_path / "good.npy", meta).shape == mel.shape
    np.save(tmp_path / "narrow.npy", mel[:64])
    with pytest.raises(SpecMismatchError, match="model takes"):
        load_mel(tmp_path / "narrow.npy", meta)
    other = json.dumps({**meta.mel.to_dict(), "fmax": 11025.0})
    np.savez(tmp_path / "other.npz", mel=mel, spec=other)
    with pytest.raises(SpecMismatchError, match="fmax"):
        load_mel(tmp_path / "other.npz", meta)


def test_source_and_model_must_agree(tiny_model):
    engine = Engine(tiny_model, "cpu")
    with pytest.raises(GanvoiceError, match="channels"):
        engine.set_source(NoiseSource(100))
    with pytest.raises(GanvoiceError, match="block size"):
        engine.prepare(RATE, 0)


def test_a_stream_freezes_the_collector_and_lowers_the_switch_interval_until_it_ends():
    """A full garbage collection started in the audio callback stalled blocks for tens of ms: while a
    stream runs, every object made before it is frozen out of the collector's reach."""
    switch, quiet = sys.getswitchinterval(), QuietInterpreter()
    garbage = [[i] for i in range(1000)]
    quiet.enter()
    quiet.enter()  # twice is once
    try:
        assert gc.get_freeze_count() >= len(garbage) and quiet.active
        assert sys.getswitchinterval() <= GIL_SWITCH_INTERVAL_S
    finally:
        quiet.leave()
        quiet.leave()
    assert gc.get_freeze_count() == 0 and sys.getswitchinterval() == switch and not quiet.active


def test_a_late_callback_is_an_overrun_only_when_its_thread_computed_that_long():
    """Wall time past the period makes a block late; the thread's own CPU time past it makes an overrun
    (a thread kept off the CPU -- here asleep, on a VM stolen or preempted -- is late, not an overrun)."""
    period_s, stats = 0.005, Stats()
    started, started_cpu = time.perf_counter(), time.thread_time()
    time.sleep(4 * period_s)  # off the CPU
    stats.record_callback(started, started_cpu, period_s)
    assert (stats.late_blocks, stats.overrun_blocks) == (1, 0)
    started, started_cpu = time.perf_counter(), time.thread_time()
    while time.thread_time() - started_cpu < 2 * period_s:  # on the CPU
        pass
    stats.record_callback(started, started_cpu, period_s)
    started, started_cpu = time.perf_counter(), time.thread_time()
    stats.record_callback(started, started_cpu, period_s)  # on time
    summary = stats.summary()
    assert (summary["blocks"], summary["late_blocks"], summary["overrun_blocks"]) == (0, 2, 1)
    assert len(stats.times_ms()) == 3
