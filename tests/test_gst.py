"""The GStreamer elements ``ganvoice`` and ``ganvoicesrc`` in real pipelines (gst-launch-1.0, gst-python).

The elements run inside GStreamer's Python plugin loader (Debian's ``gstreamer1.0-python3-plugin-loader``,
which embeds the system Python 3.11) with the environment ``ganvoice gst-env`` prints. Tests that need
the GStreamer API itself (a seek, the LATENCY query) run a script under the interpreter that has ``gi``:
Debian's ``/usr/bin/python3`` with ``python3-gi`` (:data:`GI_PYTHON`), in a subprocess with that same
environment. References come from the venv: the bundled model's offline render of the same input.
Every output goes to ``tmp_path``; GStreamer's registry cache too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import soxr

from ganvoice.mel import MelAnalyzer, pad_to_whole_hops
from ganvoice.onnxgraph import OnnxGenerator
from ganvoice.realtime import Engine, NoiseSource
from ganvoice.realtime.blockstep import BlockStep
from ganvoice.realtime.gst_env import environment
from ganvoice.realtime.resynth import Resynthesizer

pytestmark = pytest.mark.gst

#: The interpreter with GStreamer's introspection bindings (python3-gi, python3-gst-1.0).
GI_PYTHON = "/usr/bin/python3"
RATE = 22050
TOLERANCE = 1e-4
LOADER = "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstpython.so"


def _gi_available() -> bool:
    if not os.path.exists(GI_PYTHON):
        return False
    probe = "import gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst"
    return subprocess.run([GI_PYTHON, "-c", probe], capture_output=True).returncode == 0


if shutil.which("gst-launch-1.0") is None or not os.path.exists(LOADER) or not _gi_available():
    pytest.skip(
        "GStreamer with the Python plugin loader is not installed (apt-get install "
        "gstreamer1.0-python3-plugin-loader python3-gst-1.0 gstreamer1.0-tools gstreamer1.0-plugins-good)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def gst_env(tmp_path_factory) -> dict[str, str]:
    """The environment ``ganvoice gst-env`` prints, with a registry cache in a temp folder."""
    registry = tmp_path_factory.mktemp("gst") / "registry.bin"
    return {**os.environ, **environment(), "GST_REGISTRY": str(registry)}


@pytest.fixture(scope="module")
def speech(demo_wav) -> np.ndarray:
    audio, rate = sf.read(demo_wav, dtype="float32")
    assert rate == RATE
    return audio


@pytest.fixture(scope="module")
def bundled_model() -> str:
    """The elements' default model (the bundled, trained one)."""
    import ganvoice

    return os.path.join(os.path.dirname(ganvoice.__file__), "assets", "default.onnx")


def launch(env: dict, pipeline: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``gst-launch-1.0 -q PIPELINE`` (split on spaces; paths must not contain any)."""
    return subprocess.run(
        ["gst-launch-1.0", "-q", *pipeline.split()], env=env, capture_output=True, text=True, timeout=timeout
    )


def offline(model: str, audio: np.ndarray) -> np.ndarray:
    """The model's offline render of ``audio`` (all frames in one call), aligned with the input and as long:
    the last partial hop completed with silence, as a file's render does (``ganvoice play --output``)."""
    generator = OnnxGenerator(model)
    mel = MelAnalyzer(generator.metadata.mel)(pad_to_whole_hops(audio, generator.metadata.hop_length))
    return generator.offline(mel[None])[0][: len(audio)]


def assert_is_the_offline_render(out: np.ndarray, audio: np.ndarray, model: str) -> None:
    """As long as the input, and the model's offline render of it."""
    reference = offline(model, audio)
    assert len(out) == len(reference) == len(audio), (len(out), len(audio))
    assert np.abs(out - reference).max() <= TOLERANCE
    assert np.abs(reference).max() > 0.05  # not a comparison of silences


def test_gst_env_makes_gst_inspect_list_both_elements(tmp_path):
    """The README's one step: eval "$(ganvoice gst-env)", then GStreamer knows the elements."""
    script = (
        f'eval "$({sys.executable} -m ganvoice.cli gst-env)" && '
        "gst-inspect-1.0 ganvoice && echo @@SPLIT@@ && gst-inspect-1.0 ganvoicesrc"
    )
    env = {**os.environ, "GST_REGISTRY": str(tmp_path / "registry.bin")}
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    filter_info, source_info = result.stdout.split("@@SPLIT@@")
    for prop in ("model", "provider", "threads"):
        assert f"  {prop} " in filter_info and f"  {prop} " in source_info, prop
    assert "default.onnx" in filter_info and "Filter/Effect/Audio" in filter_info
    assert "  seed " in source_info and "noise.onnx" in source_info and "num-buffers" in source_info
    assert "Traceback" not in result.stderr


def test_file_to_file_is_the_offline_render_and_keeps_its_length(
    gst_env, speech, demo_wav, bundled_model, tmp_path
):
    out_path = tmp_path / "out.wav"
    result = launch(
        gst_env,
        f"filesrc location={demo_wav} ! decodebin ! audioconvert ! audioresample ! ganvoice "
        f"! wavenc ! filesink location={out_path}",
    )
    assert result.returncode == 0, result.stderr
    out, rate = sf.read(out_path, dtype="float32")
    assert rate == RATE
    assert_is_the_offline_render(out, speech, bundled_model)


def test_a_48k_file_is_resampled_upstream_and_rendered(gst_env, speech, bundled_model, tmp_path):
    """Reference: the model's offline render of the same audioresample'd input."""
    source = tmp_path / "speech48k.wav"
    sf.write(source, soxr.resample(speech, RATE, 48000), 48000, subtype="FLOAT")
    resampled, out_path = tmp_path / "resampled.wav", tmp_path / "out.wav"
    head = f"filesrc location={source} ! decodebin ! audioconvert ! audioresample"
    caps = f"audio/x-raw,format=F32LE,channels=1,rate={RATE}"
    assert launch(gst_env, f"{head} ! {caps} ! wavenc ! filesink location={resampled}").returncode == 0
    result = launch(gst_env, f"{head} ! ganvoice ! wavenc ! filesink location={out_path}")
    assert result.returncode == 0, result.stderr
    audio, _ = sf.read(resampled, dtype="float32")
    out, rate = sf.read(out_path, dtype="float32")
    assert rate == RATE
    assert abs(len(audio) - round(len(speech))) <= 2  # 48 kHz and back: the same length
    assert_is_the_offline_render(out, audio, bundled_model)


SEEK_SCRIPT = r"""
import json, sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
source, out, seek_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
pipeline = Gst.parse_launch(
    f"filesrc location={source} ! decodebin ! audioconvert ! audioresample ! ganvoice "
    "! appsink name=sink sync=false max-buffers=4"
)
sink = pipeline.get_by_name("sink")
assert pipeline.set_state(Gst.State.PLAYING) != Gst.StateChangeReturn.FAILURE
before = 0
while True:  # play past the seek point first: the element then has state to forget
    sample = sink.emit("pull-sample")
    buffer = sample.get_buffer()
    before += buffer.get_size() // 4
    if buffer.pts >= (seek_s + 0.5) * Gst.SECOND:
        break
flags = Gst.SeekFlags.FLUSH | Gst.SeekFlags.ACCURATE
assert pipeline.seek_simple(Gst.Format.TIME, flags, int(seek_s * Gst.SECOND))
first_pts, data = None, bytearray()
while True:
    sample = sink.emit("pull-sample")
    if sample is None:
        break
    buffer = sample.get_buffer()
    if first_pts is None:
        first_pts = buffer.pts
    data += buffer.extract_dup(0, buffer.get_size())
pipeline.set_state(Gst.State.NULL)
open(out, "wb").write(bytes(data))
print(json.dumps({"first_pts": first_pts, "before": before}))
"""


def test_a_seek_resets_the_stream(gst_env, speech, demo_wav, bundled_model, tmp_path):
    """After a flushing seek the output is a fresh render of the rest of the file: no state carried over."""
    out_path = tmp_path / "after.f32"
    command = [GI_PYTHON, "-c", SEEK_SCRIPT, str(demo_wav), str(out_path), "1.0"]
    result = subprocess.run(command, env=gst_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.strip().splitlines()[-1])
    start = round(info["first_pts"] * RATE / 1e9)
    assert abs(start - RATE) <= 1 and info["before"] > 1.5 * RATE
    after = np.fromfile(out_path, dtype="<f4")
    assert_is_the_offline_render(after, speech[start:], bundled_model)


DISCONT_SCRIPT = r"""
import sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
source, cut, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(source, "rb").read()
pipeline = Gst.parse_launch(
    "appsrc name=src format=time caps=audio/x-raw,format=F32LE,channels=1,rate=22050,layout=interleaved "
    "! ganvoice ! appsink name=sink sync=false"
)
src, sink = pipeline.get_by_name("src"), pipeline.get_by_name("sink")
pipeline.set_state(Gst.State.PLAYING)
chunk, position = 4096, 0
while position < len(data) // 4:
    end = min(position + chunk, len(data) // 4)
    if position < cut < end:
        end = cut  # a buffer boundary at the cut
    buffer = Gst.Buffer.new_wrapped(data[4 * position : 4 * end])
    buffer.pts = Gst.util_uint64_scale_int(position, Gst.SECOND, 22050)
    buffer.duration = Gst.util_uint64_scale_int(end - position, Gst.SECOND, 22050)
    if position == cut:
        buffer.set_flags(Gst.BufferFlags.DISCONT)  # e.g. packets lost: a new stream starts here
    assert src.emit("push-buffer", buffer) == Gst.FlowReturn.OK
    position = end
src.emit("end-of-stream")
result = bytearray()
while (sample := sink.emit("pull-sample")) is not None:
    buffer = sample.get_buffer()
    result += buffer.extract_dup(0, buffer.get_size())
pipeline.set_state(Gst.State.NULL)
open(out, "wb").write(bytes(result))
"""


def test_a_discontinuity_ends_one_stream_and_starts_the_next(gst_env, speech, bundled_model, tmp_path):
    """A DISCONT buffer: the first part's tail is pushed, then the rest is rendered from a fresh state."""
    source, out_path = tmp_path / "in.f32", tmp_path / "out.f32"
    speech.astype("<f4").tofile(source)
    cut = 30000  # not on a hop boundary: the first stream's last partial hop is completed with silence
    command = [GI_PYTHON, "-c", DISCONT_SCRIPT, str(source), str(cut), str(out_path)]
    result = subprocess.run(command, env=gst_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = np.fromfile(out_path, dtype="<f4")
    assert len(out) == len(speech)
    assert_is_the_offline_render(out[:cut], speech[:cut], bundled_model)
    assert_is_the_offline_render(out[cut:], speech[cut:], bundled_model)


LATENCY_SCRIPT = r"""
import json
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
pipeline = Gst.parse_launch(
    "audiotestsrc is-live=true samplesperbuffer=256 ! audio/x-raw,rate=22050 ! audioconvert ! audioresample "
    "! ganvoice name=vocoder ! fakesink sync=true"
)
pipeline.set_state(Gst.State.PLAYING)
assert pipeline.get_state(10 * Gst.SECOND)[0] == Gst.StateChangeReturn.SUCCESS
vocoder = pipeline.get_by_name("vocoder")
def latency(pad):
    query = Gst.Query.new_latency()
    assert pad.query(query)
    return query.parse_latency()
live, upstream, _ = latency(vocoder.get_static_pad("sink").get_peer())
_, through, _ = latency(vocoder.get_static_pad("src"))
query = Gst.Query.new_latency()
pipeline.query(query)
pipeline.set_state(Gst.State.NULL)
total = query.parse_latency()[1]
print(json.dumps({"live": live, "upstream": upstream, "through": through, "pipeline": total}))
"""


def test_the_latency_query_reports_lookahead_hop_and_model_delay(gst_env, bundled_model):
    result = subprocess.run(
        [GI_PYTHON, "-c", LATENCY_SCRIPT], env=gst_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.strip().splitlines()[-1])
    engine = Engine(bundled_model, "cpu")
    resynth = Resynthesizer(engine)
    meta = engine.metadata
    expected = meta.delay_samples + resynth.source.lookahead_samples + meta.hop_length
    assert resynth.latency_samples == expected
    ours = info["through"] - info["upstream"]
    assert info["live"] and abs(ours - expected * 1e9 / RATE) <= 1, info
    assert info["pipeline"] >= info["through"]  # the pipeline's latency includes ours


def test_ganvoicesrc_length_and_same_seed_same_audio(gst_env, tmp_path):
    paths = {}
    for run, seed in (("a", 5), ("b", 5), ("c", 6)):
        paths[run] = tmp_path / f"{run}.wav"
        result = launch(
            gst_env,
            f"ganvoicesrc num-buffers=8 samplesperbuffer=1000 seed={seed} "
            f"! wavenc ! filesink location={paths[run]}",
        )
        assert result.returncode == 0, result.stderr
    a, rate = sf.read(paths["a"], dtype="float32")
    b, _ = sf.read(paths["b"], dtype="float32")
    c, _ = sf.read(paths["c"], dtype="float32")
    assert rate == RATE and len(a) == len(b) == len(c) == 8000
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # the same audio as the engine plays for `ganvoice play --noise --seed 5`, block by block
    import ganvoice

    engine = Engine(os.path.join(os.path.dirname(ganvoice.__file__), "assets", "noise.onnx"), "cpu")
    engine.prepare(engine.model_rate, 1000)
    engine.set_source(NoiseSource(engine.channels, seed=5))
    step, block = BlockStep(engine, 1000), np.zeros(1000, np.float32)
    expected = []
    for _ in range(8):
        step.play(block)
        expected.append(block.copy())
    assert np.abs(a - np.concatenate(expected)).max() <= 1e-6
    assert np.abs(a).max() > 0.01


@pytest.fixture
def foreign_onnx(bundled_model, tmp_path):
    from model_files import with_metadata

    return with_metadata(bundled_model, tmp_path / "foreign.onnx", None)


@pytest.mark.parametrize(
    "case, pipeline, message",
    [
        (
            "missing model",
            "audiotestsrc num-buffers=4 ! audioconvert ! audioresample ! ganvoice model=/no/such/model.onnx "
            "! fakesink",
            "no/such/model.onnx",
        ),
        (
            "non-ganvoice ONNX",
            "audiotestsrc num-buffers=4 ! audioconvert ! audioresample ! ganvoice model={foreign} ! fakesink",
            "foreign.onnx",
        ),
        (
            "noise model in the filter",
            "audiotestsrc num-buffers=4 ! audioconvert ! audioresample ! ganvoice model={noise} ! fakesink",
            "noise model",
        ),
        ("mel model in the source", "ganvoicesrc num-buffers=4 model={default} ! fakesink", "mel model"),
    ],
)
def test_a_bad_model_stops_gst_launch_with_one_clear_error(
    gst_env, foreign_onnx, bundled_model, case, pipeline, message
):
    noise = os.path.join(os.path.dirname(bundled_model), "noise.onnx")
    result = launch(gst_env, pipeline.format(foreign=foreign_onnx, noise=noise, default=bundled_model))
    assert result.returncode != 0, case
    assert_one_clear_error(result.stdout + result.stderr, message)


def assert_one_clear_error(output: str, message: str) -> None:
    errors = [line for line in output.splitlines() if line.startswith("ERROR: from element")]
    assert len(errors) == 1, output
    assert "ganvoice" in errors[0] and message in errors[0], errors[0]
    assert "Traceback" not in output


ERROR_SCRIPT = r"""
import sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
pipeline = Gst.parse_launch(sys.argv[1])
pipeline.set_state(Gst.State.PLAYING)
bus = pipeline.get_bus()
errors = []
while True:
    message = bus.timed_pop_filtered(10 * Gst.SECOND, Gst.MessageType.ERROR | Gst.MessageType.EOS)
    if message is None or message.type == Gst.MessageType.EOS:
        break
    error, _ = message.parse_error()
    print(f"ERROR: from element {message.src.get_path_string()}: {error.message}")
    errors.append(error)
    if bus.peek() is None:
        break
pipeline.set_state(Gst.State.NULL)
sys.exit(1 if errors else 0)
"""


def test_wrong_caps_stop_the_pipeline_with_one_clear_error(gst_env):
    """A 48 kHz input with no audioresample in between: one error from ganvoice that says what to do.

    (Run through the GStreamer API: gst-launch-1.0 1.22 quits its main loop from a bus sync handler and
    can hang when any element posts an error from a streaming thread before that loop has started.)
    """
    pipeline = (
        "audiotestsrc num-buffers=4 ! audio/x-raw,format=F32LE,channels=1,rate=48000 ! ganvoice ! fakesink"
    )
    result = subprocess.run(
        [GI_PYTHON, "-c", ERROR_SCRIPT, pipeline], env=gst_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert_one_clear_error(result.stdout + result.stderr, "48000 Hz")
    assert "audioresample" in result.stdout
