"""The engine on a sound card (PortAudio through sounddevice), in one of two scheduling modes.

- ``callback``: the model runs inside the PortAudio callback (lowest latency). Sources whose ``read``
  is not realtime-safe (file or microphone analysis) run ahead in a :class:`Prefetcher` thread.
- ``buffered``: a worker thread renders into a preallocated ring; the callback only copies from it.
  ``prefill`` seconds are rendered before the stream starts (or, for live sources, gathered before
  sound begins), which absorbs a model that is slow for one block or jittery.
- ``low-latency``: ``buffered`` with a cushion of one model frame (rounded up to whole blocks) instead
  of 0.1 s: at blocks shorter than a frame no callback carries a frame's whole cost, for one frame of
  added latency.

The callbacks allocate no arrays, take no lock, print nothing and do no I/O (one exception: when the
device rate differs from the model's, soxr returns each resampled piece as a new small array; in
buffered mode that happens in the worker). A block with no audio ready is played as silence and
counted as an underflow; the stream goes on. Errors in a worker thread (or the callback) end the
stream and are raised by :meth:`Player.wait`. While a stream runs, Python's GIL switch interval is
lowered (see :data:`GIL_SWITCH_INTERVAL_S`) so that the callback thread gets the GIL quickly, and the
objects made before it are frozen out of the garbage collector (:class:`QuietInterpreter`).
"""

from __future__ import annotations

import gc
import math
import sys
import threading
import time
from dataclasses import dataclass

from ganvoice.errors import DeviceError, GanvoiceError, first_line
from ganvoice.realtime.blockstep import MODES, BlockStep
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.latency import LatencyBudget
from ganvoice.realtime.ring import Ring
from ganvoice.realtime.sources import MicSource, Prefetcher, Source

#: Default audio rendered ahead in buffered mode (seconds).
DEFAULT_PREFILL_S = 0.1
#: The player's scheduling modes: the block step's two and ``low-latency`` (buffered, one-frame cushion).
PLAYER_MODES = (*MODES, "low-latency")
#: Blocks of frames gathered from a live source before sound starts in callback mode.
LIVE_CUSHION_BLOCKS = 2
#: Output channels used when the device has more (a mono model goes to all of them).
MAX_OUTPUT_CHANNELS = 2
#: Extra blocks of room in the buffered ring beyond the prefill.
RING_SPARE_BLOCKS = 8
#: Blocks of frames (or model calls) a prefetcher keeps ready in callback mode.
PREFETCH_BLOCKS = 16
#: Worker threads sleep this fraction of a block when they have nothing to do.
POLL_FRACTION = 0.25
#: Python's GIL switch interval while a stream runs (seconds). The default (5 ms) can keep the audio
#: callback waiting for the GIL longer than a short block lasts while another thread runs Python.
GIL_SWITCH_INTERVAL_S = 0.0005
NO_DEVICE_HINT = "use --output FILE.wav to render to a file instead"


class QuietInterpreter:
    """What a stream needs from the Python interpreter while it runs (:meth:`enter` / :meth:`leave`, each
    safe to call twice): a short GIL switch interval, so that another thread's Python hands the audio
    callback the GIL quickly, and every object made so far frozen out of the garbage collector
    (``gc.freeze``). A full collection, which Python starts in whichever thread allocates (the audio
    callback included), then looks at the few new objects instead of stalling a block for tens of ms.
    """

    def __init__(self):
        self._switch_interval: float | None = None

    def enter(self) -> None:
        if self._switch_interval is not None:
            return
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, GIL_SWITCH_INTERVAL_S))
        gc.collect()
        gc.freeze()

    def leave(self) -> None:
        if self._switch_interval is None:
            return
        sys.setswitchinterval(self._switch_interval)
        self._switch_interval = None
        gc.unfreeze()

    @property
    def active(self) -> bool:
        return self._switch_interval is not None


def import_sounddevice():
    """sounddevice, or a :class:`DeviceError` when PortAudio itself is missing."""
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library is not installed
        raise DeviceError(f"no audio device: PortAudio is not available ({exc}); {NO_DEVICE_HINT}") from exc
    return sounddevice


def parse_device(device: int | str | None) -> int | str | None:
    """A device given on the command line: an index if it is a number, else a name (substring)."""
    if isinstance(device, str) and device.strip().isdigit():
        return int(device)
    return device.strip() if isinstance(device, str) else device


def split_devices(device: int | str | None) -> tuple[int | str | None, int | str | None]:
    """``"IN,OUT"`` -> (input, output); a single device serves both."""
    if isinstance(device, str) and "," in device:
        first, second = device.split(",", 1)
        return parse_device(first or None), parse_device(second or None)
    return parse_device(device), parse_device(device)


def list_devices() -> str:
    """PortAudio's device list, as text (:class:`DeviceError` when there is none: one line, exit 2)."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
    except sd.PortAudioError as exc:
        raise DeviceError(f"no audio device ({first_line(exc)}); {NO_DEVICE_HINT}") from exc
    if len(devices) == 0:
        raise DeviceError(f"no audio devices found; {NO_DEVICE_HINT}")
    return str(devices)


def resolve_device(sd, device: int | str | None, kind: str) -> dict:
    """The device info for ``device`` (``None``: the default) of ``kind`` "output" or "input"."""
    channels_key = f"max_{kind}_channels"
    try:
        devices = sd.query_devices()
    except sd.PortAudioError as exc:
        raise DeviceError(f"no audio device ({first_line(exc)}); {NO_DEVICE_HINT}") from exc
    if not any(d[channels_key] > 0 for d in devices):
        raise DeviceError(f"no audio {kind} device found; {NO_DEVICE_HINT}")
    try:
        info = sd.query_devices(device, kind)
    except (ValueError, sd.PortAudioError) as exc:
        if device is None:
            raise DeviceError(f"no default audio {kind} device; pick one with --device") from exc
        raise DeviceError(f"unknown audio {kind} device {device!r}; --list-devices lists them") from exc
    if info[channels_key] <= 0:
        raise DeviceError(f"audio device {device!r} has no {kind} channels; --list-devices lists them")
    return info


def pick_rate(sd, info: dict, wanted: int, kind: str, channels: int) -> int:
    """``wanted`` if the device runs at it, else the device's own rate (the engine resamples)."""
    check = sd.check_output_settings if kind == "output" else sd.check_input_settings
    try:
        check(device=info["index"], samplerate=wanted, channels=channels, dtype="float32")
        return wanted
    except (ValueError, sd.PortAudioError):
        return int(info["default_samplerate"])


#: The largest device block (samples) and prefill (seconds) a player takes.
MAX_BLOCKSIZE = 8192
MAX_PREFILL_S = 60.0


@dataclass(frozen=True)
class PlayerConfig:
    """How to play.

    ``mode``: "callback", "buffered" or "low-latency"; ``blocksize``: device samples per callback;
    ``device``: index or name (``"IN,OUT"`` for the microphone path; ``None``: the default);
    ``prefill``: seconds rendered ahead in buffered mode (default 0.1; low-latency: one model frame),
    or, in callback mode with a live source (microphone, pushes), seconds of frames gathered before
    sound starts (default two blocks); ``duration``:
    seconds (``None``: until the source ends); ``channels``: output channels (``None``: up to 2).
    """

    mode: str = "callback"
    blocksize: int = 256
    device: int | str | None = None
    prefill: float | None = None
    duration: float | None = None
    channels: int | None = None

    def check(self) -> None:
        if self.mode not in PLAYER_MODES:
            raise GanvoiceError(f"unknown mode {self.mode!r}; choose one of {', '.join(PLAYER_MODES)}")
        if not isinstance(self.blocksize, int) or not 0 < self.blocksize <= MAX_BLOCKSIZE:
            raise GanvoiceError(f"block size must be 1 to {MAX_BLOCKSIZE} samples, not {self.blocksize}")
        if self.prefill is not None and not 0 <= self.prefill <= MAX_PREFILL_S:  # NaN fails too
            raise GanvoiceError(f"prefill must be 0 to {MAX_PREFILL_S:g} seconds, not {self.prefill}")
        if self.duration is not None and not 0 < self.duration < math.inf:
            raise GanvoiceError(f"duration must be a finite number of seconds > 0, not {self.duration}")


class Player:
    """Plays ``source`` through ``engine`` on an audio device. ``start()``, ``wait()``, ``stop()``."""

    def __init__(self, engine: Engine, source: Source, config: PlayerConfig | None = None):
        self.engine, self.source = engine, source
        self.config = config or PlayerConfig()
        self.config.check()
        self.stats = engine.stats
        self.mic = source if isinstance(source, MicSource) else None
        self._stream = None
        self._threads: list[threading.Thread] = []
        self._prefetcher: Prefetcher | None = None
        self._ring: Ring | None = None
        self._step: BlockStep | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self.device_latency_s = 0.0
        self._quiet = QuietInterpreter()

    # -- setup ---------------------------------------------------------------------------------------
    def _open(self) -> None:
        self._sd = sd = import_sounddevice()
        cfg = self.config
        in_device, out_device = split_devices(cfg.device)
        out_info = resolve_device(sd, out_device, "output")
        channels = cfg.channels or min(MAX_OUTPUT_CHANNELS, out_info["max_output_channels"])
        rate = pick_rate(sd, out_info, self.engine.model_rate, "output", channels)
        self.engine.prepare(rate, cfg.blocksize)
        self.rate, self.channels = rate, channels
        self._block_s = cfg.blocksize / rate
        self._remaining = math.inf if cfg.duration is None else round(cfg.duration * rate)
        self._blocks_started = False
        if self.mic is not None:
            self.mic.prepare(rate)
        self._setup_pipeline()
        stream_args = dict(
            samplerate=rate,
            blocksize=cfg.blocksize,
            dtype="float32",
            latency="low",
            finished_callback=self._done.set,
        )
        try:
            if self.mic is not None:
                in_info = resolve_device(sd, in_device, "input")
                self._stream = sd.Stream(
                    device=(in_info["index"], out_info["index"]),
                    channels=(1, channels),
                    callback=self._duplex_callback,
                    **stream_args,
                )
            else:
                self._stream = sd.OutputStream(
                    device=out_info["index"], channels=channels, callback=self._output_callback, **stream_args
                )
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceError(f"cannot open audio device {out_info['name']!r}: {first_line(exc)}") from exc
        latency = self._stream.latency
        self.device_latency_s = float(latency[-1] if isinstance(latency, tuple) else latency)

    def _setup_pipeline(self) -> None:
        """Wire source -> engine (-> ring) for the mode; size the prefill/cushion; state the latency."""
        self._poll_s = POLL_FRACTION * self._block_s
        self._frames_per_block = max(1, math.ceil(self.config.blocksize / self.engine.hop_out))
        if self.config.mode == "callback":
            self._setup_callback_mode()
        else:
            self._setup_buffered_mode()

    def _setup_callback_mode(self) -> None:
        """The engine runs in the callback; sources that are not realtime-safe run in a prefetcher."""
        cfg, engine, source = self.config, self.engine, self.source
        self._cushion = 0  # frames a live source gathers before sound starts
        if source.live:
            self._cushion = LIVE_CUSHION_BLOCKS * self._frames_per_block
            if cfg.prefill is not None:
                self._cushion = max(
                    1, math.ceil(cfg.prefill * engine.model_rate / engine.metadata.hop_length)
                )
        feed = source
        if not source.realtime_safe:
            ahead = PREFETCH_BLOCKS * max(self._frames_per_block, engine.max_frames)
            self._prefetcher = feed = Prefetcher(
                source, self._cushion + ahead, self._frames_per_block, self._poll_s
            )
        engine.set_source(feed)
        self._step = BlockStep(engine, cfg.blocksize, "callback")
        engine.buffer_samples = round(self._cushion * engine.hop_out) + self._live_extra()
        self._available = feed.available

    def _setup_buffered_mode(self) -> None:
        """A worker renders into a ring of ``prefill`` + spare samples (low-latency: one frame); the callback
        copies from it."""
        cfg, engine = self.config, self.engine
        engine.set_source(self.source)
        if cfg.prefill is not None:
            self._prefill = round(cfg.prefill * self.rate)
        elif cfg.mode == "low-latency":  # one frame of output, in whole blocks
            self._prefill = math.ceil(engine.hop_out / cfg.blocksize) * cfg.blocksize
        else:
            self._prefill = round(DEFAULT_PREFILL_S * self.rate)
        self._step = BlockStep(
            engine, cfg.blocksize, "buffered", self._prefill + RING_SPARE_BLOCKS * cfg.blocksize
        )
        self._ring = self._step.ring
        self._cushion = self._prefill
        engine.buffer_samples = self._prefill + self._live_extra()
        self._available = self._ring.available

    def _live_extra(self) -> int:
        """Input-side buffering of the microphone path, at the output rate."""
        if self.mic is None:
            return 0
        spec = self.mic.spec
        return round((self.mic.lookahead_samples + spec.hop_length) * self.rate / spec.sample_rate)

    # -- threads -------------------------------------------------------------------------------------
    def _worker(self) -> None:
        engine, ring, step, blocksize = self.engine, self._ring, self._step, self.config.blocksize
        try:
            while not self._stop.is_set():
                # keep the ring at the cushion (the latency the player states), not at its capacity
                if ring.free() < blocksize or ring.available() >= max(self._cushion, blocksize):
                    time.sleep(self._poll_s)
                    continue
                start = time.perf_counter()
                got = step.render()
                if got:
                    self.stats.record(1000.0 * (time.perf_counter() - start))
                if engine.finished:
                    break
                if got < blocksize:
                    time.sleep(self._poll_s)
        except BaseException as exc:  # noqa: BLE001 -- raised again by wait()
            self._error = exc
        finally:
            ring.close()

    def _prefilled(self) -> bool:
        if self.config.mode != "callback":
            return self._ring.available() >= self._prefill or self._ring.closed
        if self._prefetcher is not None:
            enough = min(self._prefetcher.capacity, max(self._cushion, 1))
            return self._prefetcher.available() >= enough or self._prefetcher.finished
        return True

    def start(self) -> None:
        """Open the device, start the threads, prefill, start the stream (on failure: stop, raise)."""
        self._open()
        try:
            self.engine.prime(self.config.blocksize)
            self.stats.reset()
            self._quiet.enter()
            self._start_threads()
            if not self.source.live:
                while not self._prefilled() and self._failure() is None:
                    time.sleep(self._poll_s)
            self._raise_failure()
            self._stream.start()
        except BaseException:
            self.stop()
            raise

    def _start_threads(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.start()
        if self._ring is not None:
            worker = threading.Thread(target=self._worker, name="ganvoice-render", daemon=True)
            self._threads.append(worker)
            worker.start()

    # -- callbacks (audio thread: no allocation, no locks, no I/O) -------------------------------------
    def _duplex_callback(self, indata, outdata, frames, time_info, status) -> None:
        self._output_callback(outdata, frames, time_info, status, indata)

    def _output_callback(self, outdata, frames, time_info, status, indata=None) -> None:
        sd_stop = None
        try:
            if indata is not None:  # duplex: the microphone block goes in first
                self.mic.write(indata[:, 0])
            start, start_cpu = time.perf_counter(), time.thread_time()
            stats = self.stats
            stats.blocks += 1
            if status.output_underflow:
                stats.device_underflows += 1
            if not self._blocks_started and not self._gate_open():
                outdata.fill(0.0)
                got, ended = frames, False
            else:
                got, ended = self._step.play(outdata)
            if got < frames and not ended:
                stats.starved += 1
            self._remaining -= frames
            if self.config.mode == "callback":
                stats.record_callback(start, start_cpu, self._block_s)
            if ended or self._remaining <= 0 or self._stop.is_set():
                sd_stop = True
        except Exception as exc:  # noqa: BLE001 -- handed to wait(); the stream must not print
            self._error = exc
            outdata.fill(0.0)
            sd_stop = False
        if sd_stop is not None:
            raise self._sd.CallbackStop if sd_stop else self._sd.CallbackAbort

    def _gate_open(self) -> bool:
        available = self._available()
        if available is None or available >= self._cushion or self._source_ended():
            self._blocks_started = True
        return self._blocks_started

    def _source_ended(self) -> bool:
        return self._ring.closed if self._ring is not None else self.engine.source.finished

    # -- control -------------------------------------------------------------------------------------
    def _failure(self) -> BaseException | None:
        if self._error is not None:
            return self._error
        return self._prefetcher.error if self._prefetcher is not None else None

    def _raise_failure(self) -> None:
        error = self._failure()
        if error is not None:
            raise error

    @property
    def active(self) -> bool:
        return self._stream is not None and not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the stream ends (True) or ``timeout`` passes (False); raises worker errors."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.wait(0.05):
            self._raise_failure()
            if deadline is not None and time.monotonic() >= deadline:
                return False
        self._raise_failure()
        return True

    def stop(self) -> None:
        """Stop the stream and the threads (safe to call twice, and after an error)."""
        self._stop.set()
        if self._stream is not None:
            try:
                self._stream.stop()
            finally:
                self._stream.close()
        if self._prefetcher is not None:
            self._prefetcher.stop()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self._done.set()
        self._quiet.leave()

    def __enter__(self) -> Player:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- report --------------------------------------------------------------------------------------
    def latency(self) -> LatencyBudget:
        """The latency this player adds (:mod:`ganvoice.realtime.latency`: the one definition)."""
        return LatencyBudget.of(self.engine, self.config.blocksize, 1000.0 * self.device_latency_s)

    def summary(self) -> dict:
        """Stats plus latency, provider and settings (what ``--stats-json`` writes).

        ``latency_ms`` = ``engine_latency_ms`` (model delay, resampler, buffering) + ``block_latency_ms``
        + ``device_latency_ms``: :class:`~ganvoice.realtime.latency.LatencyBudget`."""
        engine, budget = self.engine, self.latency()
        engine_ms = 1000.0 * engine.latency_samples / engine.sample_rate
        return {
            **self.stats.summary(),
            "latency_ms": round(budget.total_ms, 3),
            "engine_latency_ms": round(engine_ms, 3),
            "block_latency_ms": round(budget.block_ms, 3),
            "device_latency_ms": round(budget.device_ms, 3),
            "provider": engine.provider,
            "mode": self.config.mode,
            "blocksize": self.config.blocksize,
            "sample_rate": engine.sample_rate,
            "model_sample_rate": engine.model_rate,
            "model": engine.model_path,
            "variant": engine.metadata.variant,
            **({"input_peak": round(self.mic.peak, 4)} if self.mic is not None else {}),
        }
