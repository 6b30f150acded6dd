"""Uniform parameter validation, in the manner of scikit-learn's messages.

>>> check_int(-3, "k", "covers", low=1)
Traceback (most recent call last):
...
ValueError: The 'k' parameter of covers must be an int >= 1. Got -3 instead.

Label checks accept NumPy arrays, sequences and torch tensors alike without importing torch (a
tensor can only exist once torch is loaded). Reading values costs one reduction per check: for a
tensor on a GPU, :func:`check_label_values` synchronises once (one ``aminmax``); metadata checks
(:func:`integer_array`) never do.
"""

from __future__ import annotations

import numbers
import sys
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
    if low_open and low is not None:
        bound = f" > {low}" if high is None else f" in ({low}, {high}]"
    else:
        bound = _bounds(low, high)
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


# ---------------------------------------------------------------------------- arrays of labels
def is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _is_integer(arr: Any) -> bool:
    if is_tensor(arr):
        return not (arr.is_floating_point() or arr.is_complex()
                    or arr.dtype == sys.modules["torch"].bool)
    return np.issubdtype(arr.dtype, np.integer)


def host_array(arr: Any) -> np.ndarray:
    """``arr`` as a NumPy array; a tensor (on any device) is detached and copied to the host."""
    return arr.detach().cpu().numpy() if is_tensor(arr) else np.asarray(arr)


def _shape(arr: Any) -> tuple[int, ...]:
    return tuple(arr.shape)


def _size(arr: Any) -> int:
    return arr.numel() if is_tensor(arr) else arr.size


def integer_array(labels: Any, name: str, owner: str, *, ndim: int | None = 1,
                  length: int | None = None, allow_empty: bool = False) -> Any:
    """``labels`` as an integer array (a tensor stays a tensor), from its metadata only.

    Refuses bool, float and complex dtypes (never truncates), a number of dimensions other than
    ``ndim`` (None: any), a length other than ``length`` along the first axis, and, unless
    ``allow_empty``, no element at all. An empty NumPy array of any dtype counts as integer (``[]``
    is float64 to NumPy). Reads no value, so it never synchronises with a GPU.
    """
    arr = labels if is_tensor(labels) else np.asarray(labels)
    empty_list = not is_tensor(arr) and arr.size == 0
    if (ndim is not None and arr.ndim != ndim) or not (empty_list or _is_integer(arr)):
        kind = f"a {ndim}-d integer array" if ndim is not None else "an integer array"
        raise ValueError(
            f"The '{name}' parameter of {owner} must be {kind}. "
            f"Got shape {_shape(arr)} and dtype {arr.dtype} instead."
        )
    if length is not None and arr.shape[0] != length:
        raise ValueError(
            f"The '{name}' parameter of {owner} must have length {length}. "
            f"Got {arr.shape[0]} instead."
        )
    if not allow_empty and _size(arr) == 0:
        raise ValueError(
            f"The '{name}' parameter of {owner} must not be empty. Got shape {_shape(arr)} instead."
        )
    return arr


def range_error(name: str, owner: str, low: int, high: int | None, got: tuple[Any, Any]) -> ValueError:
    """The error for values ``got = (min, max)`` outside [low, high) (``high=None``: no upper bound)."""
    allowed = f"in [{low}, {high})" if high is not None else f">= {low}"
    return ValueError(
        f"The '{name}' parameter of {owner} must hold values {allowed}. "
        f"Got values in [{got[0]}, {got[1]}] instead."
    )


def out_of_range(got: tuple[Any, Any], low: int, high: int | None) -> bool:
    """Whether the extremes ``got = (min, max)`` leave [low, high)."""
    return got[0] < low or (high is not None and got[1] >= high)


def value_range(arr: Any) -> tuple[Any, Any]:
    """(min, max) of a non-empty array or tensor, as Python numbers (one host transfer)."""
    if is_tensor(arr):
        low, high = arr.aminmax()
        return tuple(sys.modules["torch"].stack([low, high]).tolist())
    return arr.min().item(), arr.max().item()


def check_range(arr: Any, name: str, owner: str, low: int, high: int | None) -> None:
    """Refuse values of ``arr`` (array or tensor) outside [low, high); nothing to check when empty."""
    if _size(arr):
        got = value_range(arr)
        if out_of_range(got, low, high):
            raise range_error(name, owner, low, high, got)


def check_label_values(labels: Any, name: str, owner: str, num_classes: int) -> Any:
    """Integer labels of any shape with values in [0, num_classes); a tensor stays a tensor.

    The check for :meth:`LabelSpace.apply` and other maps of labels: refuses bool and float dtypes
    and values outside [0, num_classes); accepts empty input. Returns ``labels`` as an array (a
    sequence becomes a NumPy array, dtype unchanged). Costs one ``aminmax`` (one synchronisation
    for a GPU tensor).
    """
    arr = integer_array(labels, name, owner, ndim=None, allow_empty=True)
    check_range(arr, name, owner, 0, num_classes)
    return arr


def check_labels(labels: Any, name: str, owner: str, num_classes: int, *,
                 length: int | None = None) -> np.ndarray:
    """Integer labels of shape (n,) with values in [0, num_classes), as a NumPy int64 array.

    ``length``: the n required (None: any, empty included). A tensor is copied to the host.
    """
    arr = host_array(integer_array(labels, name, owner, length=length, allow_empty=True))
    check_range(arr, name, owner, 0, num_classes)
    return arr.astype(np.int64, copy=False)


def finite_error(name: str, owner: str, values: Any) -> ValueError:
    """The error for non-finite entries of ``values`` (an array or tensor that has some)."""
    arr = host_array(values)
    bad = ~np.isfinite(arr)
    first = arr[bad].flat[0]
    return ValueError(
        f"The '{name}' parameter of {owner} must be finite. Got {int(bad.sum())} non-finite "
        f"values (the first: {first}) instead."
    )
