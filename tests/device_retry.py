"""Device tests on a machine that sometimes stalls: retry only when the JACK server itself was stalled.

A device test compares what reached JACK with what should have, period by period, and asserts the
player never starved or overran. On a virtual machine whose CPUs the hypervisor now and then takes away
for 3-25 ms (steal time: 25.7 s of it in one 10-minute run here), JACK's own driver begins cycles late;
cycles around it are lost for every client, and a test that failed then proves little about the player.
:func:`retry_if_jack_stalled` runs such a test again (up to :data:`STALLED_ATTEMPTS` in all) only when
the attempt failed *and* jackd's driver logged a late cycle meanwhile
(:meth:`ganvoice.bench.jack.JackServer.driver_stalls`). A failure with no late cycle is raised at once,
and a player that loses, repeats or corrupts audio, or computes too long, fails every attempt.
"""

from __future__ import annotations

import functools
import sys

#: Attempts in all of a device test whose failures came with stalls of the JACK server.
STALLED_ATTEMPTS = 5


def retry_if_jack_stalled(server_fixture: str):
    """Decorator for a test taking the JACK server fixture named ``server_fixture``."""

    def decorate(test):
        @functools.wraps(test)
        def run(*args, **kwargs):
            server = kwargs[server_fixture]
            for attempt in range(1, STALLED_ATTEMPTS + 1):
                stalls = server.driver_stalls()
                try:
                    return test(*args, **kwargs)
                except AssertionError:
                    stalled = server.driver_stalls() - stalls
                    if attempt == STALLED_ATTEMPTS or not stalled:
                        raise
                    print(
                        f"attempt {attempt} failed while jackd's driver stalled {stalled} time(s)",
                        file=sys.stderr,
                    )

        return run

    return decorate
