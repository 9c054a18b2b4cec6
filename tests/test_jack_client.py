"""``ganvoice jack`` on a real JACK server (the dummy backend, paced like hardware), as a user runs it.

The client runs as its own process (the console command). This test process holds two more JACK
clients: ``feed`` plays speech into the vocoder's input; ``rec`` records, in the same JACK cycles, what
``feed`` played and what the vocoder put out, so both recordings share one timeline. The output must
be the model's render of the recorded input, exactly ``latency_samples`` later (the latency the client
reports, also visible with ``jack_lsp -l``).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from device_retry import retry_if_jack_stalled

from ganvoice.mel import MelAnalyzer
from ganvoice.onnxgraph import OnnxGenerator

jack = pytest.importorskip("jack", reason="JACK-Client is not installed (pip install 'ganvoice[jack]')")

pytestmark = [pytest.mark.jack, pytest.mark.slow]

PERIOD = 256
#: Periods for the analysis thread (the default is 2): 46 ms, more than this VM's longest stalls.
STALL_CUSHION = 4
RATE = 22050
TOLERANCE = 1e-4
FEED_SECONDS = 10
LEAD_IN_S = 0.5  # silence fed before the speech
TAIL_S = 1.0  # recording after the feed ends
#: Periods of silence before the speech that the comparison starts with (longer than the model's memory).
SETTLE_PERIODS = 32
#: Periods of difference one JACK xrun may cause (analysis window + the model's memory), and the gap
#: that still counts as one spot.
MAX_SPOT_PERIODS = 48
SPOT_GAP_PERIODS = 16
#: Samples at the end of the recording left out (the offline render flushes there, the stream does not).
END_MARGIN = 4096


class Harness:
    """``feed`` (one output port) and ``rec`` (inputs ``ref`` <- feed, ``vocoded`` <- the vocoder)."""

    def __init__(self, server: str, signal_: np.ndarray, seconds: float):
        self.signal = signal_
        self.size = int(seconds * RATE)
        self.ref = np.zeros(self.size, np.float32)
        self.vocoded = np.zeros(self.size, np.float32)
        self.filled = 0
        self.fed = 0
        self.feeding = False
        self.recording = False
        self.xruns = 0
        self.feed = jack.Client("feed", servername=server, no_start_server=True)
        self.rec = jack.Client("rec", servername=server, no_start_server=True)
        self.out = self.feed.outports.register("out")
        self.in_ref = self.rec.inports.register("ref")
        self.in_vocoded = self.rec.inports.register("vocoded")
        self.feed.set_process_callback(self._feed)
        self.rec.set_process_callback(self._record)
        self.rec.set_xrun_callback(self._xrun)

    def _feed(self, frames: int) -> None:
        out = self.out.get_array()
        start = self.fed
        if not self.feeding or start >= len(self.signal):
            out.fill(0.0)
            return
        n = min(frames, len(self.signal) - start)
        out[:n] = self.signal[start : start + n]
        out[n:] = 0.0
        self.fed = start + n

    def _record(self, frames: int) -> None:
        if not self.recording:
            return
        start = self.filled
        end = min(start + frames, self.size)
        self.ref[start:end] = self.in_ref.get_array()[: end - start]
        self.vocoded[start:end] = self.in_vocoded.get_array()[: end - start]
        self.filled = end

    def _xrun(self, delayed_usecs: float) -> None:
        self.xruns += 1

    def __enter__(self) -> Harness:
        self.rec.activate()
        self.feed.activate()
        self.feed.connect(self.out, self.in_ref)
        return self

    def __exit__(self, *exc) -> None:
        for client in (self.feed, self.rec):
            client.deactivate()
            client.close()


def port_latencies(server) -> dict[str, dict[str, tuple[int, int]]]:
    """``jack_lsp -l``: {port: {"playback": (min, max), "capture": (min, max)}}."""
    listing = subprocess.run(["jack_lsp", "-l"], env=server.env, capture_output=True, text=True, timeout=10)
    ports, current = {}, None
    for line in listing.stdout.splitlines():
        found = re.match(r"\s+port (playback|capture) latency = \[ (\d+) (\d+) \]", line)
        if found and current is not None:
            ports[current][found[1]] = (int(found[2]), int(found[3]))
        elif not line.startswith((" ", "\t")):
            current = line.strip()
            ports[current] = {}
    return ports


@retry_if_jack_stalled("jack_server")
def test_jack_client_output_is_the_render_at_the_reported_latency(
    jack_server, tiny_model, demo_wav, tmp_path
):
    speech, rate = sf.read(demo_wav, dtype="float32")
    assert rate == RATE == jack_server.rate and jack_server.period == PERIOD
    feed = np.zeros(FEED_SECONDS * RATE, np.float32)
    for k in range(3):
        feed[k * len(speech) : (k + 1) * len(speech)] = speech
    stats_path = tmp_path / "stats.json"
    # a cushion of STALL_CUSHION periods: this VM keeps a thread off the CPU for up to ~36 ms now and then
    command = [
        sys.executable, "-m", "ganvoice.cli", "jack", "--model", str(tiny_model), "--name", "vocoder",
        "--connect-in", "feed:out", "--connect-out", "rec:vocoded", "--stats-json", str(stats_path),
        "--cushion", str(STALL_CUSHION),
    ]  # fmt: skip
    with Harness(jack_server.name, feed, LEAD_IN_S + FEED_SECONDS + TAIL_S + 2.0) as harness:
        harness.recording = True
        client = subprocess.Popen(command, env=jack_server.env, stderr=subprocess.PIPE, text=True)
        try:
            status = client.stderr.readline()
            assert "running JACK client 'vocoder'" in status, status + client.stderr.read()
            reported = int(re.search(r"latency (\d+) samples", status)[1])
            time.sleep(LEAD_IN_S)
            ports = port_latencies(jack_server)
            harness.feeding = True
            time.sleep(FEED_SECONDS + TAIL_S)
            harness.recording = False  # before the client goes: its port falls silent then
            client.send_signal(signal.SIGINT)
            err = client.communicate(timeout=30)[1]
        finally:
            client.kill()
        recorded_in, recorded_out = harness.ref[: harness.filled], harness.vocoded[: harness.filled]
        xruns = harness.xruns
    assert client.returncode == 0, err
    assert "| blocks |" in err and "Traceback" not in err  # the counters, printed on exit

    # the latency, as the ports report it (feed and rec add none of their own)
    assert ports["vocoder:out"]["capture"] == (reported, reported), ports
    assert ports["vocoder:in"]["playback"] == (reported, reported), ports
    stats = json.loads(stats_path.read_text())
    assert stats["latency_samples"] == reported and stats["sample_rate"] == RATE
    # our client's own faults; JACK's xruns (device_underflows) may come from any client on a busy machine,
    # and a late period that is no overrun was the thread kept off the CPU (see test_jack.assert_played_clean)
    assert stats["starved_blocks"] == 0 and stats["overrun_blocks"] == 0, stats

    onset = int(np.flatnonzero(recorded_in)[0])  # where the speech starts
    # on the client's hop grid: its stream, like the recording, starts on a period boundary (period = hop)
    begin = (onset // PERIOD - SETTLE_PERIODS) * PERIOD
    assert begin > 0
    generator = OnnxGenerator(tiny_model)
    rendered = generator.offline(MelAnalyzer(generator.metadata.mel)(recorded_in[begin:])[None])[0]
    reference = rendered[onset - begin : len(recorded_out) - begin - reported - END_MARGIN]
    assert len(reference) > (FEED_SECONDS - 1) * RATE
    assert np.abs(reference).max() > 10 * TOLERANCE  # not a comparison of silences
    # the measured latency: where the render of the speech's first second lies in the output's next two
    # seconds (the demo sentence repeats: a wider search could find its second copy)
    assert cross_correlation_peak(recorded_out[onset : onset + 2 * RATE], reference[:RATE]) == reported
    # exact everywhere, except around the xruns JACK reported (a lost cycle changes the input the model
    # heard: its output differs for about the model's memory, then matches again at the same latency)
    out = recorded_out[onset + reported : onset + reported + len(reference)]
    assert len(out) == len(reference)
    spots = damaged_spots(out, reference)
    assert len(spots) <= 2 * xruns, (spots, xruns, stats)
    assert all(last - first < MAX_SPOT_PERIODS for first, last in spots), spots
    assert sum(last - first + 1 for first, last in spots) * PERIOD <= 0.1 * len(reference), spots
    if xruns == 0:
        assert np.abs(out - reference).max() <= TOLERANCE


def cross_correlation_peak(recorded: np.ndarray, template: np.ndarray) -> int:
    """Index in ``recorded`` where ``template`` matches best (cross-correlation via the FFT)."""
    size = 1 << (len(recorded) + len(template)).bit_length()
    spectrum = np.fft.rfft(recorded, size) * np.conj(np.fft.rfft(template, size))
    return int(np.argmax(np.fft.irfft(spectrum, size)[: len(recorded) - len(template) + 1]))


def damaged_spots(out: np.ndarray, reference: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) period of each run of periods that differ by more than the tolerance."""
    periods = len(reference) // PERIOD
    error = np.abs(out[: periods * PERIOD] - reference[: periods * PERIOD]).reshape(periods, PERIOD).max(1)
    spots: list[tuple[int, int]] = []
    for period in np.flatnonzero(error > TOLERANCE):
        if spots and period - spots[-1][1] <= SPOT_GAP_PERIODS:
            spots[-1] = (spots[-1][0], int(period))
        else:
            spots.append((int(period), int(period)))
    return spots


def test_no_server_is_one_line(tiny_model, tmp_path):
    env = {"JACK_DEFAULT_SERVER": "ganvoice-no-such-server", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "ganvoice.cli", "jack", "--model", str(tiny_model)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and lines[-1].startswith("error: no JACK server"), result.stderr
    assert "Traceback" not in result.stderr
