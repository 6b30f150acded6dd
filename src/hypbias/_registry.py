"""A name -> factory registry filled by decorators (models, datasets, tracker components)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

F = TypeVar("F")


class Registry(Generic[F]):
    """Factories by name, in registration order.

    Parameters
    ----------
    setting : how users name the choice in errors, e.g. ``"The 'data.name' setting"``.
    """

    def __init__(self, setting: str) -> None:
        self.setting = setting
        self._factories: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator registering a factory under ``name`` (a name can be registered once)."""

        def deco(factory: F) -> F:
            if name in self._factories:
                raise ValueError(f"{name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return deco

    def get(self, name: str) -> F:
        """The factory of ``name``, or a ValueError listing the registered names."""
        if name not in self._factories:
            raise ValueError(f"{self.setting} must be one of {', '.join(self.names())}. "
                             f"Got {name!r} instead.")
        return self._factories[name]

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[F]:
        return iter(self._factories.values())


def import_submodules(package: str) -> list[str]:
    """Import every module of ``package`` (its files register themselves); returns their names.

    A plug-in family (tracker components, report sections) is a folder: adding a file is enough,
    nothing lists the files by hand.
    """
    pkg = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
