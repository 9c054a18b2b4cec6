"""Where the conditioning frames come from: a file, a mel array, the microphone, noise, or pushes.

Every source has ``channels``, ``read(out [channels, n]) -> k`` (copies up to ``n`` frames, never
waits; ``k`` may be 0 when nothing is ready yet), ``finished`` (no frame will ever come again) and
``reset()``. ``realtime_safe`` says whether ``read`` may run inside an audio callback (no allocation,
no lock, no I/O); the player runs the others in a :class:`Prefetcher` thread. ``live`` sources make
frames at the pace of the world (microphone, pushes), so the player keeps a small cushion of them.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ganvoice.audio import MIC_RESAMPLE_QUALITY, load_audio
from ganvoice.errors import GanvoiceError, SpecMismatchError
from ganvoice.mel import MelSpec, StreamingMelAnalyzer
from ganvoice.modelmeta import ModelMetadata
from ganvoice.realtime.ring import Ring

if TYPE_CHECKING:
    from ganvoice.realtime.engine import Engine

#: Default smoothness of the latent random walk: correlation between consecutive frames.
NOISE_SMOOTHNESS = 0.9
#: Seconds of frames a push source or a prefetcher holds.
QUEUE_SECONDS = 2.0
#: Seconds of microphone audio held between the callback and the analysis.
MIC_BUFFER_SECONDS = 2.0


def frames_for_seconds(sample_rate: int, hop_length: int, seconds: float) -> int:
    """Frames (of ``hop_length`` samples at ``sample_rate``) in ``seconds``, at least 1."""
    return max(1, int(np.ceil(seconds * sample_rate / hop_length)))


class Source:
    """Base class: see the module docstring for the protocol."""

    channels: int = 0
    realtime_safe: bool = False
    live: bool = False
    #: Samples (at the model's rate) of the input the frames stand for, where it has a length (a file):
    #: the model renders whole hops, a render is cut to this. ``None``: no such length.
    samples: int | None = None

    def read(self, out: np.ndarray) -> int:
        raise NotImplementedError

    def available(self) -> int | None:
        """Frames ready to read now, where the source knows (queues); ``None`` otherwise."""
        return None

    @property
    def finished(self) -> bool:
        return False

    def reset(self) -> None:
        """Start over (the stream restarts from its first frame)."""


class MelSource(Source):
    """Frames of a mel (or latent) array ``[channels, T]``; loops when asked."""

    realtime_safe = True

    def __init__(self, frames: np.ndarray, loop: bool = False):
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[1] == 0:
            raise GanvoiceError(f"a mel source needs [channels, frames] with frames > 0, not {frames.shape}")
        self.frames, self.loop = frames, loop
        self.channels = frames.shape[0]
        self._pos = 0

    def read(self, out: np.ndarray) -> int:
        done, total = 0, self.frames.shape[1]
        while done < out.shape[1] and (self._pos < total or self.loop):
            if self._pos == total:
                self._pos = 0
            k = min(out.shape[1] - done, total - self._pos)
            out[:, done : done + k] = self.frames[:, self._pos : self._pos + k]
            done, self._pos = done + k, self._pos + k
        return done

    @property
    def finished(self) -> bool:
        return not self.loop and self._pos >= self.frames.shape[1]

    def reset(self) -> None:
        self._pos = 0


def load_mel(path: str | os.PathLike, metadata: ModelMetadata) -> np.ndarray:
    """A mel saved as ``.npy`` (``[n_mels, T]``) or ``.npz`` (``mel`` plus ``spec``, a MelSpec JSON).

    The shape must match the model's channels, and a stored spec must equal the model's; otherwise
    :class:`SpecMismatchError` names the difference.
    """
    path = Path(path)
    if not path.is_file():
        raise GanvoiceError(f"{path}: no such mel file")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise GanvoiceError(f"{path}: not a readable .npy/.npz mel ({exc})") from exc
    spec = None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            if "mel" not in data:
                raise GanvoiceError(f"{path}: an .npz mel needs an array named 'mel'")
            spec = MelSpec.from_json(str(data["spec"])) if "spec" in data else None
            mel = data["mel"]
    else:
        mel = data
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim == 3 and mel.shape[0] == 1:
        mel = mel[0]
    if mel.ndim != 2 or mel.shape[0] != metadata.channels:
        raise SpecMismatchError(
            f"{path}: mel of shape {tuple(mel.shape)}, but the model takes [{metadata.channels}, frames]"
        )
    if spec is not None and metadata.mel is not None and spec != metadata.mel:
        raise SpecMismatchError(
            f"{path}: mel spec differs from the model's: {metadata.mel.describe_difference(spec)}"
        )
    if not np.isfinite(mel).all():
        raise GanvoiceError(f"{path}: the mel contains NaN or infinite values")
    return mel


class FileSource(Source):
    """An audio file streamed through :class:`~ganvoice.mel.StreamingMelAnalyzer`.

    The file is read (and resampled to the model's rate with soxr) when the source is made; ``read``
    then analyses it a few hops at a time. Its frames cover every sample: the last partial hop is
    completed with silence (:func:`~ganvoice.mel.pad_to_whole_hops`), and :attr:`samples` is the
    file's length, which a render keeps. With ``loop`` the file starts over after its last frame.
    """

    def __init__(self, path: str | os.PathLike, spec: MelSpec, loop: bool = False):
        self.spec, self.loop = spec, loop
        self.audio = load_audio(path, spec.sample_rate)
        self.samples = None if loop else len(self.audio)
        self.channels = spec.n_mels
        self._analyzer = StreamingMelAnalyzer(spec)
        self._pending = Ring(
            spec.n_mels, frames_for_seconds(spec.sample_rate, spec.hop_length, QUEUE_SECONDS)
        )
        self.reset()

    def reset(self) -> None:
        self._analyzer.reset()
        self._pending.clear()
        self._pos = 0
        self._exhausted = False

    def _analyse(self, frames: int) -> None:
        hop = self.spec.hop_length
        end = min(len(self.audio), self._pos + max(frames, 1) * hop)
        self._pending.put(self._analyzer.push(self.audio[self._pos : end]))
        self._pos = end
        if self._pos == len(self.audio):
            self._pending.put(self._analyzer.flush(partial_hop=True))
            if self.loop:
                self._analyzer.reset()
                self._pos = 0
            else:
                self._exhausted = True

    def read(self, out: np.ndarray) -> int:
        while self._pending.available() < out.shape[1] and not self._exhausted:
            room = self._pending.free() - self.spec.n_fft // self.spec.hop_length - 2
            if room <= 0:
                break
            self._analyse(min(room, out.shape[1]))
        return self._pending.read(out)

    @property
    def finished(self) -> bool:
        return self._exhausted and self._pending.available() == 0


class NoiseSource(Source):
    """Latent frames for "noise" models: a smooth, seeded random walk that stays near unit variance.

    ``z[t] = a * z[t-1] + sqrt(1 - a^2) * n[t]`` with ``n`` standard normal and ``a = smoothness``
    (an Ornstein-Uhlenbeck walk: each frame is close to the last, and it never drifts away).
    """

    realtime_safe = True

    def __init__(self, channels: int, seed: int = 0, smoothness: float = NOISE_SMOOTHNESS):
        if not 0.0 <= smoothness < 1.0:
            raise GanvoiceError(f"noise smoothness must be in [0, 1), not {smoothness}")
        self.channels, self.seed, self.smoothness = channels, seed, smoothness
        self._step = np.float32(np.sqrt(1.0 - smoothness**2))
        self._z = np.zeros(channels, dtype=np.float32)
        self._n = np.zeros(channels, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._rng.standard_normal(out=self._z, dtype=np.float32)

    def read(self, out: np.ndarray) -> int:
        for t in range(out.shape[1]):
            out[:, t] = self._z
            self._rng.standard_normal(out=self._n, dtype=np.float32)
            self._n *= self._step
            self._z *= np.float32(self.smoothness)
            self._z += self._n
        return out.shape[1]


class RingSource(Source):
    """A source that hands out the frames queued in its :class:`Ring` (``self._ring``), lock-free."""

    _ring: Ring

    @property
    def capacity(self) -> int:
        return self._ring.capacity

    def available(self) -> int:
        return self._ring.available()

    def read(self, out: np.ndarray) -> int:
        return self._ring.read(out)

    @property
    def finished(self) -> bool:
        return self._ring.finished


class PushSource(RingSource):
    """A thread-safe queue of frames, for programs that make frames as they go (e.g. a TTS).

    Any thread may :meth:`push` ``[channels, k]`` frames (it waits while the queue is full) and
    :meth:`close` at the end; ``read`` (the audio side) never waits or locks.
    """

    realtime_safe = True
    live = True

    def __init__(self, channels: int, capacity: int = 1024):
        self.channels = channels
        self._ring = Ring(channels, capacity)

    def push(self, frames: np.ndarray, timeout: float | None = None) -> int:
        """Queue ``frames [channels, k]``; returns how many went in (all unless ``timeout`` ran out)."""
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[0] != self.channels:
            raise SpecMismatchError(f"pushed frames of shape {frames.shape}; need [{self.channels}, k]")
        return self._ring.push(frames, timeout)

    def close(self) -> None:
        """No more frames: the stream ends once the queued ones are played."""
        self._ring.close()

    def reset(self) -> None:
        """Nothing to restart: the queued frames belong to the producer."""


class MicSource(Source):
    """Live resynthesis: audio from the input device -> (soxr to the model rate) -> streaming mel.

    The audio callback calls :meth:`write` (lock-free copy into a ring); ``read`` (a worker thread)
    analyses what has arrived. Call :meth:`prepare` with the device rate before the stream starts.
    """

    live = True

    def __init__(self, spec: MelSpec):
        self.spec = spec
        self.channels = spec.n_mels
        self._analyzer = StreamingMelAnalyzer(spec)
        self._pending = Ring(
            spec.n_mels, frames_for_seconds(spec.sample_rate, spec.hop_length, QUEUE_SECONDS)
        )
        self.peak = 0.0  # the loudest input sample analysed so far
        self.prepare(spec.sample_rate)

    @property
    def lookahead_samples(self) -> int:
        """Model-rate samples after a hop before its frame can be analysed."""
        return self._analyzer.lookahead_samples

    def prepare(self, input_rate: int) -> None:
        import soxr

        self.input_rate = int(input_rate)
        self._input = Ring(1, int(MIC_BUFFER_SECONDS * self.input_rate))
        self._scratch = np.zeros(self._input.capacity, dtype=np.float32)
        same = self.input_rate == self.spec.sample_rate
        self._resampler = (
            None
            if same
            else soxr.ResampleStream(self.input_rate, self.spec.sample_rate, 1, quality=MIC_RESAMPLE_QUALITY)
        )
        self.reset()

    def reset(self) -> None:
        self._analyzer.reset()
        self._pending.clear()
        self._input.clear()
        if self._resampler is not None:
            self._resampler.clear()

    def write(self, block: np.ndarray) -> None:
        """Audio callback side: ``block [n]`` at the input rate (dropped if the ring is full)."""
        room = self._input.free()
        self._input.put(block[:room] if room < len(block) else block)

    def read(self, out: np.ndarray) -> int:
        got = self._input.read(self._scratch)
        if got:
            audio = self._scratch[:got]
            self.peak = max(self.peak, float(np.abs(audio).max()))
            if self._resampler is not None:
                audio = self._resampler.resample_chunk(audio)
            frames = self._analyzer.push(audio)
            k = min(frames.shape[1], self._pending.free())
            self._pending.put(frames[:, :k])
        return self._pending.read(out)


class Prefetcher(RingSource):
    """Runs a source's ``read`` in a thread, ahead of time, into a ring the audio callback reads.

    It is itself a realtime-safe source. An exception in the thread closes the ring and is kept in
    :attr:`error`, for the player to raise in the caller's thread.
    """

    realtime_safe = True

    def __init__(self, source: Source, capacity: int, chunk: int, poll_s: float):
        self.source, self.chunk, self.poll_s = source, max(1, chunk), poll_s
        self.channels, self.live = source.channels, source.live
        self._ring = Ring(source.channels, max(capacity, self.chunk))
        self._scratch = np.zeros((source.channels, self.chunk), dtype=np.float32)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ganvoice-prefetch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                room = min(self._ring.free(), self.chunk)
                got = self.source.read(self._scratch[:, :room]) if room else 0
                if got:
                    self._ring.put(self._scratch[:, :got])
                if self.source.finished:
                    break
                if got < self.chunk:
                    time.sleep(self.poll_s)
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller's thread
            self.error = exc
        finally:
            self._ring.close()


# -- the player's input choice ---------------------------------------------------------------------
#: Extensions of a mel file given as ``--input`` (the rest are audio).
MEL_SUFFIXES = (".npy", ".npz")
#: Frames read from stdin at a time.
STDIN_FRAMES = 16


@dataclass(frozen=True)
class SourceChoice:
    """Which input ``ganvoice-play`` was asked for (its flags); :func:`make_source` builds it."""

    input: str | None
    mic: bool
    noise: bool
    stdin: bool
    loop: bool
    seed: int

    def check(self) -> None:
        chosen = [name for name, on in self._flags() if on]
        if len(chosen) > 1:
            raise GanvoiceError(f"choose one input, not {' and '.join(chosen)}")

    def _flags(self):
        return [
            ("--input", self.input is not None),
            ("--mic", self.mic),
            ("--noise", self.noise),
            ("--stdin", self.stdin),
        ]


def make_source(choice: SourceChoice, engine: Engine) -> Source:
    """The source for the chosen input, checked against the model's conditioning."""
    meta = engine.metadata
    if meta.conditioning == "noise":
        if choice.input or choice.mic:
            raise GanvoiceError(f"{engine.model_path} is a noise model (it takes no audio); use --noise")
        if choice.stdin:
            return PushSource(meta.channels)
        return NoiseSource(meta.channels, seed=choice.seed)
    if choice.noise:
        raise GanvoiceError(f"{engine.model_path} is a mel model; --noise needs a noise model (--model)")
    if choice.mic:
        return MicSource(meta.mel)
    if choice.stdin:
        return PushSource(meta.channels)
    if choice.input is None:
        raise GanvoiceError("choose an input: --input FILE (audio or .npy mel), --mic, --noise or --stdin")
    if Path(choice.input).suffix.lower() in MEL_SUFFIXES:
        return MelSource(load_mel(choice.input, meta), loop=choice.loop)
    return FileSource(choice.input, meta.mel, loop=choice.loop)


def feed_from_stdin(source: PushSource) -> threading.Thread:
    """A thread that pushes raw float32 frames (``channels`` values each) from stdin, then closes."""
    frame_bytes = 4 * source.channels

    def run() -> None:
        stream = sys.stdin.buffer
        try:
            while True:
                data = stream.read(frame_bytes * STDIN_FRAMES)
                usable = len(data) - len(data) % frame_bytes
                if usable:
                    frames = np.frombuffer(data[:usable], dtype="<f4").reshape(-1, source.channels)
                    source.push(np.ascontiguousarray(frames.T))
                if len(data) < frame_bytes * STDIN_FRAMES:
                    break
        finally:
            source.close()

    thread = threading.Thread(target=run, name="ganvoice-stdin", daemon=True)
    thread.start()
    return thread
