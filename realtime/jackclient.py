"""``ganvoice jack``: a JACK client that resynthesises its input port through a model, live.

A named client with an audio input port ``in`` and an output port ``out``. Audio arriving at ``in``
goes the player's ``--mic`` way: the process callback copies it into :class:`MicSource` (a lock-free
ring); a :class:`Prefetcher` thread runs the streaming mel analysis; the callback runs the model through
the player's block step (:class:`~ganvoice.realtime.blockstep.BlockStep`) into ``out``. Nothing here is
a second streaming implementation.

Fixed latency: output starts when a fixed number of input samples has arrived (not when a thread
happens to be ready), so output sample ``j`` is always the model's resynthesis of input sample
``j - latency_samples``: the analysis lookahead and the hop being assembled, ``cushion`` periods that the
analysis thread has to finish a period's frames, and the model's delay. The client reports it as its
port latency (JACK's latency API: ``jack_lsp -l`` shows it on ``out`` as capture latency and on ``in`` as
playback latency), so a DAW compensates. At a JACK rate other than the model's, the input and the output
are resampled (soxr) and the reported latency leaves out the input resampler's few samples.

The process callback allocates no arrays (the port buffers are numpy views JACK hands out each period),
takes no lock, prints nothing and never waits; a period whose frames are not ready is played as silence
and counted (``starved_blocks``); one that outlasts the period is counted (``late_blocks``, and
``overrun_blocks`` if the thread's own compute did); JACK's xruns are ``device_underflows``. The
counters are printed on exit, like ``ganvoice-play --stats``.
Before the client activates, every object made so far is frozen out of the garbage collector
(:class:`~ganvoice.realtime.player.QuietInterpreter`): a full collection, which Python may start in
whichever thread allocates, the process callback included, then has only the few new objects to look at
instead of stalling a period for ~0.1 s.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from ganvoice.errors import DeviceError, GanvoiceError
from ganvoice.realtime.blockstep import BlockStep
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.model import PROVIDERS
from ganvoice.realtime.player import (
    LIVE_CUSHION_BLOCKS,
    POLL_FRACTION,
    PREFETCH_BLOCKS,
    QuietInterpreter,
)
from ganvoice.realtime.sources import MicSource, Prefetcher, Source
from ganvoice.realtime.stats import markdown_table

#: Periods the analysis thread has to turn a period of input into frames before the callback needs them
#: (as many as the player's live cushion: one period was starved now and then on a busy 2-core machine).
DEFAULT_CUSHION = LIVE_CUSHION_BLOCKS
#: How often the main thread looks at the client (seconds).
WAIT_POLL_S = 0.05
#: Periods after a connection change before the port latencies are recomputed (JACK swaps graphs at a
#: cycle boundary; a latency callback run before that sees the old connections).
LATENCY_SETTLE_PERIODS = 4

LATENCY_CDEF = """
typedef uint32_t jack_nframes_t;
typedef struct _jack_port jack_port_t;
typedef struct _jack_client jack_client_t;
typedef struct { jack_nframes_t min; jack_nframes_t max; } jack_latency_range_t;
typedef enum { JackCaptureLatency, JackPlaybackLatency } jack_latency_callback_mode_t;
typedef void (*JackLatencyCallback)(jack_latency_callback_mode_t mode, void *arg);
int jack_set_latency_callback(jack_client_t *client, JackLatencyCallback latency_callback, void *arg);
void jack_port_get_latency_range(jack_port_t *port, jack_latency_callback_mode_t mode,
                                 jack_latency_range_t *range);
void jack_port_set_latency_range(jack_port_t *port, jack_latency_callback_mode_t mode,
                                 jack_latency_range_t *range);
int jack_recompute_total_latencies(jack_client_t *client);
"""


def import_jack():
    """The ``jack`` module (JACK-Client), or a one-line error naming what is missing."""
    try:
        import jack
    except ImportError as exc:
        raise GanvoiceError(
            "'ganvoice jack' needs the JACK-Client package: pip install 'ganvoice[jack]'"
        ) from exc
    except OSError as exc:  # JACK-Client is there, libjack is not
        raise DeviceError(f"the JACK library is not installed ({exc}); apt-get install jackd2") from exc
    return jack


class PortLatency:
    """Reports ``samples`` of latency between a client's ``inport`` and ``outport`` (JACK's latency API).

    JACK-Client does not wrap ``jack_set_latency_callback``; this declares the four functions with cffi
    (JACK-Client's own dependency) and answers JACK's latency callback: ``out``'s capture latency is that
    of the ports feeding ``in`` plus ``samples``; ``in``'s playback latency is that of the ports ``out``
    feeds plus ``samples``. Register before :meth:`jack.Client.activate`.
    """

    def __init__(self, jack, client, inport, outport, samples: int):
        import cffi

        self.ffi = ffi = cffi.FFI()
        ffi.cdef(LATENCY_CDEF)
        self.lib = ffi.dlopen(jack._libname)
        self.samples = int(samples)
        self._jack, self._inport, self._outport = jack, inport, outport
        self._client = self._cast("jack_client_t *", client._ptr)
        self._callback = ffi.callback("void(jack_latency_callback_mode_t, void *)", self._on_latency)
        if self.lib.jack_set_latency_callback(self._client, self._callback, ffi.NULL) != 0:
            raise DeviceError("JACK refused the latency callback")

    def _cast(self, ctype: str, pointer):
        return self.ffi.cast(ctype, int(self._jack._ffi.cast("uintptr_t", pointer)))

    def _on_latency(self, mode, _arg) -> None:  # JACK's notification thread, not the process thread
        """Capture: ``out`` = ports feeding ``in`` + ours; playback: ``in`` = ports ``out`` feeds + ours."""
        lib = self.lib
        capture = mode == lib.JackCaptureLatency
        ours, theirs = (self._inport, self._outport) if capture else (self._outport, self._inport)
        span = self.ffi.new("jack_latency_range_t *")
        least, most = 0, 0
        for index, port in enumerate(ours.connections):
            lib.jack_port_get_latency_range(self._cast("jack_port_t *", port._ptr), mode, span)
            least = span.min if index == 0 else min(least, span.min)
            most = max(most, span.max)
        span.min, span.max = least + self.samples, most + self.samples
        lib.jack_port_set_latency_range(self._cast("jack_port_t *", theirs._ptr), mode, span)

    def update(self) -> None:
        """After connections changed: set both ranges from the current graph, then let JACK propagate.

        (JACK runs the latency callback when a connection is made, but may do so before the client sees
        the new graph; so the main thread sets the ranges again once the change has settled.)
        """
        self._on_latency(self.lib.JackCaptureLatency, None)
        self._on_latency(self.lib.JackPlaybackLatency, None)
        self.lib.jack_recompute_total_latencies(self._client)


def lowest_realtime_priority() -> bool:
    """Put the calling thread at the lowest realtime priority (``SCHED_FIFO``); False where not allowed.

    With a realtime JACK server the process callback runs at a realtime priority, but it needs Python's
    GIL, which our other threads (analysis, JACK notifications, the main loop) take in between. A
    normal-priority thread that the kernel preempts while it holds the GIL makes the callback wait: ~0.1 s
    stalls were seen on two busy cores. At the lowest realtime priority those threads are preempted only
    by realtime threads (JACK's own among them); they sleep or wait most of the time.
    """
    import os

    try:
        policy = os.SCHED_FIFO
        os.sched_setscheduler(0, policy, os.sched_param(os.sched_get_priority_min(policy)))
    except (AttributeError, OSError):
        return False
    return True


def normal_priority() -> None:
    """Back to normal scheduling (``SCHED_OTHER``) for the calling thread."""
    import os

    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass


class RealtimeThreadSource(Source):
    """``source``, whose first ``read`` puts the thread it runs in (the analysis thread) at the lowest
    realtime priority (see :func:`lowest_realtime_priority`)."""

    def __init__(self, source: Source):
        self.source = source
        self.channels, self.live = source.channels, source.live
        self.realtime_safe = source.realtime_safe
        self.raised: bool | None = None  # None: not tried yet

    def read(self, out):
        if self.raised is None:
            self.raised = lowest_realtime_priority()
        return self.source.read(out)

    def available(self):
        return self.source.available()

    @property
    def finished(self) -> bool:
        return self.source.finished

    def reset(self) -> None:
        self.source.reset()


@dataclass(frozen=True)
class JackConfig:
    """``name``: the client's name (JACK adds a suffix if it is taken); ``server``: the JACK server
    (``None``: ``$JACK_DEFAULT_SERVER`` or the default); ``connect_in``/``connect_out``: port name
    patterns (JACK regular expressions) connected to ``in`` / from ``out``; ``cushion``: see
    :data:`DEFAULT_CUSHION`; ``duration``: seconds (``None``: until stopped)."""

    name: str = "ganvoice"
    server: str | None = None
    connect_in: tuple[str, ...] = field(default_factory=tuple)
    connect_out: tuple[str, ...] = field(default_factory=tuple)
    cushion: int = DEFAULT_CUSHION
    duration: float | None = None

    def check(self) -> None:
        if not self.name:
            raise GanvoiceError("the JACK client needs a name")
        if self.cushion < 0:
            raise GanvoiceError(f"cushion must be 0 periods or more, not {self.cushion}")
        if self.duration is not None and self.duration <= 0:
            raise GanvoiceError(f"duration must be more than 0 seconds, not {self.duration}")


class JackResynth:
    """The JACK client. ``start()``, ``wait()``, ``stop()``, ``summary()``; see the module docstring."""

    def __init__(self, engine: Engine, config: JackConfig | None = None):
        meta = engine.metadata
        if meta.conditioning != "mel" or meta.mel is None:
            raise GanvoiceError(f"{engine.model_path} is a {meta.conditioning} model: it takes no audio")
        self.engine, self.config = engine, config or JackConfig()
        self.config.check()
        self.stats = engine.stats
        self.client = None
        self._prefetcher: Prefetcher | None = None
        self._error: BaseException | None = None
        self._ended = False
        self._latency_due: float | None = None
        self._quiet = QuietInterpreter()
        self._main_raised = False
        self._notify_raised = False

    # -- setup ---------------------------------------------------------------------------------------
    def _open_client(self):
        jack = import_jack()
        cfg = self.config
        try:
            client = jack.Client(cfg.name, servername=cfg.server, no_start_server=True)
        except jack.JackOpenError as exc:
            raise DeviceError(
                f"no JACK server to connect to ({exc}); start one (jackd, qjackctl) or pick it with --server"
            ) from exc
        return jack, client

    def _plan(self, rate: int, period: int, realtime: bool = False) -> None:
        """Size everything for the server's rate and period; fix the gate and the latency."""
        engine, meta = self.engine, self.engine.metadata
        engine.compensate_delay = False  # the warm-up plays: the latency is fixed and reported
        engine.prepare(rate, period)
        self.mic = MicSource(meta.mel)
        self.mic.prepare(rate)
        self.rate, self.period = rate, period
        self._block_s = period / rate
        frames_per_block = max(1, math.ceil(period / engine.hop_out))
        capacity = PREFETCH_BLOCKS * max(frames_per_block, engine.max_frames)
        self._realtime = realtime
        self._analysis = analysis = RealtimeThreadSource(self.mic) if realtime else self.mic
        self._prefetcher = Prefetcher(analysis, capacity, frames_per_block, POLL_FRACTION * self._block_s)
        engine.set_source(self._prefetcher)
        self.step = BlockStep(engine, period)
        # Output of a period needs frames up to its end; frame f needs input up to (f+1)*hop + lookahead.
        # With the gate at `gate` input samples, the frames a period needs lie in input that arrived at
        # least `cushion` periods earlier: the analysis thread has that long.
        hop, lookahead = meta.hop_length, self.mic.lookahead_samples
        overshoot = hop - math.gcd(period, hop) if rate == meta.sample_rate else hop
        need = math.ceil((overshoot + lookahead) * rate / meta.sample_rate)
        self.gate_samples = (1 + self.config.cushion + math.ceil(need / period)) * period
        engine.buffer_samples = self.gate_samples

    @property
    def latency_samples(self) -> int:
        """Input-to-output latency at the JACK rate (the ports report it)."""
        return self.engine.latency_samples

    def start(self) -> None:
        """Open the client, register ports and callbacks, activate, connect (on failure: stop, raise)."""
        jack, client = self._open_client()
        self.client, self.client_name, self._jack = client, client.name, jack
        try:
            self._plan(client.samplerate, client.blocksize, client.realtime)
            self._in = client.inports.register("in")
            self._out = client.outports.register("out")
            self._latency = PortLatency(jack, client, self._in, self._out, self.latency_samples)
            client.set_process_callback(self._process)
            client.set_xrun_callback(self._xrun)
            client.set_shutdown_callback(self._shutdown)
            client.set_port_connect_callback(self._connections_changed, only_available=False)
            self.engine.prime(self.period)
            self.stats.reset()
            self._received, self._started, self._remaining = 0, False, math.inf
            if self.config.duration is not None:
                self._remaining = round(self.config.duration * self.rate)
            self._main_raised = client.realtime and lowest_realtime_priority()
            self._prefetcher.start()
            # Everything allocated so far (the model, numpy, the libraries) goes out of the collector's
            # reach: a full collection then cannot stall the process callback for ~100 ms.
            self._quiet.enter()
            client.activate()
            self._connect(client)
        except BaseException:
            self.stop()
            raise

    def _connect(self, client) -> None:
        for pattern in self.config.connect_in:
            ports = client.get_ports(pattern, is_audio=True, is_output=True)
            if not ports:
                raise DeviceError(
                    f"--connect-in {pattern!r}: no JACK output port matches (jack_lsp lists them)"
                )
            for port in ports:
                client.connect(port, self._in)
        for pattern in self.config.connect_out:
            ports = client.get_ports(pattern, is_audio=True, is_input=True)
            if not ports:
                raise DeviceError(
                    f"--connect-out {pattern!r}: no JACK input port matches (jack_lsp lists them)"
                )
            for port in ports:
                client.connect(self._out, port)

    # -- callbacks -----------------------------------------------------------------------------------
    def _process(self, frames: int) -> None:
        """JACK's process thread: no allocation, no lock, no I/O, no waiting."""
        start, start_cpu = time.perf_counter(), time.thread_time()
        stats = self.stats
        try:
            stats.blocks += 1
            out = self._out.get_array()
            if frames != self.period:  # the server changed its period: the buffers no longer fit
                out.fill(0.0)
                raise DeviceError(f"JACK's period changed from {self.period} to {frames}; restart the client")
            self.mic.write(self._in.get_array())
            if not self._started and self._received >= self.gate_samples:
                self._started = True
            self._received += frames
            if self._started:
                got, _ = self.step.play(out)
                if got < frames:
                    stats.starved += 1
            else:
                out.fill(0.0)
            self._remaining -= frames
            if self._remaining <= 0:
                self._ended = True
            stats.record_callback(start, start_cpu, self._block_s)
        except Exception as exc:  # noqa: BLE001 -- raised by wait() in the main thread
            self._error, self._ended = exc, True
            raise self._jack.CallbackExit from exc

    def _notification_thread(self) -> None:
        if self._realtime and not self._notify_raised:
            self._notify_raised = True
            lowest_realtime_priority()

    def _xrun(self, delayed_usecs: float) -> None:  # notification thread
        self._notification_thread()
        self.stats.device_underflows += 1

    def _connections_changed(self, a, b, connect: bool) -> None:  # notification thread
        self._notification_thread()
        # JACK swaps in a new graph at a cycle boundary: wait() recomputes the latencies a little later
        self._latency_due = time.monotonic() + LATENCY_SETTLE_PERIODS * self._block_s

    def _shutdown(self, status, reason: str) -> None:  # the server went away
        self._error = DeviceError(f"the JACK server shut down ({reason})")
        self._ended = True

    # -- control -------------------------------------------------------------------------------------
    def _failure(self) -> BaseException | None:
        if self._error is not None:
            return self._error
        return self._prefetcher.error if self._prefetcher is not None else None

    def wait(self, timeout: float | None = None) -> bool:
        """Until ``duration`` has played (True) or ``timeout`` passes (False); raises thread errors."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ended:
            if self._latency_due is not None and time.monotonic() >= self._latency_due:
                self._latency_due = None
                self._latency.update()
            error = self._failure()
            if error is not None:
                raise error
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(WAIT_POLL_S)
        error = self._failure()
        if error is not None:
            raise error
        return True

    def stop(self) -> None:
        """Deactivate and close the client, stop the analysis thread (safe to call twice)."""
        if self.client is not None:
            self.client.deactivate()
            self.client.close()
            self.client = None
        if self._prefetcher is not None:
            self._prefetcher.stop()
        if self._main_raised:
            normal_priority()
            self._main_raised = False
        self._quiet.leave()

    def summary(self) -> dict:
        """The player's counters plus latency, client and settings."""
        engine = self.engine
        return {
            **self.stats.summary(),
            "latency_samples": self.latency_samples,
            "latency_ms": round(1000.0 * self.latency_samples / self.rate, 3),
            "provider": engine.provider,
            "client": self.client_name,
            "blocksize": self.period,
            "sample_rate": self.rate,
            "model_sample_rate": engine.model_rate,
            "model": engine.model_path,
            "variant": engine.metadata.variant,
            "input_peak": round(self.mic.peak, 4),
            "analysis_thread": "realtime" if getattr(self._analysis, "raised", False) else "normal",
        }


def _write_json(path: Path, summary: dict) -> None:
    from ganvoice.fileio import FILE_FOLDER_MISSING, atomic_write_json

    atomic_write_json(path, summary, sort_keys=True, missing_folder=FILE_FOLDER_MISSING)


@click.command("jack")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="Exported model (.onnx).")
@click.option("--name", default="ganvoice", show_default=True, help="JACK client name.")
@click.option("--server", default=None, help="JACK server name (default: $JACK_DEFAULT_SERVER or 'default').")
@click.option("--connect-in", multiple=True, help="Connect output ports matching this pattern to our input.")
@click.option("--connect-out", multiple=True, help="Connect our output to input ports matching this pattern.")
@click.option("--provider", type=click.Choice(PROVIDERS), default="auto", show_default=True)
@click.option("--threads", type=int, default=None, help="ONNX Runtime threads (default 1).")
@click.option(
    "--cushion",
    type=int,
    default=DEFAULT_CUSHION,
    show_default=True,
    help="Periods the analysis thread gets (more: fewer dropouts on a busy machine, more latency).",
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--stats-json", type=click.Path(dir_okay=False), default=None, help="Write the stats here.")
def jack_command(
    model_path, name, server, connect_in, connect_out, provider, threads, cushion, duration, stats_json
) -> None:
    """Run a model as a JACK client: audio at 'in' is resynthesised to 'out' (Ctrl-C stops)."""
    from ganvoice.assets import bundled_model

    if stats_json and not Path(stats_json).parent.is_dir():
        raise GanvoiceError(f"--stats-json {stats_json}: folder {Path(stats_json).parent} does not exist")
    config = JackConfig(name, server, tuple(connect_in), tuple(connect_out), cushion, duration)
    config.check()
    engine = Engine(Path(model_path) if model_path else bundled_model(False), provider, threads)
    if engine.provider_note and provider == "auto":
        click.echo(f"note: {engine.provider_note}; running on the CPU", err=True)
    client = JackResynth(engine, config)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client.start()
    try:
        click.echo(
            f"running JACK client {client.client_name!r}: {engine.metadata.variant} on {engine.provider} at "
            f"{client.rate} Hz, period {client.period}, latency {client.latency_samples} samples "
            f"({1000.0 * client.latency_samples / client.rate:.1f} ms) (Ctrl-C stops)",
            err=True,
        )
        while not stop.is_set() and not client.wait(timeout=WAIT_POLL_S):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        client.stop()
        signal.signal(signal.SIGTERM, previous)
    summary = client.summary()
    click.echo(markdown_table(summary), err=True)
    if stats_json:
        _write_json(Path(stats_json), summary)
