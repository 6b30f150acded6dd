"""Model registry: ``create(name, num_classes, **kw)`` (one file per model family registers its names)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypbias.models.base import Classifier

ModelFactory = Callable[..., Classifier]
_REGISTRY: dict[str, ModelFactory] = {}
_PREFIXES: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering ``factory(num_classes, **kw) -> Classifier`` under ``name``."""

    def deco(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return deco


def register_prefix(prefix: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register ``factory(name, num_classes, **kw)`` for every name ``"<prefix>:<name>"`` (adapters)."""

    def deco(factory: ModelFactory) -> ModelFactory:
        _PREFIXES[prefix] = factory
        return factory

    return deco


def list_models() -> list[str]:
    """Registered model names, and ``"<prefix>:*"`` for each adapter family."""
    return sorted(_REGISTRY) + sorted(f"{p}:*" for p in _PREFIXES)


def create(name: str, num_classes: int, **kwargs: Any) -> Classifier:
    """Build a registered model.

    >>> m = create("mlp", num_classes=10, in_features=32)
    >>> m.head.weight.shape
    torch.Size([10, 256])
    """
    if ":" in name:
        prefix, _, inner = name.partition(":")
        if prefix in _PREFIXES:
            return _PREFIXES[prefix](inner, num_classes, **kwargs)
    if name not in _REGISTRY:
        raise ValueError(
            f"The 'name' parameter of create must be one of {', '.join(list_models())}. "
            f"Got {name!r} instead."
        )
    return _REGISTRY[name](num_classes, **kwargs)
