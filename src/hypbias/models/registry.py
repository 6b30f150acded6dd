"""Model registry: ``create(name, num_classes, **kw)`` (one file per model family registers its names)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from hypbias._registry import Registry
from hypbias.models.base import Classifier

ModelFactory = Callable[..., Classifier]
MODELS: Registry[ModelFactory] = Registry("The 'name' parameter of create")
ADAPTERS: Registry[ModelFactory] = Registry("The adapter prefix of create")


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering ``factory(num_classes, **kw) -> Classifier`` under ``name``."""
    return MODELS.register(name)


def register_prefix(prefix: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register ``factory(name, num_classes, **kw)`` for every name ``"<prefix>:<name>"`` (adapters)."""
    return ADAPTERS.register(prefix)


def list_models() -> list[str]:
    """Registered model names, and ``"<prefix>:*"`` for each adapter family."""
    return MODELS.names() + [f"{p}:*" for p in ADAPTERS.names()]


def factory_parameters(name: str) -> set[str]:
    """Keyword parameters of a built-in model's factory (empty for adapters)."""
    return set(inspect.signature(MODELS.get(name)).parameters) if name in MODELS else set()


def create(name: str, num_classes: int, **kwargs: Any) -> Classifier:
    """Build a registered model.

    >>> m = create("mlp", num_classes=10, in_features=32)
    >>> m.head.weight.shape
    torch.Size([10, 256])
    """
    prefix, sep, inner = name.partition(":")
    if sep and prefix in ADAPTERS:
        return ADAPTERS.get(prefix)(inner, num_classes, **kwargs)
    if name not in MODELS:
        raise ValueError(f"The 'name' parameter of create must be one of {', '.join(list_models())}. "
                         f"Got {name!r} instead.")
    return MODELS.get(name)(num_classes, **kwargs)
