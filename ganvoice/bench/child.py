"""Child process of ``first-audio --process``: start the engine from a cold interpreter, deliver one block.

``python -m ganvoice.bench.child MODEL PROVIDER THREADS BLOCK`` imports what an embedding program
imports (``ganvoice.realtime``), opens the engine, fills one block, then prints one JSON line of its own
timings; the parent times the whole process start up to that line.
"""

from __future__ import annotations

import json
import sys
import time

MS = 1000.0


def main(argv: list[str]) -> None:
    start = time.perf_counter()
    import numpy as np

    from ganvoice.realtime.engine import Engine
    from ganvoice.realtime.sources import MelSource

    imported = time.perf_counter()
    path, provider, threads, block = argv[0], argv[1], int(argv[2]), int(argv[3])
    engine = Engine(path, provider, threads, max_block=block)
    meta = engine.metadata
    frames = np.full((meta.channels, meta.flush_length + 1), meta.pad_value, dtype=np.float32)
    engine.set_source(MelSource(frames, loop=True))
    opened = time.perf_counter()
    out = np.zeros(block, dtype=np.float32)
    while engine.fill(out) == 0:
        pass
    first = time.perf_counter()
    timings = {"import_ms": imported - start, "open_ms": opened - imported, "first_block_ms": first - opened}
    print(json.dumps({key: round(MS * value, 3) for key, value in timings.items()}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
