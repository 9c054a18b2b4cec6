"""Per-call cost of streaming graphs: one-frame calls timed interleaved, plus ONNX Runtime's node profile.

    .venv/bin/python benchmarks/per_call.py MODEL.onnx [MODEL.onnx ...] [--rounds 40] [--profile]

Each model runs through the realtime ``Streamer`` (IO binding, ping-ponged state, one CPU thread, no
spinning), in rounds of 100 calls that alternate between the models, so machine noise hits all alike.
Prints per model: nodes, one-frame call p50/p99 (µs), its ratio to the first model, and the per-frame
cost of an 8-frame call (µs / frame). ``--profile`` adds the top nodes and the time per op type from
ONNX Runtime's profiler (its own overhead inflates small nodes; read it for shares, not totals).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

from ganvoice.onnxgraph import metadata_of
from ganvoice.realtime.model import OpenedModel, Streamer, _session_options

CALLS_PER_ROUND = 100


def _streamer(path: str, frames: int, profile_prefix: str | None = None) -> Streamer:
    options = _session_options(1)
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    streamer = Streamer(OpenedModel(session, metadata_of(session, path), "cpu", ""), frames)
    streamer.prime(frames)
    return streamer


def timings(paths: list[str], rounds: int) -> list[dict]:
    one = [_streamer(p, 8) for p in paths]
    times = [[] for _ in paths]
    eight = [[] for _ in paths]
    for _ in range(rounds):
        for i, streamer in enumerate(one):
            for _ in range(CALLS_PER_ROUND):
                start = time.perf_counter_ns()
                streamer.run(1)
                times[i].append(time.perf_counter_ns() - start)
            for _ in range(CALLS_PER_ROUND // 8):
                start = time.perf_counter_ns()
                streamer.run(8)
                eight[i].append((time.perf_counter_ns() - start) / 8)
    base = float(np.median(times[0]))
    rows = []
    for path, t, e in zip(paths, times, eight):
        t = np.asarray(t) / 1000.0
        rows.append(
            {
                "model": path,
                "nodes": len(onnx.load(path, load_external_data=False).graph.node),
                "call_p50_us": round(float(np.median(t)), 1),
                "call_p99_us": round(float(np.percentile(t, 99)), 1),
                "ratio_p50": round(float(np.median(t)) * 1000.0 / base, 3),
                "frame_in_8_p50_us": round(float(np.median(e)) / 1000.0, 1),
            }
        )
    return rows


def profile(path: str, calls: int = 1000, top: int = 12) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        streamer = _streamer(path, 1, os.path.join(tmp, "profile"))
        for _ in range(calls):
            streamer.run(1)
        with open(streamer.session.end_profiling()) as handle:
            events = json.load(handle)
    nodes = collections.defaultdict(list)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            nodes[(event["name"][: -len("_kernel_time")], event["args"].get("op_name"))].append(event["dur"])
    medians = sorted(((float(np.median(v)), k) for k, v in nodes.items()), reverse=True)
    total = sum(m for m, _ in medians)
    by_op, count = collections.Counter(), collections.Counter()
    for m, (_, op) in medians:
        by_op[op] += m
        count[op] += 1
    lines = [f"{path}: {len(nodes)} kernels run per one-frame call; sum of their medians {total:.0f} µs"]
    lines.append(
        "by op: " + ", ".join(f"{op} {by_op[op]:.0f} µs ({count[op]})" for op, _ in by_op.most_common())
    )
    lines += [f"  {m:6.1f} µs  {op:18s} {name}" for m, (name, op) in medians[:top]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.profile:
        for path in args.models:
            print(profile(path))
    print("| model | nodes | call p50 µs | call p99 µs | p50 ratio | µs/frame in 8-frame calls |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in timings(args.models, args.rounds):
        print(
            f"| {row['model']} | {row['nodes']} | {row['call_p50_us']} | {row['call_p99_us']} | "
            f"{row['ratio_p50']} | {row['frame_in_8_p50_us']} |"
        )


if __name__ == "__main__":
    main()
