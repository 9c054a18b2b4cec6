"""Compare a device recording with the render it should hold, period by period, around device xruns.

On a busy machine JACK sometimes misses a cycle (a device xrun, reported to every client). The
recorder then loses a period, or the device plays one period of silence, and from there on the
recording is shifted by a whole number of periods. :func:`match_recording` walks the recording one
period at a time: every period must equal the reference to ``tolerance``; where one does not, the
walk looks for the reference again a few periods around (the damage of one xrun) and goes on from
there. It returns how many such spots it had to skip, which a test compares with the xruns JACK
reported: a lost, repeated or wrong block that JACK did not report still fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Periods of the reference a damaged spot may cover: a stall of this VM (3-36 ms measured, steal time)
#: can damage several periods in a row; 8 periods = 43 ms at 48 kHz, 93 ms at 22050 Hz (period 256).
DAMAGE_PERIODS = 8
#: How far (periods, either way) the recording may have moved at a damaged spot: one late JACK
#: cycle on a loaded machine can skip several periods at once (8 seen: 93 ms).
SHIFT_PERIODS = 64
#: Periods that must match after a resync point for it to count as found.
CONFIRM_PERIODS = 4


@dataclass
class Match:
    start: int  # where the reference begins in the recording
    damaged: int  # spots (one xrun's worth of periods) that did not match and were skipped
    compared: int  # samples of the reference compared and equal
    skipped: int  # samples of the reference inside damaged spots


def _close(a: np.ndarray, b: np.ndarray, tolerance: float) -> bool:
    return len(a) == len(b) and (len(a) == 0 or float(np.abs(a - b).max()) <= tolerance)


def _resync(recorded, reference, at_rec, at_ref, period, tolerance) -> tuple[int, int] | None:
    """The nearest (recording, reference) positions, on period steps, where the two agree again.

    Past up to ``DAMAGE_PERIODS`` damaged periods, one side may skip up to ``SHIFT_PERIODS`` more:
    the reference (audio the recording lost) or the recording (silence or a repeat it gained).
    """
    confirm = CONFIRM_PERIODS * period
    for damage in range(1, DAMAGE_PERIODS + 1):
        for extra in range(SHIFT_PERIODS + 1):
            for rec_skip, ref_skip in {(damage, damage + extra), (damage + extra, damage)}:
                ref = at_ref + ref_skip * period
                if ref >= len(reference):
                    continue
                rec = at_rec + rec_skip * period
                want = reference[ref : ref + confirm]
                if _close(recorded[rec : rec + len(want)], want, tolerance):
                    return rec, ref
    if at_ref + DAMAGE_PERIODS * period >= len(reference):
        return at_rec, len(reference)  # the damage reached the end of the reference
    return None


def match_recording(
    recorded: np.ndarray, reference: np.ndarray, start: int, period: int, tolerance: float
) -> Match:
    """Walk ``reference`` through ``recorded`` from ``start`` (see the module docstring)."""
    at_rec, at_ref, damaged, compared, skipped = start, 0, 0, 0, 0
    while at_ref < len(reference):
        size = min(period, len(reference) - at_ref)
        if _close(recorded[at_rec : at_rec + size], reference[at_ref : at_ref + size], tolerance):
            at_rec, at_ref, compared = at_rec + size, at_ref + size, compared + size
            continue
        found = _resync(recorded, reference, at_rec, at_ref, period, tolerance)
        damaged += 1
        if found is None:
            size = min(period, len(reference) - at_ref)
            error = float(np.abs(recorded[at_rec : at_rec + size] - reference[at_ref : at_ref + size]).max())
            raise AssertionError(
                f"the recording differs from the render at reference sample {at_ref} (recording "
                f"{at_rec}, by {error:.3g}) and does not match again within {DAMAGE_PERIODS} periods"
            )
        skipped += found[1] - at_ref
        at_rec, at_ref = found
    return Match(start, damaged, compared, skipped)
