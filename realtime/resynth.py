"""Audio in, audio out, one push at a time: streaming mel analysis -> the engine -> the block step.

For hosts that push audio as it arrives and take whatever is ready (the GStreamer element
``ganvoice``)::

    resynth = Resynthesizer(Engine("g.onnx"))
    out = resynth.push(audio)        # float32 [n] at the model's rate -> the audio it completes
    out = resynth.finish()           # end of stream: the rest
    resynth.reset()                  # a new stream (after a seek or a discontinuity)

Alignment: output sample ``i`` is the model's resynthesis of input sample ``i`` (the engine drops the
model's warm-up: :attr:`Engine.compensate_delay`), so a stream keeps its timeline, and the output of a
whole stream equals the engine's offline render of it (``ganvoice play --input x.wav --output y.wav``).
:meth:`finish` returns the tail: the last partial hop is completed with silence (as a file's render
does: :func:`~ganvoice.mel.pad_to_whole_hops`), the frames that need the right-hand padding and the
model's flush run, and the output is cut to exactly as many samples as the input had. While
streaming, the output trails the input by at most :attr:`latency_samples` (analysis lookahead + one
hop being assembled + the model's delay), which a host reports as its latency.

Nothing here is a second streaming implementation: :class:`AudioPushSource` is a
:class:`~ganvoice.realtime.sources.RingSource` fed by :class:`~ganvoice.mel.StreamingMelAnalyzer`, and
the audio comes from :class:`~ganvoice.realtime.blockstep.BlockStep` over the :class:`Engine`.
"""

from __future__ import annotations

import math

import numpy as np

from ganvoice.errors import GanvoiceError
from ganvoice.mel import MelSpec, StreamingMelAnalyzer
from ganvoice.realtime.blockstep import BlockStep
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.ring import Ring
from ganvoice.realtime.sources import RingSource

#: Samples of pushed audio analysed (and drained through the engine) at a time.
CHUNK_SAMPLES = 8192
#: Samples per block step (16 frames per model call at hop 256; the result does not depend on it).
BLOCK_SAMPLES = 4096


class AudioPushSource(RingSource):
    """Mel frames of the audio written into it, analysed as it comes; :meth:`close` ends the stream.

    ``write`` runs the streaming analyzer (it allocates: call it from the host's streaming thread, not
    an audio callback) and queues the complete frames; ``read`` only copies from the queue.
    """

    realtime_safe = True
    live = True

    def __init__(self, spec: MelSpec, max_write: int = CHUNK_SAMPLES):
        self.spec, self.max_write = spec, max_write
        self.channels = spec.n_mels
        self._analyzer = StreamingMelAnalyzer(spec, max_block=max_write)
        # one write's frames, the frames its lookahead held back, and the flush
        self._ring = Ring(
            spec.n_mels, math.ceil(max_write / spec.hop_length) + spec.n_fft // spec.hop_length + 4
        )

    @property
    def lookahead_samples(self) -> int:
        """Samples after a hop before its frame can be analysed."""
        return self._analyzer.lookahead_samples

    def write(self, audio: np.ndarray) -> None:
        """Analyse ``audio [n]`` (``n <= max_write``; the frames read so far must have been drained)."""
        if len(audio) > self.max_write:
            raise GanvoiceError(f"write at most {self.max_write} samples at a time, not {len(audio)}")
        self._ring.put(self._analyzer.push(audio))

    def close(self) -> None:
        """End of stream: queue the last frames (the partial hop completed with silence, then those
        that need the right-hand padding)."""
        if not self._ring.closed:
            self._ring.put(self._analyzer.flush(partial_hop=True))
            self._ring.close()

    def reset(self) -> None:
        self._analyzer.reset()
        self._ring.clear()


class Resynthesizer:
    """Push audio through a mel model, get the resynthesis back, aligned (see the module docstring)."""

    def __init__(self, engine: Engine, block: int = BLOCK_SAMPLES):
        meta = engine.metadata
        if meta.conditioning != "mel" or meta.mel is None:
            raise GanvoiceError(
                f"{engine.model_path} is a {meta.conditioning} model: it takes no audio "
                "(play it with ganvoicesrc / ganvoice play --noise)"
            )
        self.engine = engine
        engine.compensate_delay = True
        engine.prepare(engine.model_rate, block)
        self.source = AudioPushSource(meta.mel)
        engine.set_source(self.source)
        engine.buffer_samples = self.source.lookahead_samples + meta.hop_length
        self.step = BlockStep(engine, block)
        self._block = np.zeros(block, dtype=np.float32)
        self.reset()

    @property
    def sample_rate(self) -> int:
        return self.engine.model_rate

    @property
    def latency_samples(self) -> int:
        """Most samples the output trails the input by: lookahead + one hop + the model's delay."""
        return self.engine.latency_samples

    @property
    def active(self) -> bool:
        """Audio has been pushed since the last :meth:`reset`."""
        return self.samples_in > 0

    def reset(self) -> None:
        """A new stream: zero state, empty buffers (after a seek, a flush or a discontinuity)."""
        self.engine.reset()
        self.samples_in = 0
        self.samples_out = 0

    def push(self, audio: np.ndarray) -> np.ndarray:
        """``audio [n]`` float32 at :attr:`sample_rate` -> the output samples it completes (maybe none)."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        pieces: list[np.ndarray] = []
        for start in range(0, len(audio), self.source.max_write):
            self.source.write(audio[start : start + self.source.max_write])
            self._drain(pieces)
        self.samples_in += len(audio)
        return self._collect(pieces)

    def finish(self) -> np.ndarray:
        """End of stream: the remaining output, so that the stream's output is as long as its input."""
        self.source.close()
        pieces: list[np.ndarray] = []
        while not self.step.finished:
            self._drain(pieces)
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        wanted = self.samples_in - self.samples_out  # the completed last hop made up to hop - 1 more
        if len(audio) < wanted:  # (not expected: the model makes a whole hop for every sample)
            audio = np.concatenate([audio, np.zeros(wanted - len(audio), dtype=np.float32)])
        return self._collect([audio[:wanted]])

    def _drain(self, pieces: list[np.ndarray]) -> None:
        """Every sample the engine can make from the frames queued so far."""
        while True:
            got, ended = self.step.play(self._block)
            if got:
                pieces.append(self._block[:got].copy())
            if got < len(self._block) or ended:
                return

    def _collect(self, pieces: list[np.ndarray]) -> np.ndarray:
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        self.samples_out += len(audio)
        return audio
