"""The corpus manifest: one JSON object per clip in ``manifest.jsonl``, paths relative to its folder.

Each line has exactly these keys (the trainer reads them)::

    {"path": "clips/<source>/.../x.wav", "seconds": 1.23, "sample_rate": 22050, "source": "fillets-cs",
     "speaker": "fillets-cs/m" or null, "split": "train" | "val" | "test", "text": "..." or null}

``test`` clips are held out for evaluation and are never trained on.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ganvoice.corpus.errors import ManifestError
from ganvoice.fileio import atomic_write

MANIFEST_NAME = "manifest.jsonl"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ManifestEntry:
    """One clip: where it lies (relative to the manifest's folder), how long, and what it is."""

    path: str
    seconds: float
    sample_rate: int
    source: str
    speaker: str | None
    split: str
    text: str | None

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {self.split!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> ManifestEntry:
        names = [f.name for f in fields(cls)]
        if sorted(data) != sorted(names):
            raise ValueError(f"keys {sorted(data)} != {sorted(names)}")
        return cls(**data)


def write_manifest(path: str | os.PathLike, entries: list[ManifestEntry]) -> Path:
    """Write ``entries`` as JSON lines, atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    with atomic_write(path, text=True, missing_folder=None) as handle:
        for entry in entries:
            handle.write(entry.to_json() + "\n")
    return path


def manifest_file(path: str | os.PathLike) -> Path:
    """``path`` itself, or the :data:`MANIFEST_NAME` inside it when it is a folder."""
    path = Path(path)
    return path / MANIFEST_NAME if path.is_dir() else path


def read_manifest(path: str | os.PathLike) -> list[ManifestEntry]:
    """Read a manifest; a missing file or a malformed line raises :class:`ManifestError` (one line)."""
    path = manifest_file(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest (build one with: ganvoice corpus build --out DIR)")
    entries = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entries.append(ManifestEntry.from_dict(json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise ManifestError(f"{path}:{number}: malformed manifest line ({exc})") from exc
    return entries
