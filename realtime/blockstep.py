"""The player's block step: what one audio block does, in either scheduling mode, with no device.

:class:`~ganvoice.realtime.player.Player` calls it from its PortAudio callback (and its worker thread);
``ganvoice-bench stream``/``compare`` call it in a timed loop; a host that pulls blocks (a GStreamer
element, a JACK client) calls it from its own process callback. So a published block time measures
the code that plays.

- ``callback`` mode: :meth:`BlockStep.play` runs the engine (:meth:`Engine.fill`) for the block.
- ``buffered`` mode: :meth:`BlockStep.render` (a worker's step) renders one block into :attr:`ring`;
  :meth:`BlockStep.play` (the audio callback) only copies from it.

``play`` writes mono into ``out [n]``, or the same samples into every column of ``out [n, channels]``;
it allocates no arrays (except inside soxr when the engine resamples) and takes no lock.
"""

from __future__ import annotations

import numpy as np

from ganvoice.errors import GanvoiceError
from ganvoice.realtime.engine import Engine
from ganvoice.realtime.ring import Ring

MODES = ("callback", "buffered")


class BlockStep:
    """One block at a time from ``engine`` (its source already set), in ``mode``.

    ``blocksize``: the largest block :meth:`play` and :meth:`render` are asked for.
    ``ring_capacity``: samples of the buffered-mode ring (default: four blocks).
    """

    def __init__(
        self, engine: Engine, blocksize: int, mode: str = "callback", ring_capacity: int | None = None
    ):
        if mode not in MODES:
            raise GanvoiceError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        self.engine, self.blocksize, self.mode = engine, blocksize, mode
        self.ring: Ring | None = None
        if mode == "buffered":
            self.ring = Ring(1, ring_capacity or 4 * blocksize)
        self._mono = np.zeros(blocksize, dtype=np.float32)
        self._work = np.zeros(blocksize, dtype=np.float32)

    def render(self) -> int:
        """Buffered mode, the worker's step: one block from the engine into the ring -> real samples.

        The caller makes sure the ring has a block free (``ring.free() >= blocksize``).
        """
        got = self.engine.fill(self._work)
        if got:
            self.ring.put(self._work[:got])
        return got

    @property
    def finished(self) -> bool:
        """Every sample of the stream has been played."""
        return self.engine.finished if self.ring is None else self.ring.finished

    def play(self, out: np.ndarray) -> tuple[int, bool]:
        """The audio callback's step: fill ``out`` (``[n]`` or ``[n, channels]``, ``n <= blocksize``).

        Returns ``(real samples, ended)``: fewer than ``n`` real samples (the rest are zeros) with
        ``ended`` False is an underflow; ``ended`` True means the stream is over.
        """
        mono = out if out.ndim == 1 else self._mono[: len(out)]
        if self.ring is None:
            got = self.engine.fill(mono)
        else:
            got = self.ring.read(mono)
            mono[got:] = 0.0
        if out.ndim != 1:
            out[:] = mono[:, None]
        return got, self.finished
