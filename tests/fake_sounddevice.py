"""A stand-in for sounddevice: one stereo output device, no sound card, no pacing.

Its output stream calls the player's callback block after block in a thread (once ``ready(frames)``
says so) and keeps what it wrote in ``blocks``; ``latency`` is the output latency it reports (seconds).
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np


class FakeSoundDevice:
    """The parts of sounddevice the player uses: one stereo output device at ``rate``."""

    class PortAudioError(Exception):
        pass

    class CallbackStop(Exception):
        pass

    class CallbackAbort(Exception):
        pass

    def __init__(self, rate: int, ready=lambda frames: True, latency: float = 0.0):
        self.rate, self.ready, self.blocks = rate, ready, []
        fake = self

        class OutputStream:
            def __init__(self, samplerate, blocksize, channels, callback, finished_callback, **_):
                self.blocksize, self.channels = blocksize, channels
                self.callback, self.finished = callback, finished_callback
                self.thread = threading.Thread(target=self._run, daemon=True)
                self.latency = latency  # seconds, as PortAudio reports it

            def _run(self):
                status = SimpleNamespace(output_underflow=False)
                try:
                    while True:
                        out = np.zeros((self.blocksize, self.channels), np.float32)
                        while not fake.ready(self.blocksize):
                            threading.Event().wait(0.001)
                        try:
                            self.callback(out, self.blocksize, None, status)
                        finally:
                            fake.blocks.append(out)
                except (fake.CallbackStop, fake.CallbackAbort):
                    pass
                finally:
                    self.finished()

            def start(self):
                self.thread.start()

            def stop(self):
                self.thread.join()

            def close(self):
                pass

        self.OutputStream = OutputStream

    def query_devices(self, device=None, kind=None):
        info = {
            "index": 0,
            "name": "fake",
            "max_output_channels": 2,
            "max_input_channels": 0,
            "default_samplerate": self.rate,
        }
        return info if kind else [info]

    def check_output_settings(self, **_):
        pass
