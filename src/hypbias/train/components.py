"""Registry of tracker components built from config sections (``nc:``, ``manifold:``, ...).

A factory receives the resolved config, the dataset and the experiment's label spaces and returns a
:class:`~hypbias.train.tracker.TrackerComponent`, or None when its section switches it off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypbias._registry import Registry
from hypbias.analysis.label_spaces import SpaceSet
from hypbias.data.base import DatasetBundle
from hypbias.train.tracker import TrackerComponent

ComponentFactory = Callable[[dict[str, Any], DatasetBundle, SpaceSet], "TrackerComponent | None"]
COMPONENTS: Registry[ComponentFactory] = Registry("A tracker component")


def register_component(section: str) -> Callable[[ComponentFactory], ComponentFactory]:
    """Decorator: ``factory(config, bundle, spaces)`` builds the component of config ``section``."""
    return COMPONENTS.register(section)


def build_components(config: dict[str, Any], bundle: DatasetBundle,
                     spaces: SpaceSet) -> list[TrackerComponent]:
    """Every component whose config section is switched on, in registration order."""
    return [c for factory in COMPONENTS if (c := factory(config, bundle, spaces)) is not None]


from hypbias.train import (  # noqa: E402, F401  (registration)
    collapse_tracking,
    manifold_tracking,
    mistakes_tracking,
)
