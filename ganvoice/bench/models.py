"""The models a benchmark runs: registered variants (random weights, exported once into a cache),
the bundled default model, and ``.onnx`` files given by path.

Only exporting needs torch (imported lazily); a base install benchmarks ``.onnx`` files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ganvoice import __version__
from ganvoice.assets import bundled_model_path
from ganvoice.errors import GanvoiceError
from ganvoice.modelmeta import ModelMetadata
from ganvoice.realtime.model import read_metadata

#: ``compare`` runs these by default: the project's default generator, HiFi-GAN V1/V2/V3, seed-mlp.
DEFAULT_VARIANT = "fast"
REFERENCE_VARIANT = "hifigan-v3"
COMPARE_VARIANTS = (DEFAULT_VARIANT, "hifigan-v1", "hifigan-v2", REFERENCE_VARIANT, "seed-mlp")
BUNDLED_LABEL = "bundled-default"
#: Hex digits of the cache key kept in a cached file's name.
CACHE_KEY_DIGITS = 12
ONNX_SUFFIX = ".onnx"

ORIGIN_RANDOM = "random-weights"
ORIGIN_FILE = "file"
ORIGIN_BUNDLED = "bundled"


@dataclass(frozen=True)
class BenchModel:
    """One model under test: a ``label`` for tables, its file, and where it came from."""

    label: str
    path: Path
    origin: str  # ORIGIN_RANDOM | ORIGIN_FILE | ORIGIN_BUNDLED
    metadata: ModelMetadata
    seed: int | None = None  # the random-weights seed of an exported variant
    overrides: dict | None = None  # its config overrides (small test models)

    @property
    def variant(self) -> str:
        return self.metadata.variant

    @property
    def parameters(self) -> int | None:
        return self.metadata.extra.get("parameters")

    def describe(self) -> dict:
        """Row fields shared by every benchmark."""
        return {
            "model": self.label,
            "variant": self.variant,
            "origin": self.origin,
            "parameters": self.parameters,
            "sample_rate": self.metadata.sample_rate,
            "delay_ms": round(self.metadata.delay_ms, 3),
        }


def torch_available() -> bool:
    """Whether torch is installed (checked without importing it)."""
    return importlib.util.find_spec("torch") is not None


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ganvoice/bench`` (``~/.cache/ganvoice/bench``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganvoice" / "bench"


def bundled_model() -> Path | None:
    """The bundled ``ganvoice/assets/default.onnx``, when this install has one."""
    path = bundled_model_path()
    return path if path.is_file() else None


def is_path_spec(spec: str) -> bool:
    """A model given as a file (``*.onnx`` or anything with a folder) rather than a variant name."""
    return spec.endswith(ONNX_SUFFIX) or os.sep in spec or Path(spec).is_file()


def _source_digest() -> str:
    """Digest of the code that decides what an exported variant contains (models + exporter).

    Found with ``find_spec``, so a cache hit imports neither torch nor the exporter.
    """
    models = importlib.util.find_spec("ganvoice.models")
    exporter = importlib.util.find_spec("ganvoice.export.onnx_export")
    files = [
        Path(p) for folder in models.submodule_search_locations for p in sorted(Path(folder).glob("*.py"))
    ]
    digest = hashlib.sha256(__version__.encode())
    for path in [*files, Path(exporter.origin)]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(variant: str, seed: int, overrides: dict | None) -> str:
    payload = json.dumps({"variant": variant, "seed": seed, "overrides": overrides or {}}, sort_keys=True)
    digest = hashlib.sha256(payload.encode())
    digest.update(_source_digest().encode())
    return digest.hexdigest()[:CACHE_KEY_DIGITS]


def export_cached(variant: str, cache_dir: Path, seed: int = 0, overrides: dict | None = None) -> Path:
    """``variant`` with random weights (``seed``), exported into ``cache_dir`` once; returns the file.

    A cached export is used without torch; exporting needs it.
    """
    path = Path(cache_dir) / f"{variant}-seed{seed}-{cache_key(variant, seed, overrides)}{ONNX_SUFFIX}"
    if path.is_file():
        return path
    if not torch_available():
        raise GanvoiceError(
            f"model {variant!r} is a variant name: exporting it needs torch "
            "(pip install 'ganvoice[train]'); or pass an exported .onnx file"
        )
    from ganvoice.export.onnx_export import export_variant

    path.parent.mkdir(parents=True, exist_ok=True)
    export_variant(variant, path, seed=seed, overrides=overrides)  # writes atomically
    return path


def _unique(label: str, taken: set[str]) -> str:
    candidate, n = label, 2
    while candidate in taken:
        candidate, n = f"{label}#{n}", n + 1
    taken.add(candidate)
    return candidate


def resolve_models(
    specs: list[str],
    cache_dir: Path | None = None,
    seed: int = 0,
    include_bundled: bool = False,
    overrides: dict[str, dict] | None = None,
) -> list[BenchModel]:
    """Models for ``specs`` (variant names or ``.onnx`` paths), plus the bundled model if asked and present.

    ``overrides`` maps a variant to config overrides (small test models); labels are unique.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    taken: set[str] = set()
    models = []
    for spec in specs:
        if is_path_spec(spec):
            path = Path(spec)
            models.append(BenchModel(_unique(path.stem, taken), path, ORIGIN_FILE, read_metadata(path)))
        else:
            config = (overrides or {}).get(spec)
            path = export_cached(spec, cache_dir, seed, config)
            label = _unique(spec, taken)
            models.append(BenchModel(label, path, ORIGIN_RANDOM, read_metadata(path), seed, config))
    bundled = bundled_model() if include_bundled else None
    if bundled is not None:
        label = _unique(BUNDLED_LABEL, taken)
        models.append(BenchModel(label, bundled, ORIGIN_BUNDLED, read_metadata(bundled)))
    if not models:
        raise GanvoiceError("no models to benchmark: name a variant or pass an .onnx file")
    return models


def find_variant(models: list[BenchModel], variant: str) -> BenchModel | None:
    """The model labelled ``variant``, else the first whose metadata names that variant."""
    for model in models:
        if model.label == variant:
            return model
    return next((m for m in models if m.variant == variant), None)
