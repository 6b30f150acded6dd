"""A name -> factory registry filled by decorators (models, datasets, tracker components)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable)


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
