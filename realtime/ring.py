"""A preallocated single-consumer ring of ``[channels, capacity]`` float32 columns.

The consumer side (:meth:`Ring.read`, :meth:`Ring.available`) takes no lock and allocates nothing, so an
audio callback may call it. Producers may be several threads: :meth:`Ring.push` serialises them with a
lock that the consumer never touches. Correctness rests on the GIL: a producer copies the data first and
then advances ``_written``; the consumer copies first and then advances ``_read``.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from ganvoice.errors import GanvoiceError

#: How long a blocked producer sleeps between looks at the free space (seconds).
PRODUCER_POLL_S = 0.002


class RingClosed(GanvoiceError):
    """A push into a ring that was closed (end of stream)."""


class Ring:
    """Columns of ``channels`` float32 values in a fixed ``[channels, capacity]`` array."""

    def __init__(self, channels: int, capacity: int):
        if channels <= 0 or capacity <= 0:
            raise ValueError("a ring needs channels > 0 and capacity > 0")
        self.channels, self.capacity = channels, capacity
        self._data = np.zeros((channels, capacity), dtype=np.float32)
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Empty and reopen (call only while no one reads or writes)."""
        self._written = 0  # columns ever written (advanced by producers only)
        self._read = 0  # columns ever read (advanced by the consumer only)
        self._closed = False

    # -- both sides ----------------------------------------------------------------------------------
    def available(self) -> int:
        """Columns ready to read."""
        return self._written - self._read

    def free(self) -> int:
        """Columns that can be pushed without blocking."""
        return self.capacity - (self._written - self._read)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def finished(self) -> bool:
        """Closed and drained: no column will ever come again."""
        return self._closed and self._written == self._read

    # -- producers -----------------------------------------------------------------------------------
    def push(self, columns: np.ndarray, timeout: float | None = None) -> int:
        """Append ``columns [channels, k]`` (``[k]`` when one channel); waits for room up to ``timeout``.

        Returns the number of columns pushed (fewer than ``k`` only when ``timeout`` ran out).
        """
        columns = np.asarray(columns, dtype=np.float32)
        if columns.ndim == 1:
            columns = columns[None, :]
        if columns.shape[0] != self.channels:
            raise GanvoiceError(f"pushed {columns.shape[0]} channels into a ring of {self.channels}")
        deadline = None if timeout is None else time.monotonic() + timeout
        done = 0
        with self._lock:
            while done < columns.shape[1]:
                if self._closed:
                    raise RingClosed("stream already closed: nothing more can be pushed")
                room = min(self.free(), columns.shape[1] - done)
                if room == 0:
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    time.sleep(PRODUCER_POLL_S)
                    continue
                self.put(columns[:, done : done + room])
                done += room
        return done

    def put(self, block: np.ndarray) -> None:
        """Append ``block [channels, k]`` (or ``[k]``) without waiting or locking: the single-producer path.

        The caller guarantees ``k <= free()`` and that no other thread pushes at the same time.
        """
        if block.ndim == 1:
            block = block[None, :]
        if block.shape[1] > self.free():
            raise GanvoiceError(f"ring overflow: {block.shape[1]} columns into {self.free()} free")
        start = self._written % self.capacity
        first = min(block.shape[1], self.capacity - start)
        self._data[:, start : start + first] = block[:, :first]
        self._data[:, : block.shape[1] - first] = block[:, first:]
        self._written += block.shape[1]

    def close(self) -> None:
        """End of stream: readers drain what is left, then :attr:`finished` is true."""
        self._closed = True

    # -- the consumer (lock-free, allocation-free) -----------------------------------------------------
    def read(self, out: np.ndarray) -> int:
        """Copy up to ``out.shape[-1]`` columns into ``out [channels, n]`` (or ``[n]``); returns the count."""
        n = min(out.shape[-1], self._written - self._read)
        if n <= 0:
            return 0
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        data = self._data[0] if out.ndim == 1 else self._data
        out[..., :first] = data[..., start : start + first]
        out[..., first:n] = data[..., : n - first]
        self._read += n
        return n
