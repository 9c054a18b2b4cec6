"""Seeded, stable choices by clip id: the train/val split, per-source caps, a synthetic voice's variant.

Every choice comes from a hash of a text key (never from the order clips are found or from Python's
salted ``hash``), so re-running with the same seed gives the same answer for the same clip, whatever
else changed in the corpus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")
_HASH_BYTES = 8


def unit_hash(*parts: object) -> float:
    """A number in [0, 1) that depends only on ``parts`` (their ``str``), stable across runs and machines."""
    key = "\x1f".join(str(part) for part in parts).encode("utf-8")
    digest = hashlib.sha256(key).digest()[:_HASH_BYTES]
    return int.from_bytes(digest, "big") / float(1 << (8 * _HASH_BYTES))


def stable_choice(options: Sequence[T], *parts: object) -> T:
    """One of ``options``, chosen by :func:`unit_hash` of ``parts``."""
    return options[int(unit_hash(*parts) * len(options))]


def assign_split(clip_id: str, seed: int, val_fraction: float, forced: str | None = None) -> str:
    """``forced`` when given (held-out clips are "test"), else "val" for a seeded ``val_fraction`` of ids."""
    if forced is not None:
        return forced
    return "val" if unit_hash("split", seed, clip_id) < val_fraction else "train"


def seeded_subset(ids: Sequence[str], limit: int | None, seed: int) -> set[str]:
    """At most ``limit`` of ``ids``, spread over the whole source (ordered by a seeded hash), stable."""
    if limit is None or limit >= len(ids):
        return set(ids)
    return set(sorted(ids, key=lambda clip_id: unit_hash("cap", seed, clip_id))[:limit])
