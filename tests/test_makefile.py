"""The Makefile's two entry points install what they need: `make demo` the runtime's Debian packages only,
`make test` (what CI runs on a fresh clone) the runtime's, the tests' and the training data's.

Read from ``make -n`` (the commands make would run; nothing is run or written).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = {"libportaudio2", "libsndfile1"}
#: Some of what the test suite and the corpus need (JACK fixtures, synthetic voices, speech data, GStreamer).
TEST_NEEDS = {"jackd2", "espeak-ng", "flite", "sox", "festival", "festvox-kallpc16k", "klettres-data"}
TEST_NEEDS |= {
    "ktuberling-data",
    "fillets-ng-data-cs",
    "fillets-ng-data-nl",
    "gstreamer1.0-python3-plugin-loader",
}

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def apt_packages(target: str) -> set[str]:
    """The Debian packages ``make TARGET`` installs as root, checked against the line it prints otherwise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    installs = re.findall(r"apt-get install -y -q --no-install-recommends ([^;]*);", result.stdout)
    hints = re.findall(r'sudo apt-get install -y ([^"]*)"', result.stdout)
    assert len(installs) == len(hints) == 1, result.stdout
    assert installs[0].split() == hints[0].split()
    return set(installs[0].split())


def test_make_demo_installs_only_the_runtime_packages():
    assert apt_packages("demo") == RUNTIME


def test_make_test_installs_the_runtime_the_tests_and_the_training_data_packages():
    packages = apt_packages("test")
    assert RUNTIME <= packages and TEST_NEEDS <= packages, sorted((RUNTIME | TEST_NEEDS) - packages)
