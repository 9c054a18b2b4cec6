"""Atomic file writes (standard library only, so :mod:`ganvoice.realtime` may use it too).

:func:`atomic_write` opens a temporary file beside the target, hands it out, and on success sets its
mode and renames it over the target with ``os.replace``; on any failure the temporary file is removed,
so a reader never sees a half-written file and nothing is left behind.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ganvoice.errors import GanvoiceError

#: Mode of files meant to be shared (results, checkpoints, models); ``mkstemp`` would leave them 0600.
SHARED_MODE = 0o644
#: One-line message for a missing output folder; ``{path}`` is the file, ``{folder}`` its folder.
OUTPUT_FOLDER_MISSING = "output folder {folder!r} does not exist"
#: The same, led by the file's path.
FILE_FOLDER_MISSING = "{path}: folder {folder} does not exist"


def require_folder(
    path: str | os.PathLike, message: str = OUTPUT_FOLDER_MISSING, error: type[Exception] = GanvoiceError
) -> None:
    """Raise ``error(message)`` (one line) unless the folder that is to hold ``path`` exists."""
    path = Path(path)
    if not path.parent.is_dir():
        raise error(message.format(path=path, folder=str(path.parent)))


@functools.lru_cache(maxsize=1)
def umask_mode() -> int:
    """0o666 less the process umask: the mode ``open()`` would have given a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_write(
    path: str | os.PathLike,
    *,
    text: bool = False,
    mode: int | None = SHARED_MODE,
    missing_folder: str | None = OUTPUT_FOLDER_MISSING,
    error: type[Exception] = GanvoiceError,
    make_folder: bool = False,
) -> Iterator[IO]:
    """Yield a handle on a temporary file beside ``path``; on success it becomes ``path``.

    ``text`` opens it for UTF-8 text instead of bytes. ``mode`` is set before the rename (``None`` keeps
    ``mkstemp``'s owner-only 0600). A missing folder raises ``error(missing_folder)`` (see
    :func:`require_folder`), or is created with ``make_folder``; with ``missing_folder=None`` and no
    ``make_folder`` it surfaces as ``mkstemp``'s ``FileNotFoundError``.
    """
    path = Path(path)
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif missing_folder is not None:
        require_folder(path, missing_folder, error)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w" if text else "wb", encoding="utf-8" if text else None) as handle:
            yield handle
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, **options) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_write` (same options); returns the path."""
    with atomic_write(path, **options) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, **options) -> Path:
    """Write ``text`` as UTF-8 to ``path`` through :func:`atomic_write` (same options); returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"), **options)


def atomic_write_json(path: str | os.PathLike, data: object, *, sort_keys: bool = False, **options) -> Path:
    """Write ``data`` as indented JSON (and a final newline) through :func:`atomic_write`."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys) + "\n", **options)
