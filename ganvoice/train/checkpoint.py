"""Checkpoints: atomic writes, the last k plus the best, exact resume, fine-tuning.

A checkpoint is a plain ``torch.save`` dict that loads with ``weights_only=True``. Keys read by the
exporter: ``generator_variant``, ``generator_config`` (plain dict of overrides for ``make_config``, the
MelSpec as a dict), ``generator`` (state_dict) and ``step``.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import torch

from ganvoice import __version__
from ganvoice.errors import GanvoiceError
from ganvoice.fileio import SHARED_MODE, atomic_write, atomic_write_text

FORMAT = "ganvoice-checkpoint"
FORMAT_VERSION = 1
STEP_PATTERN = re.compile(r"^step_(\d+)\.pt$")
BEST_NAME = "best.pt"
CHECKPOINT_MODE = SHARED_MODE  # mkstemp creates 0600; checkpoints are meant to be shared


def checkpoint_dir(out: Path) -> Path:
    return Path(out) / "checkpoints"


def step_checkpoints(out: Path) -> list[Path]:
    """``out/checkpoints/step_*.pt``, oldest first."""
    folder = checkpoint_dir(out)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(out: Path) -> Path | None:
    found = step_checkpoints(out)
    return found[-1] if found else None


def resume_checkpoint(out: Path) -> Path | None:
    """What ``--resume`` continues from: the newest ``step_*.pt``, else ``best.pt`` (else ``None``)."""
    latest = latest_checkpoint(out)
    if latest is not None:
        return latest
    best = checkpoint_dir(out) / BEST_NAME
    return best if best.is_file() else None


def remove_partial_files(out: Path) -> list[Path]:
    """Delete the temp files of checkpoint writes that never finished (a killed run); returns them.

    :func:`atomic_save` writes ``.NAME.XXXX.tmp`` beside ``NAME`` and renames it when complete, so a
    leftover one is never a checkpoint. Call it when a run starts: its own writes are not under way.
    """
    folder = checkpoint_dir(out)
    partial = sorted(folder.glob(".*.pt.*.tmp")) if folder.is_dir() else []
    for path in partial:
        path.unlink(missing_ok=True)
    return partial


def trim_log(path: Path, step: int) -> int:
    """Drop ``log.jsonl`` records after ``step`` (logged past the checkpoint a resume continues from).

    Unreadable lines (a record cut short by a kill) go too. Returns how many lines were dropped.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line)
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(f"{line}\n" for line in kept), mode=SHARED_MODE)
    return len(lines) - len(kept)


def atomic_save(payload: dict, path: Path) -> None:
    """``torch.save`` to a temp file in the same folder, then ``os.replace`` (never a half-written file)."""
    with atomic_write(path, mode=CHECKPOINT_MODE, make_folder=True) as handle:
        torch.save(payload, handle)


def rng_state() -> dict:
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *numpy_state[2:]],
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(_tuples(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def step_name(step: int) -> str:
    return f"step_{step:09d}.pt"


def save_step_checkpoint(payload: dict, out: Path, keep_last: int) -> Path:
    """Write ``step_{step}.pt`` and delete the oldest beyond ``keep_last`` (``best.pt`` is kept apart)."""
    path = checkpoint_dir(out) / step_name(payload["step"])
    atomic_save(payload, path)
    for old in step_checkpoints(out)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def save_best(payload: dict, out: Path) -> Path:
    path = checkpoint_dir(out) / BEST_NAME
    atomic_save(payload, path)
    return path


def read_checkpoint_file(path: str | Path, *, weights_only: bool, missing: str, unreadable: str) -> object:
    """``torch.load`` ``path`` on the CPU; a missing or unreadable file is a one-line :class:`GanvoiceError`.

    ``missing`` and ``unreadable`` are the messages, formatted with ``path`` (as given) and, for
    ``unreadable``, ``error`` (the exception's class name).
    """
    if not Path(path).is_file():
        raise GanvoiceError(missing.format(path=path))
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # noqa: BLE001 -- torch raises many kinds for a bad file
        raise GanvoiceError(unreadable.format(path=path, error=type(exc).__name__)) from exc


def load_checkpoint(path: str | Path) -> dict:
    """Load a ganvoice checkpoint on the CPU; a missing or foreign file is a one-line error."""
    path = Path(path)
    payload = read_checkpoint_file(
        path,
        weights_only=True,
        missing="no checkpoint at {path}",
        unreadable="{path} is not a readable checkpoint ({error})",
    )
    if not isinstance(payload, dict) or "generator" not in payload or "generator_variant" not in payload:
        raise GanvoiceError(f"{path} is not a ganvoice checkpoint")
    return payload


def check_variant(payload: dict, variant: str, path: Path) -> None:
    found = payload["generator_variant"]
    if found != variant:
        raise GanvoiceError(f"{path} holds a {found!r} generator, the recipe trains {variant!r}")


def weights_mismatch(module: torch.nn.Module, weights: dict) -> str:
    """Why ``weights`` do not load into ``module`` strictly, in a few words ("" when they do)."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in weights]
    unexpected = [key for key in weights if key not in expected]
    reshaped = [
        key
        for key in expected
        if key in weights and tuple(getattr(weights[key], "shape", ())) != tuple(expected[key].shape)
    ]
    parts = [
        f"{len(keys)} {what} (first: {keys[0]!r})"
        for keys, what in ((missing, "missing"), (unexpected, "unexpected"), (reshaped, "of another shape"))
        if keys
    ]
    return "; ".join(parts)


def load_weights(module: torch.nn.Module, weights: dict, what: str, path: Path) -> None:
    """``load_state_dict`` (strict) with a one-line error when the shapes or names differ."""
    detail = weights_mismatch(module, weights)
    if detail:
        raise GanvoiceError(f"{path}: {what} weights do not fit this recipe's config ({detail})")
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        detail = lines[1].strip()[:200] if len(lines) > 1 else lines[0][:200] if lines else ""
        raise GanvoiceError(f"{path}: {what} weights do not fit this recipe's config ({detail})") from None


def payload_header(variant: str, generator_config: dict, step: int) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ganvoice_version": __version__,
        "generator_variant": variant,
        "generator_config": generator_config,
        "step": step,
    }


FINETUNE_KEYS = (
    "format",
    "format_version",
    "ganvoice_version",
    "generator_variant",
    "generator_config",
    "step",
)
FINETUNE_KEYS += ("generator_info", "discriminator_config", "recipe")
# The schedule travels too, so ``--continue`` goes on at the same step and learning rate (small dicts).
FINETUNE_KEYS += ("scheduler_g", "scheduler_d", "best_val", "averaged_steps")


def save_finetune_checkpoint(source: str | Path, target: str | Path, half: bool = True) -> Path:
    """The compact checkpoint: generator + discriminator weights of ``source``, its step, LR schedule and
    best validation value, without optimizer state. ``--init`` reads its weights (fine-tuning from step 0);
    ``--continue`` also resumes its step and schedule (fresh optimizer moments).

    ``half`` stores the weights as float16 (half the size; loading casts them back to float32).
    """
    payload = load_checkpoint(source)
    slim = {key: payload[key] for key in FINETUNE_KEYS if key in payload}
    cast = (lambda t: t.half() if t.is_floating_point() else t) if half else (lambda t: t)
    for part in ("generator", "discriminators"):
        if payload.get(part):
            slim[part] = {name: cast(tensor) for name, tensor in payload[part].items()}
    atomic_save(slim, Path(target))
    return Path(target)


def average_checkpoints(sources: list[str | Path], target: str | Path) -> Path:
    """A checkpoint whose generator weights are the mean of ``sources``' (the same weight names and
    shapes; the last source gives everything else: config, step, schedule, discriminators). Neighbouring
    checkpoints of one run differ by noise that averaging removes, as EMA weights do."""
    payloads = [load_checkpoint(path) for path in sources]
    if not payloads:
        raise GanvoiceError("average_checkpoints needs at least one checkpoint")
    last = payloads[-1]
    shapes = {name: tuple(t.shape) for name, t in last["generator"].items()}
    for path, payload in zip(sources, payloads):
        if {name: tuple(t.shape) for name, t in payload["generator"].items()} != shapes:
            raise GanvoiceError(f"{path}: other generator weights than {sources[-1]}; cannot average them")
    averaged = dict(last)
    averaged["generator"] = {
        name: torch.stack([p["generator"][name].float() for p in payloads]).mean(0).to(tensor.dtype)
        if tensor.is_floating_point()
        else tensor
        for name, tensor in last["generator"].items()
    }
    averaged["averaged_steps"] = [int(p["step"]) for p in payloads]
    atomic_save(averaged, Path(target))
    return Path(target)
