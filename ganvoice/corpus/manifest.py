"""The corpus manifest: one JSON object per clip in ``manifest.jsonl``, paths relative to its folder.

Each line has exactly these keys (the trainer reads them)::

    {"path": "clips/<source>/.../x.wav", "seconds": 1.23, "sample_rate": 22050, "source": "fillets-cs",
     "speaker": "fillets-cs/m" or null, "split": "train" | "val" | "test", "text": "..." or null}

``test`` clips are held out for evaluation and are never trained on.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from ganvoice.corpus.errors import ManifestError
from ganvoice.fileio import atomic_write

MANIFEST_NAME = "manifest.jsonl"
SPLITS = ("train", "val", "test")
#: What a lenient read (training) fills in for keys a hand-made manifest leaves out.
LENIENT_DEFAULTS = {"source": "", "speaker": None, "split": "train", "text": None}


@dataclass(frozen=True)
class ManifestEntry:
    """One clip: where it lies (relative to the manifest's folder), how long, and what it is."""

    path: str | Path  # relative to the manifest's folder; absolute after read_manifest(resolve=True)
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

    @classmethod
    def lenient(cls, data: dict) -> ManifestEntry:
        """Only ``path``, ``seconds`` and ``sample_rate`` required; other keys default, extras ignored."""
        optional = {key: data.get(key, default) for key, default in LENIENT_DEFAULTS.items()}
        return cls(
            path=str(data["path"]),
            seconds=float(data["seconds"]),
            sample_rate=int(data["sample_rate"]),
            **optional,
        )


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


def read_manifest(
    path: str | os.PathLike, *, lenient: bool = False, resolve: bool = False
) -> list[ManifestEntry]:
    """Read a manifest (the one reader: the corpus tools, training and evaluation all use it).

    ``lenient`` (training): only ``path``, ``seconds`` and ``sample_rate`` are required
    (:meth:`ManifestEntry.lenient`); otherwise every line has exactly the keys above. ``resolve``: each
    ``path`` becomes an absolute :class:`Path` (against the manifest's folder). A missing file or a bad
    line raises :class:`ManifestError` (one line).
    """
    path = manifest_file(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest (build one with: ganvoice corpus build --out DIR)")
    parse = ManifestEntry.lenient if lenient else ManifestEntry.from_dict
    entries = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = parse(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                raise ManifestError(
                    f"{path}:{number}: bad manifest line ({type(exc).__name__}: {exc})"
                ) from None
            entries.append(replace(entry, path=path.parent / entry.path) if resolve else entry)
    return entries
