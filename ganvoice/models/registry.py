"""The one registry style for models: a name -> (typed config class, defaults, build function).

Generators (:data:`ganvoice.models.base.GENERATORS`) and discriminators
(:data:`ganvoice.models.discriminators.DISCRIMINATORS`) are both :class:`Registry` objects; a module
registers a model with ``REGISTRY.register(name, ConfigClass, **defaults)(build)`` (usable as a
decorator), and a recipe's table becomes a typed config through :meth:`Registry.make_config`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from ganvoice.errors import GanvoiceError


@dataclass(frozen=True)
class Entry:
    name: str
    build: Callable[[object], object]
    config_class: type
    defaults: dict


class Registry:
    """Registered models of one kind. ``label`` names the kind in errors ("generator variant").

    ``prepare(name, values) -> values`` adapts a recipe's plain values (lists, dicts, old key names)
    before the config class is built; ``load()`` imports the modules that register entries.
    """

    def __init__(
        self,
        label: str,
        prepare: Callable[[str, dict, type], dict] | None = None,
        load: Callable[[], None] | None = None,
    ):
        self.label, self._prepare, self._load = label, prepare, load
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, config_class: type, **defaults) -> Callable:
        """``register(name, Config, **defaults)(build)``: ``build(config)`` makes the model."""

        def wrap(build):
            self._entries[name] = Entry(name, build, config_class, defaults)
            return build

        return wrap

    def _all(self) -> dict[str, Entry]:
        if self._load is not None:
            self._load()
        return self._entries

    def names(self) -> list[str]:
        return sorted(self._all())

    def __contains__(self, name: str) -> bool:
        return name in self._all()

    def entry(self, name: str) -> Entry:
        entries = self._all()
        if name not in entries:
            raise GanvoiceError(f"unknown {self.label} {name!r}; known: {', '.join(sorted(entries))}")
        return entries[name]

    def make_config(self, name: str, overrides: dict | None = None):
        """Typed config for ``name``: registry defaults, then ``overrides``; unknown keys are an error."""
        entry = self.entry(name)
        values = {**entry.defaults, **(overrides or {})}
        if self._prepare is not None:
            values = self._prepare(name, values, entry.config_class)
        unknown = sorted(set(values) - {f.name for f in fields(entry.config_class)})
        if unknown:
            raise GanvoiceError(f"unknown config keys for {self.label} {name!r}: {', '.join(unknown)}")
        return entry.config_class(**values)

    def build(self, name: str, overrides: dict | None = None):
        """The model ``name`` built from :meth:`make_config`."""
        return self.entry(name).build(self.make_config(name, overrides))
