"""Shared fixtures: small exported ONNX models, and real JACK dummy servers for device tests.

- ``onnx_model(variant, **overrides)``: exports a random-weight model once per session (cached by
  its arguments) into a temp folder and returns its path. ``tiny_model`` is the small ``fast`` one.
- ``jack_server`` / ``jack_server_48k`` / ``jack_server_p64``: a JACK server on the ``dummy``
  backend (a paced, real PortAudio device with no sound card), period 256 (64), with monitor ports
  (``system:monitor_N`` carry what reached ``system:playback_N``) and a ``loopback`` device (what
  is played into ``loopback:playback_N`` comes out of ``loopback:capture_N``). Each has a unique
  name; clients reach it through ``JACK_DEFAULT_SERVER`` (``server.env``). It runs with realtime
  scheduling when the machine allows it (fewer xruns on a busy machine), else without.
- ``jack_recorder``: records a JACK device's inputs in a separate process (``Recorder``).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganvoice.assets import DEMO_AUDIO, asset_path
from ganvoice.bench.jack import JackServer, jack_missing
from ganvoice.errors import DeviceError

JACK_PERIOD = 256
_names = itertools.count()


def pytest_configure(config):
    """A run started in the background (``make test &`` in a script, ``nohup``) inherits SIGINT ignored,
    and so would every player the tests start: the Ctrl-C tests then time out. Take SIGINT back, as a
    terminal run has it (Python's KeyboardInterrupt here; the default action in the children)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


TINY_FAST = {"dim": 32, "intermediate_dim": 64, "num_blocks": 2}


# -- exported models ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory):
    """``onnx_model(variant, seed=0, **overrides) -> Path``: a random-weight export, cached per session."""
    cache: dict[tuple, Path] = {}
    folder = tmp_path_factory.mktemp("onnx_models")

    def make(variant: str, seed: int = 0, **overrides) -> Path:
        key = (variant, seed, tuple(sorted(overrides.items())))
        if key not in cache:
            import torch

            from ganvoice.export.onnx_export import export_variant

            torch.set_num_threads(1)
            path = folder / f"{variant}-{len(cache)}.onnx"
            export_variant(variant, path, seed=seed, overrides=overrides or None)
            cache[key] = path
        return cache[key]

    return make


@pytest.fixture
def one_torch_thread():
    """Torch on one intra-op thread for the test (training tests: deterministic and fair to the rest)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model(onnx_model) -> Path:
    """A small random-weight ``fast`` model (22050 Hz, hop 256, 80 mels)."""
    return onnx_model("fast", **TINY_FAST)


@pytest.fixture(scope="session")
def demo_wav() -> Path:
    """The bundled demo sentence (espeak-ng, 22050 Hz mono, about 3 s)."""
    return asset_path(DEMO_AUDIO)


# -- JACK -------------------------------------------------------------------------------------------
def start_jack(rate: int, log_dir: Path, period: int = JACK_PERIOD) -> JackServer:
    """Start a JACK dummy server with a fresh name, monitor ports and a 2-port loopback device."""
    reason = jack_missing()
    if reason:
        pytest.skip(reason)
    server = JackServer(
        rate,
        period,
        name=f"ganvoice-test-{os.getpid()}-{next(_names)}",
        monitor=True,
        loopback=2,
        log_dir=log_dir,
    )
    try:
        return server.start()
    except DeviceError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory):
    """A JACK dummy server at 22050 Hz, period 256 (the tiny models' rate)."""
    server = start_jack(22050, tmp_path_factory.mktemp("jack"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def jack_server_p64(tmp_path_factory):
    """A JACK dummy server at 22050 Hz with a short period (64 samples, 2.9 ms)."""
    server = start_jack(22050, tmp_path_factory.mktemp("jack64"), period=64)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def jack_server_48k(tmp_path_factory):
    """A JACK dummy server at 48000 Hz, period 256 (the engine must resample)."""
    server = start_jack(48000, tmp_path_factory.mktemp("jack48k"))
    yield server
    server.stop()


_RECORDER = r"""
import signal, sys, threading
import numpy as np, sounddevice as sd
path, device, channels, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
rate = int(sd.query_devices(device, "input")["default_samplerate"])
recording, filled, stop = np.zeros((int(seconds * rate), channels), np.float32), [0], threading.Event()
signal.signal(signal.SIGTERM, lambda *args: stop.set())
def record(indata, frames, time, status):  # no allocation: a late recorder makes xruns for everyone
    start = filled[0]
    end = min(start + frames, len(recording))
    recording[start:end] = indata[: end - start]
    filled[0] = end
with sd.InputStream(device=device, channels=channels, dtype="float32", callback=record):
    print("ready", flush=True)
    stop.wait()
np.save(path, recording[: filled[0]])
"""
#: Longest recording a Recorder keeps (seconds).
RECORDER_SECONDS = 60


class Recorder:
    """Records ``channels`` inputs of a JACK device (a second client, in its own process).

    ``with Recorder(server, path):`` records from entry to exit; :meth:`load` -> float32 ``[N, channels]``.
    """

    def __init__(self, server: JackServer, path: Path, device: str = "system", channels: int = 4):
        self.server, self.path, self.device, self.channels = server, Path(path), device, channels
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Recorder:
        script = [_RECORDER, str(self.path), self.device, str(self.channels), str(RECORDER_SECONDS)]
        args = [sys.executable, "-c", *script]
        self.process = subprocess.Popen(args, env=self.server.env, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.process.kill()
            self.process.wait()
            self.process.stdout.close()
            raise RuntimeError(f"the JACK recorder did not start (said {line!r})")
        return self

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        finally:
            self.process.stdout.close()

    def load(self) -> np.ndarray:
        return np.load(self.path)


@pytest.fixture(scope="session")
def jack_recorder():
    """The :class:`Recorder` class: ``with jack_recorder(server, path, device, channels) as rec:``."""
    return Recorder
