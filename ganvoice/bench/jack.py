"""A private JACK dummy server (a paced audio device on a machine without a sound card), and CPU load.

The one JACK server helper: the benchmarks use it as a context manager (which also points this
process's PortAudio at it), the test suite's fixtures start and stop it and hand ``server.env`` to
client processes.

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
from pathlib import Path

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


#: What jackd's timed (dummy) driver logs when a cycle of its own began late.
DRIVER_LATE = "JackTimedDriver::Process XRun"


class JackServer:
    """A ``jackd -d dummy`` under a unique name: ``with JackServer(rate, period) as server:``, or
    :meth:`start` / :meth:`stop` for a server that only other processes use (through :attr:`env`).

    Inside the ``with`` block sounddevice sees it as the device :data:`JACK_DEVICE`, paced like
    hardware. ``realtime``: ``None`` tries realtime scheduling first and falls back to
    ``--no-realtime``; :attr:`realtime` then says which one runs. ``monitor``: ``system:monitor_N``
    ports carry what reached ``system:playback_N``; ``loopback``: that many ``loopback`` ports (what is
    played into ``loopback:playback_N`` comes out of ``loopback:capture_N``). ``log_dir``: keep jackd's
    output there (else in a temporary file).
    """

    def __init__(
        self,
        rate: int,
        period: int,
        realtime: bool | None = None,
        name: str | None = None,
        *,
        monitor: bool = False,
        loopback: int = 0,
        log_dir: str | os.PathLike | None = None,
    ):
        self.rate, self.period, self.realtime = int(rate), int(period), realtime
        self.name = name or f"ganvoice-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.monitor, self.loopback = monitor, int(loopback)
        self.log_dir = None if log_dir is None else Path(log_dir)
        self._process: subprocess.Popen | None = None
        self._log = None  # jackd's output (a file: a pipe nobody reads could fill up and stall it)
        self._saved_env: str | None = None

    @property
    def env(self) -> dict[str, str]:
        """The environment for a client process of this server."""
        return {**os.environ, SERVER_ENV: self.name}

    def start(self) -> JackServer:
        """Start jackd and wait until clients can connect (:class:`DeviceError` if it cannot)."""
        reason = jack_missing()
        if reason:
            raise DeviceError(f"this needs a JACK dummy server: {reason}")
        attempts = (True, False) if self.realtime is None else (self.realtime,)
        if not any(self._launch(realtime) for realtime in attempts):
            where = f" (logs in {self.log_dir})" if self.log_dir else ""
            raise DeviceError(
                f"JACK dummy server {self.name!r} did not start: {self._last_log_line()}{where}"
            )
        return self

    def stop(self) -> None:
        """Stop jackd (safe to call twice)."""
        self._stop_process()

    def __enter__(self) -> JackServer:
        self.start()
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
        loopback = ["-L", str(self.loopback)] if self.loopback else []
        driver = [
            "-d",
            "dummy",
            "-r",
            str(self.rate),
            "-p",
            str(self.period),
            *(["-m"] if self.monitor else []),
        ]
        command = [JACKD, "-n", self.name, *flags, *loopback, *driver]
        if self._log is not None:
            self._log.close()
        if self.log_dir is None:
            self._log = tempfile.TemporaryFile(mode="w+")
        else:
            self._log = open(self.log_dir / f"{self.name}-{'rt' if realtime else 'nort'}.log", "w+")  # noqa: SIM115
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

    def driver_stalls(self) -> int:
        """How often so far jackd's driver began a cycle late (it logs :data:`DRIVER_LATE`): the machine kept
        the server off the CPU (e.g. a virtual CPU stolen by the hypervisor), or a client held a cycle."""
        if self._log is None:
            return 0
        self._log.seek(0)
        return self._log.read().count(DRIVER_LATE)

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
