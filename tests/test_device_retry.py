"""The device tests' retry rule: again only when the attempt failed while jackd's driver ran late."""

from __future__ import annotations

import pytest
from device_retry import STALLED_ATTEMPTS, retry_if_jack_stalled


class Server:
    """Stands in for ``JackServer.driver_stalls``: each attempt may add late driver cycles."""

    def __init__(self, stalls_per_attempt: list[int]):
        self.stalls, self.per_attempt = 0, list(stalls_per_attempt)

    def driver_stalls(self) -> int:
        return self.stalls


def a_test(failures: int):
    calls = []

    @retry_if_jack_stalled("jack_server")
    def test(jack_server):
        calls.append(1)
        jack_server.stalls += jack_server.per_attempt[len(calls) - 1]
        assert len(calls) > failures, f"attempt {len(calls)} failed"

    return test, calls


def test_a_failure_while_jackd_stalled_is_tried_again():
    test, calls = a_test(failures=1)
    test(jack_server=Server([2, 0]))
    assert len(calls) == 2


def test_a_failure_without_a_stall_fails_at_once():
    test, calls = a_test(failures=1)
    with pytest.raises(AssertionError, match="attempt 1 failed"):
        test(jack_server=Server([0, 0]))
    assert len(calls) == 1


def test_a_failure_that_repeats_fails_after_the_last_attempt():
    test, calls = a_test(failures=STALLED_ATTEMPTS)
    with pytest.raises(AssertionError, match=f"attempt {STALLED_ATTEMPTS} failed"):
        test(jack_server=Server([1] * STALLED_ATTEMPTS))
    assert len(calls) == STALLED_ATTEMPTS
