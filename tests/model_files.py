"""Test helper: copies of exported models with their ganvoice metadata removed or edited."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import onnx

from ganvoice.modelmeta import METADATA_KEY


def with_metadata(src: Path, dst: Path, edit: Callable[[dict], dict] | None) -> Path:
    """A copy of model ``src`` whose ganvoice metadata is removed (``edit=None``) or edited."""
    model = onnx.load(src)
    entry = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    if edit is None:
        model.metadata_props.remove(entry)
    else:
        entry.value = json.dumps(edit(json.loads(entry.value)))
    onnx.save(model, dst)
    return dst
