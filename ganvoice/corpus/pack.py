"""Pack a balanced, compressed subset of a corpus (Ogg Vorbis + manifest) to carry to a lent GPU machine.

The lent machine receives at most 64 MiB with the code, so the pack holds a fixed number of hours of the
training split, spread evenly over the sources (the many-voice sets are not drowned), plus the whole
validation split of the real sources. Clip choice is seeded and stable.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from ganvoice.audio import load_audio
from ganvoice.corpus.manifest import (
    MANIFEST_NAME,
    ManifestEntry,
    manifest_file,
    read_manifest,
    write_manifest,
)
from ganvoice.errors import GanvoiceError

VORBIS_COMPRESSION = 0.7  # soundfile's 0..1 scale: ~55 kbit/s for 22 kHz mono speech


def choose_clips(entries: list[ManifestEntry], hours: float, seed: int) -> list[ManifestEntry]:
    """Round-robin over sources (shuffled per source) until ``hours`` of the train split are chosen."""
    rng = random.Random(seed)
    by_source: dict[str, list[ManifestEntry]] = defaultdict(list)
    for entry in entries:
        if entry.split == "train":
            by_source[entry.source].append(entry)
    for group in by_source.values():
        group.sort(key=lambda e: e.path)
        rng.shuffle(group)
    chosen, budget = [], hours * 3600.0
    while budget > 0 and any(by_source.values()):
        for source in sorted(by_source):
            if by_source[source] and budget > 0:
                entry = by_source[source].pop()
                chosen.append(entry)
                budget -= entry.seconds
    return chosen


def pack_corpus(manifest: str | Path, out: str | Path, hours: float, seed: int = 0) -> list[ManifestEntry]:
    """Write ``out/clips/*.ogg`` and ``out/manifest.jsonl``; returns the packed entries."""
    source_manifest = manifest_file(manifest)
    entries = read_manifest(source_manifest)
    if not entries:
        raise GanvoiceError(f"{source_manifest}: empty manifest")
    chosen = choose_clips(entries, hours, seed) + [e for e in entries if e.split == "val"]
    out = Path(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    packed = []
    for index, entry in enumerate(tqdm(chosen, desc="pack", unit="clip")):
        relative = f"clips/{index:05d}.ogg"
        target = out / relative
        if not target.exists():
            audio = load_audio(source_manifest.parent / entry.path, entry.sample_rate)
            sf.write(
                target,
                audio,
                entry.sample_rate,
                format="OGG",
                subtype="VORBIS",
                compression_level=VORBIS_COMPRESSION,
            )
        packed.append(replace(entry, path=relative))
    write_manifest(out / MANIFEST_NAME, packed)
    return packed
