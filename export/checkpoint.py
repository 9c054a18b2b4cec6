"""The generator inside a checkpoint file: ours (any variant) or an official HiFi-GAN ``generator_vN``."""

from __future__ import annotations

import json
from pathlib import Path

from ganvoice.errors import GanvoiceError
from ganvoice.models.base import Generator, build_generator, variant_names
from ganvoice.models.hifigan import config_from_official_json, load_official_state_dict
from ganvoice.train.checkpoint import load_weights, read_checkpoint_file


def read_any_checkpoint(path: str) -> dict:
    """Any checkpoint file, ours or an official HiFi-GAN one (unpickled with weights_only=False).

    Not :func:`ganvoice.train.checkpoint.load_checkpoint` (ganvoice training checkpoints only, weights only).
    """
    return read_checkpoint_file(
        path,
        weights_only=False,
        missing="checkpoint {path!r} not found",
        unreadable="{path}: not a readable checkpoint ({error})",
    )


def generator_from_checkpoint(
    path: str, official_config: str | None = None, overrides: dict | None = None
) -> tuple[Generator, int]:
    """Build and load the generator stored in ``path``; returns ``(generator, training step)``.

    ``overrides`` change the stored generator config before building: options without weights of their
    own (e.g. ``fast``'s ``consistency_iterations``, ``nnls_iterations``) can change at export time; any
    other change fails the weight load in one line."""
    checkpoint = read_any_checkpoint(path)
    if not isinstance(checkpoint, dict) or "generator" not in checkpoint:
        raise GanvoiceError(f"{path}: no 'generator' weights in this checkpoint")
    if "generator_variant" not in checkpoint:
        return _official_hifigan(checkpoint, path, official_config), 0
    variant = checkpoint["generator_variant"]
    if variant not in variant_names():
        raise GanvoiceError(f"{path}: unknown variant {variant!r}; known: {', '.join(variant_names())}")
    config = {**(checkpoint.get("generator_config") or {}), **(overrides or {})}
    try:
        generator = build_generator(variant, config)
    except (TypeError, ValueError, KeyError, GanvoiceError) as exc:
        raise GanvoiceError(f"{path}: its generator config does not build a {variant!r} ({exc})") from None
    if not isinstance(checkpoint["generator"], dict):
        raise GanvoiceError(f"{path}: its 'generator' entry is not a set of weights")
    load_weights(generator, checkpoint["generator"], "generator", Path(path))
    return generator, int(checkpoint.get("step", 0))


def _official_hifigan(checkpoint: dict, path: str, official_config: str | None) -> Generator:
    config_path = Path(official_config) if official_config else Path(path).with_name("config.json")
    if not config_path.is_file():
        raise GanvoiceError(
            f"{path} looks like an official HiFi-GAN checkpoint; pass its config.json with --config"
        )
    data = json.loads(config_path.read_text())
    overrides = config_from_official_json(data)
    variant = {"1": "hifigan-v1", "2": "hifigan-v3"}[overrides["resblock"]]
    generator = build_generator(variant, overrides)
    load_official_state_dict(generator, checkpoint["generator"])
    return generator
