"""The device tests' recording comparison: exact where JACK was on time, resynced around its xruns."""

from __future__ import annotations

import numpy as np
import pytest
from recording_match import match_recording

PERIOD = 64


@pytest.fixture
def reference():
    return np.random.default_rng(0).standard_normal(PERIOD * 40).astype(np.float32)


def _recording(parts: list[np.ndarray], lead: int = 3 * PERIOD) -> np.ndarray:
    return np.concatenate([np.zeros(lead, np.float32), *parts, np.zeros(2 * PERIOD, np.float32)])


def test_an_undamaged_recording_matches_everywhere(reference):
    match = match_recording(_recording([reference]), reference, 3 * PERIOD, PERIOD, 1e-4)
    assert match.damaged == 0 and match.compared == len(reference)


@pytest.mark.parametrize("where", [5, 20, 38])
def test_a_lost_period_is_one_damaged_spot(reference, where):
    cut = where * PERIOD
    recorded = _recording([reference[:cut], reference[cut + PERIOD :]])
    match = match_recording(recorded, reference, 3 * PERIOD, PERIOD, 1e-4)
    assert match.damaged == 1 and match.compared >= len(reference) - 2 * PERIOD


@pytest.mark.parametrize("where", [5, 20])
def test_a_period_of_silence_is_one_damaged_spot(reference, where):
    cut = where * PERIOD
    recorded = _recording([reference[:cut], np.zeros(PERIOD, np.float32), reference[cut:]])
    match = match_recording(recorded, reference, 3 * PERIOD, PERIOD, 1e-4)
    assert match.damaged == 1


def test_two_xruns_are_two_spots(reference):
    a, b = 8 * PERIOD, 25 * PERIOD
    recorded = _recording(
        [reference[:a], reference[a + PERIOD : b], np.zeros(PERIOD, np.float32), reference[b:]]
    )
    assert match_recording(recorded, reference, 3 * PERIOD, PERIOD, 1e-4).damaged == 2


def test_wrong_audio_that_never_matches_again_fails(reference):
    recorded = _recording([reference[: 10 * PERIOD], -reference[10 * PERIOD :]])
    with pytest.raises(AssertionError, match="does not match again"):
        match_recording(recorded, reference, 3 * PERIOD, PERIOD, 1e-4)


def test_a_small_error_inside_one_period_is_a_damaged_spot(reference):
    """A wrong block counts as damage: a test allows only as many as JACK reported xruns."""
    recorded = _recording([reference])
    recorded[3 * PERIOD + 12 * PERIOD + 5] += 0.01
    assert match_recording(recorded, reference, 3 * PERIOD, PERIOD, 1e-4).damaged == 1


def test_a_late_cycle_that_skips_eight_periods_is_one_spot(reference):
    """Seen on the loaded 2-core VM: one JACK xrun, 2048 samples (8 periods of 256) never recorded."""
    cut = 6 * PERIOD
    recorded = _recording([reference[:cut], reference[cut + 8 * PERIOD :]])
    match = match_recording(recorded, reference, 3 * PERIOD, PERIOD, 1e-4)
    assert match.damaged == 1 and match.skipped == 9 * PERIOD
