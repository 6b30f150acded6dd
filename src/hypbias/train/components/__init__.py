"""Tracker components, one module each in this folder, built from their own config section.

A component module registers a factory with :func:`register_component`, naming its config section
(``nc:``, ``manifold:``, ``mistakes:``) and that section's defaults. The factory receives only its
section (defaults filled in) and a :class:`ComponentContext` with what the experiment provides, and
returns a :class:`~hypbias.train.tracker.TrackerComponent`, or None when the section switches it
off. :func:`components` imports every module of the folder first, so a new per-epoch metric is a
new file here plus its test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hypbias._registry import Registry, import_submodules
from hypbias.data.base import DatasetBundle
from hypbias.errors import ConfigError
from hypbias.labelspace.spaceset import SpaceSet
from hypbias.train.tracker import TrackerComponent


@dataclass
class ComponentContext:
    """What every component may read besides its own config section.

    Attributes
    ----------
    bundle : the dataset (splits, classes, hierarchy)
    spaces : the experiment's label spaces
    splits : the tracked evaluation splits (``track.splits``)
    seed : the run's seed
    epochs : the number of training epochs
    source : the config file, named in errors
    progress : whether components may show progress bars
    """

    bundle: DatasetBundle
    spaces: SpaceSet
    splits: tuple[str, ...]
    seed: int
    epochs: int
    source: str = "config"
    progress: bool = False

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError naming the config file and the dotted key."""
        return ConfigError(f"{self.source}: '{key}' {message}")


ComponentFactory = Callable[[dict[str, Any], ComponentContext], "TrackerComponent | None"]


@dataclass(frozen=True)
class ComponentSpec:
    """A registered component: its config section, that section's defaults and its factory."""

    section: str
    factory: ComponentFactory
    defaults: Mapping[str, Any] = field(default_factory=dict)


COMPONENTS: Registry[ComponentSpec] = Registry("A tracker component")


def register_component(section: str, defaults: Mapping[str, Any]
                       ) -> Callable[[ComponentFactory], ComponentFactory]:
    """Decorator: ``factory(section_config, context)`` builds the component of config ``section``."""

    def deco(factory: ComponentFactory) -> ComponentFactory:
        COMPONENTS.register(section)(ComponentSpec(section, factory, dict(defaults)))
        return factory

    return deco


def components() -> list[ComponentSpec]:
    """Every registered component, in the folder's (alphabetical) module order."""
    import_submodules(__name__)
    return list(COMPONENTS)


def build_components(config: Mapping[str, Any], context: ComponentContext) -> list[TrackerComponent]:
    """Every component whose config section is switched on; each sees only its own section."""
    built = (spec.factory(dict(config[spec.section]), context) for spec in components())
    return [c for c in built if c is not None]
