"""The embeddable engine: an exported model, its streaming state, a source, and the output rate.

Lifecycle (in the spirit of pedalboard)::

    engine = Engine("g.onnx")                  # checks the model, opens ONNX Runtime, preallocates
    audio = engine.process(frames)             # push: frames [C, T] -> audio [~T * hop * rate ratio]
    engine.set_source(FileSource(...))
    audio = engine.render(22050)               # pull: the next samples of the source's audio
    engine.reset()                             # zero state, a new stream

Output is mono float32 at :attr:`sample_rate` (the model's rate unless :meth:`prepare` chose another;
then soxr resamples it as a stream). The output lags the conditioning by :attr:`output_delay`; pull
rendering ends exactly when the last frame's audio is out (the model is flushed with
:meth:`ModelMetadata.flush_frames`, as offline use does).
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from ganvoice.audio import STREAM_RESAMPLE_QUALITY
from ganvoice.errors import GanvoiceError, renamed
from ganvoice.modelmeta import ModelMetadata
from ganvoice.realtime.model import OpenedModel, Streamer, open_model
from ganvoice.realtime.ring import Ring
from ganvoice.realtime.sources import Source
from ganvoice.realtime.stats import Stats

#: Most frames the engine runs in one model call (bigger calls are faster offline, but a block
#: needs only a few frames).
MAX_FRAMES_PER_CALL = 32
#: Blocks of model output the resampler is probed with to measure the samples it holds back.
RESAMPLER_PROBE_CALLS = 16


class Engine:
    """One exported model, streaming. See the module docstring.

    ``provider``: "auto" (CUDA if it works, else CPU), "cuda" or "cpu"; ``threads``: ONNX Runtime
    intra-op threads (default 1: per-block work is small, and the audio thread must not wait on a pool).
    ``sample_rate``/``max_block``: output rate and the largest block :meth:`fill` will be asked for.
    ``compensate_delay``: drop the first ``delay_samples`` model samples, so pulled audio lines up with
    the input (what a rendered file wants; a device stream keeps them and states the latency). Its old
    name ``skip_warmup`` still works (a one-line note).
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        provider: str = "auto",
        threads: int | None = None,
        *,
        sample_rate: int | None = None,
        max_block: int = 4096,
        compensate_delay: bool = False,
        resample_quality: str = STREAM_RESAMPLE_QUALITY,
        skip_warmup: bool | None = None,
    ):
        if skip_warmup is not None:
            renamed("skip_warmup", "compensate_delay", "Engine")
            compensate_delay = skip_warmup
        self._opened: OpenedModel = open_model(model_path, provider, threads)
        self.model_path = str(model_path)
        self.metadata: ModelMetadata = self._opened.metadata
        self.provider: str = self._opened.provider
        self.provider_note: str = self._opened.note
        self.compensate_delay = compensate_delay
        self.resample_quality = resample_quality
        self.stats = Stats()
        self.source: Source | None = None
        self.buffer_samples = 0  # buffering a player adds (prefill, cushion); part of latency_samples
        self._streamer: Streamer | None = None
        self.prepare(sample_rate or self.metadata.sample_rate, max_block)

    # -- configuration -------------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        """Conditioning channels (n_mels, or the latent size of a noise model)."""
        return self.metadata.channels

    @property
    def model_rate(self) -> int:
        return self.metadata.sample_rate

    @property
    def hop_out(self) -> float:
        """Output samples per frame (the model's hop at the output rate)."""
        return self.metadata.hop_length * self.sample_rate / self.model_rate

    @property
    def max_frames(self) -> int:
        """Most frames one model call runs."""
        return self._streamer.max_frames

    def prepare(self, sample_rate: int, max_block: int) -> None:
        """Set the output rate and the largest block; (re)allocates every buffer and resets."""
        if sample_rate <= 0:
            raise GanvoiceError(f"sample rate must be positive, not {sample_rate}")
        if max_block <= 0:
            raise GanvoiceError(f"block size must be a positive number of samples, not {max_block}")
        self.sample_rate, self.max_block = int(sample_rate), int(max_block)
        self._ratio = self.sample_rate / self.model_rate
        hop_out = self.hop_out
        max_frames = min(MAX_FRAMES_PER_CALL, max(1, math.ceil(self.max_block / hop_out)))
        if self._streamer is None or self._streamer.max_frames != max_frames:
            self._streamer = Streamer(self._opened, max_frames)
        self._staging = np.zeros((self.channels, max_frames), dtype=np.float32)
        self._flush = self.metadata.flush_frames()  # run in pieces of <= flush_length frames
        self._empty = np.zeros(0, dtype=np.float32)  # fill() ends the stream without allocating
        self._resampler_hold = self.resampler_hold_samples()
        capacity = self.max_block + math.ceil(max_frames * hop_out) + 2 * self._resampler_hold + 64
        self._fifo = Ring(1, capacity)
        self.reset()

    def _new_resampler(self):
        if self.sample_rate == self.model_rate:
            return None
        import soxr

        return soxr.ResampleStream(
            self.model_rate, self.sample_rate, 1, dtype="float32", quality=self.resample_quality
        )

    def resampler_hold_samples(self) -> int:
        """Most output samples the streaming resampler holds back (0 without resampling)."""
        resampler = self._new_resampler()
        if resampler is None:
            return 0
        block = np.zeros(self.metadata.hop_length, dtype=np.float32)
        held, produced = 0, 0
        for calls in range(1, RESAMPLER_PROBE_CALLS + 1):
            produced += len(resampler.resample_chunk(block))
            held = max(held, math.ceil(calls * len(block) * self._ratio - produced))
        return held

    @property
    def skip_warmup(self) -> bool:
        """Old name of :attr:`compensate_delay`."""
        renamed("Engine.skip_warmup", "compensate_delay", "Engine")
        return self.compensate_delay

    @skip_warmup.setter
    def skip_warmup(self, value: bool) -> None:
        renamed("Engine.skip_warmup", "compensate_delay", "Engine")
        self.compensate_delay = value

    # -- latency -------------------------------------------------------------------------------------
    @property
    def output_delay(self) -> int:
        """Samples the pulled audio lags its frames, at the output rate (0 with ``compensate_delay``).

        The metadata's ``delay_samples`` (the model's own delay, at the model rate) seen through the
        resampler and :attr:`compensate_delay`: what a caller of :meth:`render` gets."""
        return 0 if self.compensate_delay else round(self.metadata.delay_samples * self._ratio)

    @property
    def delay_samples(self) -> int:
        """Old name of :attr:`output_delay` (``delay_samples`` is the metadata's word)."""
        renamed("Engine.delay_samples", "output_delay", "Engine")
        return self.output_delay

    @property
    def latency_samples(self) -> int:
        """Model delay + resampler hold + the player's buffering, at the output rate."""
        model = round(self.metadata.delay_samples * self._ratio)
        return model + self._resampler_hold + self.buffer_samples

    # -- lifecycle -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Zero the model state, empty every buffer, restart the source; a new stream begins."""
        self._streamer.reset()
        self._fifo.clear()
        self._resampler = self._new_resampler()
        self._model_samples = 0  # model output samples produced so far
        self._frames_in = 0  # real (non-pad) frames consumed so far
        self._pad_left = self.metadata.flush_length
        self._source_done = False
        self._drained = False
        if self.source is not None:
            self.source.reset()
        self.stats.reset()

    def set_source(self, source: Source | None) -> None:
        """Attach the source :meth:`render` and :meth:`fill` pull from, and reset."""
        if source is not None and source.channels != self.channels:
            raise GanvoiceError(
                f"source gives {source.channels} channels, the model takes {self.channels} "
                f"({self.metadata.conditioning})"
            )
        self.source = source
        self.reset()

    def prime(self, max_block: int | None = None) -> None:
        """Run the model once for each call size blocks of ``max_block`` need, then zero its state.

        Call before a stream starts (the source is not touched): the first callbacks then cost what
        the later ones do. (Not the model's delay, :attr:`compensate_delay`; not a training phase.)
        """
        frames = math.ceil((max_block or self.max_block) / self.hop_out) + 1
        self._streamer.prime(frames)

    def warm_up(self, max_block: int | None = None) -> None:
        """Old name of :meth:`prime`."""
        renamed("Engine.warm_up", "prime", "Engine")
        self.prime(max_block)

    @property
    def finished(self) -> bool:
        """The source ended and every sample of its audio has been pulled."""
        return self._drained and self._fifo.available() == 0

    # -- push ----------------------------------------------------------------------------------------
    def process(self, frames: np.ndarray) -> np.ndarray:
        """Push ``frames [channels, T]`` -> the audio they complete, float32 ``[~T * hop * ratio]``.

        Streaming: the state carries over between calls and the audio lags by :attr:`latency_samples`.
        Allocates its result (use :meth:`fill` with a source in an audio callback).
        """
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[0] != self.channels:
            raise GanvoiceError(f"process() takes frames [{self.channels}, T], not {frames.shape}")
        pieces = []
        for start in range(0, frames.shape[1], self._streamer.max_frames):
            chunk = frames[:, start : start + self._streamer.max_frames]
            self._streamer.input(chunk.shape[1])[:] = chunk
            pieces.append(self._resample(self._model_run(chunk.shape[1])).copy())
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    def flush(self) -> np.ndarray:
        """End a :meth:`process` stream: run the lookahead pad frames, return the last audio."""
        pad = self.metadata.flush_frames()
        audio = self.process(pad) if pad.shape[1] else np.zeros(0, np.float32)
        if self._resampler is not None:
            audio = np.concatenate(
                [audio, self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)]
            )
        return audio

    def _resample(self, audio: np.ndarray, last: bool = False) -> np.ndarray:
        if self._resampler is None:
            return audio
        return self._resampler.resample_chunk(audio, last=last)

    # -- pull ----------------------------------------------------------------------------------------
    def render(self, num_samples: int) -> np.ndarray:
        """The next ``num_samples`` of the source's audio (fewer at its end; empty once finished)."""
        out = np.zeros(num_samples, dtype=np.float32)
        done = 0
        while done < num_samples and not self.finished:
            block = out[done : done + self.max_block]
            got = self.fill(block)
            done += got
            if got < len(block) and not self.finished:
                time.sleep(0.001)  # a live source has nothing yet
        return out[:done]

    def render_into(self, out: np.ndarray) -> int:
        """:meth:`fill` plus bookkeeping: one block, its compute time, and an underflow if short."""
        start = time.perf_counter()
        got = self.fill(out)
        self.stats.record(1000.0 * (time.perf_counter() - start))
        self.stats.blocks += 1
        if got < len(out) and not self.finished:
            self.stats.starved += 1
        return got

    def fill(self, out: np.ndarray) -> int:
        """Fill ``out [n]`` (``n <= max_block``) with the next samples; zeros after the real ones.

        Returns how many are real: ``n`` unless the source has no frame ready (a live source) or the
        stream ended. Allocates no arrays (except inside soxr when resampling); safe in a callback when
        the source is realtime-safe.
        """
        n = len(out)
        while self._fifo.available() < n and not self._drained:
            if not self._step(n - self._fifo.available()):
                break
        got = self._fifo.read(out)
        out[got:] = 0.0
        return got

    def _step(self, wanted: int) -> bool:
        """One model call towards ``wanted`` more output samples; False if the source had no frame."""
        if self.source is None:
            raise GanvoiceError("the engine has no source to pull from: call set_source() first")
        hop_out = self.hop_out
        # prepare() sized the FIFO so that max_frames more frames always fit
        frames = min(self._streamer.max_frames, max(1, math.ceil(wanted / hop_out)))
        if not self._source_done:
            got = self.source.read(self._staging[:, :frames])
            if got:
                self._frames_in += got
                self._run(self._staging, got)
                return True
            if not self.source.finished:
                return False
            self._source_done = True
        if self._pad_left > 0:
            got = min(frames, self._pad_left)
            self._pad_left -= got
            self._run(self._flush, got)
            return True
        self._push_out(self._resample(self._empty, last=True))
        self._drained = True
        return True

    def _run(self, frames: np.ndarray, count: int) -> None:
        self._streamer.input(count)[:] = frames[:, :count]
        audio = self._model_run(count)
        first = self._model_samples
        self._model_samples += len(audio)
        start = self.metadata.delay_samples if self.compensate_delay else 0
        stop = self._model_samples
        if self._source_done:  # the stream ends with the last real frame's audio
            stop = min(stop, self.metadata.delay_samples + self._frames_in * self.metadata.hop_length)
        keep = audio[max(0, start - first) : max(0, stop - first)]
        if len(keep):
            self._push_out(self._resample(keep))

    def _model_run(self, count: int) -> np.ndarray:
        """One model call on the staged frames; a non-finite result becomes silence and is counted.

        NaN or infinity never reaches the device: the call's audio is zeroed, ``stats.nonfinite``
        counts it, and the model state (which would carry the NaN on) is zeroed. No allocation.
        """
        audio = self._streamer.run(count)
        if not math.isfinite(audio.sum()):
            audio.fill(0.0)
            self._streamer.reset()
            self.stats.nonfinite += 1
        return audio

    def _push_out(self, audio: np.ndarray) -> None:
        if len(audio):
            self._fifo.put(audio)
