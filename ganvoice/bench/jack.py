"""A private JACK dummy server (a paced audio device on a machine without a sound card), and CPU load.

PortAudio binds to a JACK server when it initialises, so :class:`JackServer` re-initialises PortAudio
(through sounddevice) after its server is up, and terminates PortAudio *before* stopping the server
(a PortAudio JACK client whose server vanished aborts the process).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

from ganvoice.errors import DeviceError

JACKD = "jackd"
JACK_WAIT = "jack_wait"
#: The PortAudio device name of a JACK server's playback ports.
JACK_DEVICE = "system"
SERVER_ENV = "JACK_DEFAULT_SERVER"
#: Seconds to wait for the server to answer, and for it to stop.
START_TIMEOUT_S = 10
STOP_TIMEOUT_S = 5
READY_POLL_S = 0.1
#: SCHED_FIFO priority of jackd when realtime scheduling is allowed.
REALTIME_PRIORITY = 70
BUSY_LOOP = "while True:\n    pass\n"


def jack_missing() -> str | None:
    """Why a JACK dummy server cannot be started here, or ``None``."""
    for tool in (JACKD, JACK_WAIT):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install jackd2)"
    return None


def _reinit_portaudio(sd) -> None:
    _terminate_portaudio(sd)
    sd._initialize()


def _terminate_portaudio(sd) -> None:
    while sd._initialized > 0:
        sd._terminate()


class JackServer:
    """``with JackServer(rate, period) as server:`` a ``jackd -d dummy`` under a unique name.

    Inside the block sounddevice sees it as the device :data:`JACK_DEVICE`, paced like hardware.
    ``realtime``: ``None`` tries realtime scheduling first and falls back to ``--no-realtime``;
    :attr:`realtime` then says which one runs.
    """

    def __init__(self, rate: int, period: int, realtime: bool | None = None, name: str | None = None):
        self.rate, self.period, self.realtime = int(rate), int(period), realtime
        self.name = name or f"ganvoice-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._process: subprocess.Popen | None = None
        self._log = None  # jackd's output (a file: a pipe nobody reads could fill up and stall it)
        self._saved_env: str | None = None

    def __enter__(self) -> JackServer:
        reason = jack_missing()
        if reason:
            raise DeviceError(f"this benchmark needs a JACK dummy server: {reason}")
        attempts = (True, False) if self.realtime is None else (self.realtime,)
        if not any(self._launch(realtime) for realtime in attempts):
            raise DeviceError(f"JACK dummy server {self.name!r} did not start: {self._last_log_line()}")
        try:
            self._saved_env = os.environ.get(SERVER_ENV)
            os.environ[SERVER_ENV] = self.name
            _reinit_portaudio(self._sounddevice())
        except BaseException:
            self._stop_process()
            raise
        return self

    def _launch(self, realtime: bool) -> bool:
        """Start jackd (``-R`` or ``--no-realtime``); True once it answers, else stopped again."""
        flags = ["-R", "-P", str(REALTIME_PRIORITY)] if realtime else ["--no-realtime"]
        command = [
            JACKD,
            "-n",
            self.name,
            *flags,
            "-d",
            "dummy",
            "-r",
            str(self.rate),
            "-p",
            str(self.period),
        ]
        if self._log is not None:
            self._log.close()
        self._log = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
        )
        if self._wait_ready():
            self.realtime = realtime
            return True
        self._stop_process(keep_log=True)
        return False

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        check = [JACK_WAIT, "-c", "-s", self.name]
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                answer = subprocess.run(check, capture_output=True, text=True, timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:  # no answer yet: not ready (the caller stops jackd)
                answer = None
            if answer is not None and answer.stdout.strip() == "running":
                return True
            time.sleep(READY_POLL_S)
        return False

    def _last_log_line(self) -> str:
        if self._log is None:
            return "no output"
        self._log.seek(0)
        return (self._log.read().strip().splitlines() or ["no output"])[-1]

    @staticmethod
    def _sounddevice():
        from ganvoice.realtime.player import import_sounddevice

        return import_sounddevice()

    def __exit__(self, *exc) -> None:
        sd = self._sounddevice()
        _terminate_portaudio(sd)
        self._stop_process()
        if self._saved_env is None:
            os.environ.pop(SERVER_ENV, None)
        else:
            os.environ[SERVER_ENV] = self._saved_env
        sd._initialize()

    def _stop_process(self, keep_log: bool = False) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._log is not None and not keep_log:
            self._log.close()
            self._log = None


class CpuLoad:
    """``with CpuLoad(n):`` ``n`` busy-looping processes, each pinned to one of the last ``n`` usable cores
    (on a 2-core machine, ``CpuLoad(1)`` keeps the other core busy). ``n = 0`` does nothing."""

    def __init__(self, processes: int):
        self.processes = max(0, int(processes))
        self._children: list[subprocess.Popen] = []

    def __enter__(self) -> CpuLoad:
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        try:
            for index in range(self.processes):
                child = subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL)
                self._children.append(child)
                if cores:
                    os.sched_setaffinity(child.pid, {cores[-1 - index % len(cores)]})
        except BaseException:  # stop the children already started
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for child in self._children:
            child.terminate()
        for child in self._children:
            try:
                child.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self._children.clear()


def settle(seconds: float) -> None:
    """Let a just-started server or load reach its steady state."""
    time.sleep(seconds)
