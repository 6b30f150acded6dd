"""Uniform parameter validation, in the manner of scikit-learn's messages.

>>> check_int(-3, "k", "covers", low=1)
Traceback (most recent call last):
...
ValueError: The 'k' parameter of covers must be an int >= 1. Got -3 instead.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


def check_int(value: Any, name: str, owner: str, *, low: int | None = None,
              high: int | None = None) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` naming the parameter and its owner."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and (low is None or value >= low) and (high is None or value <= high):
        return int(value)
    raise ValueError(
        f"The '{name}' parameter of {owner} must be an int{_bounds(low, high)}. Got {value!r} instead."
    )


def check_float(value: Any, name: str, owner: str, *, low: float | None = None,
                high: float | None = None, low_open: bool = False) -> float:
    """Return ``value`` as a float within bounds (``low_open`` excludes ``low``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if ok:
        return float(value)
    bound = f" > {low}" if (low_open and low is not None and high is None) else _bounds(low, high)
    raise ValueError(
        f"The '{name}' parameter of {owner} must be a finite float{bound}. Got {value!r} instead."
    )


def check_choice(value: Any, name: str, owner: str, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``."""
    choices = list(choices)
    if value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices)
    raise ValueError(
        f"The '{name}' parameter of {owner} must be one of {listed}. Got {value!r} instead."
    )


def check_labels(labels: Any, name: str, owner: str, num_classes: int) -> np.ndarray:
    """Return integer labels of shape (n,) with values in [0, num_classes)."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(
            f"The '{name}' parameter of {owner} must be a 1-d integer array. "
            f"Got shape {arr.shape} and dtype {arr.dtype} instead."
        )
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"The '{name}' parameter of {owner} must hold values in [0, {num_classes}). "
            f"Got values in [{arr.min()}, {arr.max()}] instead."
        )
    return arr.astype(np.int64, copy=False)
