"""Typed recipe configs, loaded from TOML; unknown keys are one-line errors.

A recipe file has the sections ``[generator]`` (``variant`` and a free ``[generator.config]`` table of
overrides for :func:`ganvoice.models.base.make_config`), ``[discriminators.NAME]`` (one table per
discriminator, overrides for its config), ``[data]`` (with ``[data.source_weights]`` and
``[data.augment]``), ``[optim]`` and ``[train]`` (with ``[train.loss_weights]``). A top-level
``base = "other.toml"`` reads that recipe first and merges this one over it; ``discriminators.NAME = false``
drops a discriminator the base has.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ganvoice.data import AugmentConfig
from ganvoice.errors import GanvoiceError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

PRECISIONS = ("fp32", "bf16")


@dataclass
class GeneratorSection:
    variant: str = "fast"
    config: dict = field(default_factory=dict)


@dataclass
class DataSection:
    segment_samples: int = 8192
    batch_size: int = 8
    num_workers: int = 0
    source_weights: dict[str, float] = field(default_factory=dict)
    augment: AugmentConfig | None = None
    val_clips: int = 16


@dataclass
class OptimSection:
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.01
    lr_decay: float = 0.99999  # exponential, per optimiser step
    grad_clip: float = 100.0  # max global grad norm; 0 = no clipping (norms are still logged)


@dataclass
class TrainSection:
    max_steps: int = 100_000
    gan_start_step: int = 0  # steps before it use only the spectral losses (no discriminator work)
    adversarial: str = "lsgan"
    loss_weights: dict[str, float] = field(default_factory=dict)
    phase_weighting: str = "magnitude"  # head-frame phase terms: "magnitude" (true |X|, mean 1) or "none"
    precision: str = "fp32"
    seed: int = 0
    log_every: int = 50
    val_every: int = 1000
    checkpoint_every: int = 1000
    keep_last: int = 3
    val_audio: int = 2  # validation clips logged as audio and mel images
    tensorboard: bool = True


@dataclass
class Recipe:
    name: str = "recipe"
    generator: GeneratorSection = field(default_factory=GeneratorSection)
    discriminators: dict[str, dict] = field(default_factory=dict)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)

    def to_dict(self) -> dict:
        return asdict(self)


SECTIONS = {"generator": GeneratorSection, "data": DataSection, "optim": OptimSection, "train": TrainSection}


def deep_merge(base: dict, overrides: dict) -> dict:
    """A copy of ``base`` with ``overrides`` merged in, recursively for tables."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _section(cls: type, data: dict, where: str):
    if not isinstance(data, dict):
        raise GanvoiceError(f"recipe: [{where}] must be a table")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise GanvoiceError(f"recipe: unknown key {where}.{unknown[0]} (known: {', '.join(sorted(known))})")
    values = dict(data)
    if cls is DataSection and "augment" in values:
        augment = values["augment"]
        values["augment"] = AugmentConfig.from_dict(augment) if augment not in (False, None) else None
    if cls is OptimSection and "betas" in values:
        values["betas"] = tuple(values["betas"])
    return cls(**values)


def recipe_from_dict(data: dict, name: str = "recipe") -> Recipe:
    """Build and check a :class:`Recipe` from a parsed TOML dict."""
    known = {"name", "discriminators", *SECTIONS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise GanvoiceError(
            f"recipe: unknown section or key {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    sections = {key: _section(cls, data.get(key, {}), key) for key, cls in SECTIONS.items()}
    discriminators = data.get("discriminators", {})
    if isinstance(discriminators, dict):  # `NAME = false` drops a discriminator that a base recipe has
        discriminators = {name: table for name, table in discriminators.items() if table is not False}
    recipe = Recipe(name=str(data.get("name", name)), discriminators=discriminators, **sections)
    check_recipe(recipe)
    return recipe


def load_recipe(path: str | Path, overrides: dict | None = None) -> Recipe:
    """Read a TOML recipe, merge ``overrides`` (a dict shaped like the file), check it."""
    path = Path(path)
    data = _read_with_base(path, seen=())
    data.setdefault("name", path.stem)
    return recipe_from_dict(deep_merge(data, overrides or {}), name=path.stem)


def _read_with_base(path: Path, seen: tuple[Path, ...]) -> dict:
    """The TOML at ``path``; a top-level ``base = "other.toml"`` (relative to it) is read first and
    this file's tables are merged over it (recursively: a base may have a base)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GanvoiceError(f"no recipe at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise GanvoiceError(f"recipe {path}: {exc}") from None
    base = data.pop("base", None)
    if base is None:
        return data
    base_path = (path.parent / str(base)).resolve()
    if base_path in seen:
        raise GanvoiceError(f"recipe {path}: base {base} includes itself")
    parent = _read_with_base(base_path, (*seen, path.resolve()))
    parent.pop("name", None)
    return deep_merge(parent, data)


def parse_assignment(text: str) -> dict:
    """``"train.batch_size=4"`` -> ``{"train": {"batch_size": 4}}`` (the value is TOML)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise GanvoiceError(f"--set wants section.key=value, not {text!r}")
    try:
        parsed = tomllib.loads(f"value = {value.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()  # a bare string
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = parsed
    return out


def check_recipe(recipe: Recipe) -> None:
    """Build every config once so bad values fail now, in one line, not mid-run."""
    from ganvoice.losses import PHASE_WEIGHTINGS, adversarial, weights_from
    from ganvoice.models.base import make_config
    from ganvoice.models.discriminators import make_discriminator_config

    generator_config = make_config(recipe.generator.variant, recipe.generator.config)
    for name, overrides in recipe.discriminators.items():
        if not isinstance(overrides, dict):
            raise GanvoiceError(f"recipe: [discriminators.{name}] must be a table")
        make_discriminator_config(name, overrides)
    adversarial(recipe.train.adversarial)
    weights_from(recipe.train.loss_weights)
    train, data = recipe.train, recipe.data
    if train.phase_weighting not in PHASE_WEIGHTINGS:
        raise GanvoiceError(f"recipe: train.phase_weighting must be one of {', '.join(PHASE_WEIGHTINGS)}")
    if train.precision not in PRECISIONS:
        raise GanvoiceError(f"recipe: train.precision must be one of {', '.join(PRECISIONS)}")
    if generator_config.conditioning == "noise" and train.gan_start_step > 0:
        raise GanvoiceError(
            "recipe: a noise-conditioned generator trains adversarially only (gan_start_step = 0)"
        )
    if train.gan_start_step < train.max_steps and not recipe.discriminators:
        raise GanvoiceError("recipe: the GAN phase needs at least one [discriminators.NAME] table")
    if data.batch_size < 1 or data.segment_samples < 1 or train.max_steps < 0:
        raise GanvoiceError("recipe: batch_size, segment_samples and max_steps must be positive")
    for name in ("log_every", "val_every", "checkpoint_every", "keep_last"):
        if getattr(train, name) < 1:
            raise GanvoiceError(f"recipe: train.{name} must be >= 1")
    if not (0.0 < recipe.optim.lr_decay <= 1.0) or not math.isfinite(recipe.optim.lr_g):
        raise GanvoiceError("recipe: optim.lr_decay must be in (0, 1]")
