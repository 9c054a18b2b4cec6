"""The latency budget: the one definition the player states and ``ganvoice-bench budget`` tabulates.

From a frame (or input sample) entering the engine to its sound leaving the device, in ms, at the
device's rate::

    model delay      the model's declared ``delay_samples`` (its lookahead)
  + resampler        samples the streaming resampler holds back (0 when the device runs at the model rate)
  + block            one device block: a block is computed before any of it plays
  + buffering        what the player keeps ahead (buffered mode's prefill, a live source's cushion and
                     the microphone's analysis lookahead + one hop)
  + device           the output latency PortAudio reports for the stream (on JACK: without the
                     period being processed, which is the block above)

Compute time is not added: a block that is computed in time is inside its block. The first, second and
fourth parts are the engine's own accounting (:attr:`Engine.latency_samples`, what a host that owns its
block, such as a JACK client or a GStreamer element, reports itself).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ganvoice.realtime.engine import Engine

MS = 1000.0


@dataclass(frozen=True)
class LatencyBudget:
    """The parts of the latency, in ms (see the module docstring); :attr:`total_ms` is their sum."""

    model_delay_ms: float
    resampler_ms: float
    block_ms: float
    buffering_ms: float
    device_ms: float

    @classmethod
    def of(cls, engine: Engine, blocksize: int, device_ms: float) -> LatencyBudget:
        """The budget of ``engine`` as prepared (output rate, ``buffer_samples``) at ``blocksize``."""
        rate = engine.sample_rate
        model = round(engine.metadata.delay_samples * rate / engine.model_rate)
        resampler = engine.latency_samples - model - engine.buffer_samples
        return cls(
            model_delay_ms=MS * model / rate,
            resampler_ms=MS * resampler / rate,
            block_ms=MS * blocksize / rate,
            buffering_ms=MS * engine.buffer_samples / rate,
            device_ms=float(device_ms),
        )

    @property
    def total_ms(self) -> float:
        return self.model_delay_ms + self.resampler_ms + self.block_ms + self.buffering_ms + self.device_ms

    def parts(self, digits: int = 3) -> dict[str, float]:
        """The parts and ``total_ms``, rounded (what a JSON row or ``--stats-json`` carries)."""
        parts = {key: round(value, digits) for key, value in asdict(self).items()}
        return {**parts, "total_ms": round(self.total_ms, digits)}

    def describe(self) -> str:
        """One line: ``52.2 ms (model 29.0 + block 11.6 + device 11.6)`` (zero parts left out)."""
        names = {
            "model_delay_ms": "model",
            "resampler_ms": "resampler",
            "block_ms": "block",
            "buffering_ms": "buffering",
            "device_ms": "device",
        }
        terms = [f"{names[key]} {value:.1f}" for key, value in asdict(self).items() if round(value, 1)]
        return f"{self.total_ms:.1f} ms ({' + '.join(terms) or 'none'})"
