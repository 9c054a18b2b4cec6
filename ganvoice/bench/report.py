"""A benchmark's result: JSON with stable keys, a Markdown table, and atomic file output."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ganvoice.bench.machine import machine_line

#: Version of the JSON layout below; bump it when a key changes meaning or disappears.
SCHEMA_VERSION = 1
#: Significant digits of floats in Markdown tables.
TABLE_DIGITS = 4


@dataclass(frozen=True)
class Column:
    """One Markdown column: the row key it shows and its header."""

    key: str
    header: str


@dataclass
class Result:
    """Rows of one benchmark plus everything needed to read them later.

    ``samples`` holds raw per-block times (ms) by row label for the plots; it is not written to JSON.
    """

    benchmark: str
    title: str
    machine: dict
    settings: dict
    rows: list[dict]
    columns: list[Column]
    summary: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    created_utc: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "benchmark": self.benchmark,
            "created_utc": self.created_utc,
            "machine": self.machine,
            "settings": self.settings,
            "rows": self.rows,
            "summary": self.summary,
            "notes": self.notes,
        }

    def to_json(self) -> str:
        return json.dumps(_jsonable(self.to_dict()), indent=2, allow_nan=False) + "\n"

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", "", f"Machine: {machine_line(self.machine)}", ""]
        lines += table(self.rows, self.columns)
        if self.summary:
            lines += [""] + [f"- **{key}**: {_cell(value)}" for key, value in self.summary.items()]
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def table(rows: list[dict], columns: list[Column]) -> list[str]:
    """Markdown table lines of ``rows`` showing ``columns``."""
    lines = ["| " + " | ".join(c.header for c in columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c.key)) for c in columns) + " |" for row in rows]
    return lines


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{TABLE_DIGITS}g}"
    return str(value)


def _jsonable(value):
    """Plain JSON types: numpy scalars to Python, NaN/inf to ``None``, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
