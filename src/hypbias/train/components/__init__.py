"""Tracker components, one module each in this folder, built from their own config section.

A component module declares its config section (``nc:``, ``manifold:``, ``mistakes:``) as a
:class:`~hypbias.train.config.schema.Section` (every key with its type, range or choices and
default) and registers a factory for it with :func:`register_component`. The config is checked
against the declarations before anything runs; the factory receives only its parsed section and a
:class:`ComponentContext` with what the experiment provides, and returns a
:class:`~hypbias.train.tracker.TrackerComponent`, or None when the section switches it off.
:func:`components` imports every module of the folder first, so a new per-epoch metric is a new
file here plus its test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hypbias._registry import Registry, import_submodules
from hypbias.data.base import DatasetBundle
from hypbias.errors import ConfigError
from hypbias.hierarchy.tree import Hierarchy
from hypbias.labelspace.spaceset import SpaceSet
from hypbias.train.component import TrackerComponent
from hypbias.train.config.schema import Origins, Section


@dataclass
class ComponentContext:
    """What every component may read besides its own config section.

    Attributes
    ----------
    bundle : the dataset (splits, classes, hierarchy), or None in a loop of one's own (components
        that sample the data refuse to build then)
    spaces : the experiment's label spaces
    splits : the tracked evaluation splits (``track.splits``)
    seed : the run's seed
    epochs : the number of training epochs
    source : where the config was read (its file), or the :class:`Origins` of every key, named
        in errors
    progress : whether components may show progress bars
    hierarchy, num_classes : the class hierarchy and C; by default the bundle's
    """

    bundle: DatasetBundle | None
    spaces: SpaceSet
    splits: tuple[str, ...]
    seed: int
    epochs: int
    source: str | Origins = "config"
    progress: bool = False
    hierarchy: Hierarchy | None = None
    num_classes: int | None = None

    def __post_init__(self) -> None:
        if self.bundle is not None:
            self.hierarchy = self.hierarchy or self.bundle.hierarchy
            self.num_classes = self.num_classes or self.bundle.num_classes
        if self.hierarchy is None:
            raise ValueError("ComponentContext needs a bundle or a hierarchy")
        self.num_classes = self.num_classes or self.hierarchy.num_classes

    @property
    def origins(self) -> Origins:
        """Where each key of the config was set (every key from ``source`` when it is a string)."""
        return self.source if isinstance(self.source, Origins) else Origins(str(self.source))

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError naming where the dotted key was set (file or ``--set`` argument)."""
        return self.origins.error(key, message)


ComponentFactory = Callable[[Any, ComponentContext], "TrackerComponent | None"]


@dataclass(frozen=True)
class ComponentSpec:
    """A registered component: its config section's declaration and its factory."""

    schema: type[Section]
    factory: ComponentFactory

    @property
    def section(self) -> str:
        """The section's key in a config (``nc``)."""
        return self.schema.SECTION

    @property
    def defaults(self) -> dict[str, Any]:
        """Every key of the section with its default."""
        return self.schema.defaults()


COMPONENTS: Registry[ComponentSpec] = Registry("A tracker component")


def register_component(schema: type[Section]) -> Callable[[ComponentFactory], ComponentFactory]:
    """Decorator: ``factory(section, context)`` builds the component of the config section that
    ``schema`` declares (``schema.SECTION``) from that section, parsed."""

    def deco(factory: ComponentFactory) -> ComponentFactory:
        COMPONENTS.register(schema.SECTION)(ComponentSpec(schema, factory))
        return factory

    return deco


def components() -> list[ComponentSpec]:
    """Every registered component, in the folder's (alphabetical) module order."""
    import_submodules(__name__)
    return list(COMPONENTS)


def build_components(sections: Mapping[str, Any], context: ComponentContext) -> list[TrackerComponent]:
    """Every component whose section switches it on; each sees only its own section.

    ``sections``: section name -> its parsed :class:`Section` (``Config.components``) or its plain
    mapping, checked here against the declaration (missing keys take their defaults).
    """
    built = []
    for spec in components():
        section = sections.get(spec.section)
        if not isinstance(section, spec.schema):
            section = spec.schema.parse(section, context.origins)
        built.append(spec.factory(section, context))
    return [c for c in built if c is not None]
