"""Greedy label-space accuracy and its derived curves, from fine confusion matrices (Eq. 3–9, 35).

Everything here is vectorised over leading axes: a stack of confusion matrices of shape (E, C, C)
(one per epoch) gives curves of shape (E,); curves of shape (..., E) keep epochs on the last axis.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from hypbias._validation import check_float, check_range, integer_array
from hypbias.labelspace import LabelSpace


def _confusion(confusion: Any) -> np.ndarray:
    m = np.asarray(confusion)
    if m.ndim < 2 or m.shape[-1] != m.shape[-2]:
        raise ValueError(
            "The 'confusion' parameter must have shape (..., C, C). "
            f"Got shape {m.shape} instead."
        )
    return m


def group_confusion(confusion: Any, space: LabelSpace) -> np.ndarray:
    """Confusion matrix in label space X: G[a, b] = Σ_{t[i]=a, t[j]=b} M[i, j].

    Parameters
    ----------
    confusion : array of shape (..., C, C)
        Counts, M[i, j] = true i predicted j.
    space : LabelSpace with C classes and n groups.

    Returns
    -------
    array of shape (..., n, n), float64.
    """
    m = _confusion(confusion).astype(np.float64, copy=False)
    onehot = space.one_hot()
    return onehot.T @ m @ onehot


def label_space_accuracy(confusion: Any, space: LabelSpace | None = None) -> np.ndarray:
    """Greedy accuracy A(X) in percent (Eq. 3–7), from fine confusion matrices.

    A(X) = 100 · Σ_{i,j: t[i] = t[j]} M[i, j] / Σ M: a fine prediction counts as correct in X when it
    falls in the true class's group. ``space=None`` gives the fine accuracy A(H).

    Parameters
    ----------
    confusion : array of shape (..., C, C)
    space : LabelSpace or None

    Returns
    -------
    array of shape (...,); NaN where a matrix is empty.
    """
    m = _confusion(confusion)
    if space is not None and space.num_classes != m.shape[-1]:
        raise ValueError(
            f"The label space has {space.num_classes} classes but the confusion matrix has "
            f"{m.shape[-1]}."
        )
    total = m.sum(axis=(-2, -1), dtype=np.float64)
    if space is None:
        hits = np.trace(m, axis1=-2, axis2=-1).astype(np.float64)
    else:
        same = space.t[:, None] == space.t[None, :]
        hits = np.einsum("...ij,ij->...", m.astype(np.float64, copy=False), same)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * hits / total


def _best(a: np.ndarray) -> np.ndarray:
    """max over epochs (last axis), NaN for an all-NaN curve without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(a, axis=-1, keepdims=True)


def relative_accuracy(curve: Any) -> np.ndarray:
    """A_R(X, t) = A(X, t) / max_τ A(X, τ) (Eq. 8); epochs on the last axis."""
    a = np.asarray(curve, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return a / _best(a)


def relative_gain(curve: Any, chance: Any) -> np.ndarray:
    """G_R(X, t) = (A(X, t) − B(X)) / (A(X, T) − B(X)) (Eq. 9), T the epoch of best accuracy.

    ``chance`` is B(X) in percent, a scalar or an array broadcasting against ``curve[..., :1]``.
    """
    a = np.asarray(curve, dtype=np.float64)
    b = np.asarray(chance, dtype=np.float64)
    if b.ndim and b.shape[-1:] != (1,):
        b = b[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a - b) / (_best(a) - b)


def residual_relative_error(curve: Any) -> np.ndarray:
    """E_R(X, t) = (100 − A(X, t)) / (100 − A(X, T)) − 1 (Eq. 35); epochs on the last axis.

    Infinite where the best accuracy is exactly 100% and the current one is not.
    """
    a = np.asarray(curve, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (100.0 - a) / (100.0 - _best(a)) - 1.0


def convergence_epoch(curve: Any, q: float = 0.95, epochs: Any = None) -> np.ndarray:
    """τ_q(X): the first epoch whose relative accuracy reaches ``q`` (Fig. 4, Tables 3–4).

    Parameters
    ----------
    curve : array of shape (..., E)
        Accuracy (or relative accuracy: the result is the same) per epoch.
    q : float in (0, 1]
    epochs : int array of shape (E,), optional
        Epoch numbers (>= 0) of the columns; default ``0 .. E-1`` (column 0 = before training).

    Returns
    -------
    array of shape (...,) of epoch numbers (float, NaN for an all-NaN curve).
    """
    owner = "convergence_epoch"
    q = check_float(q, "q", owner, low=0, high=1, low_open=True)
    curve = np.asarray(curve, dtype=np.float64)
    e = curve.shape[-1] if curve.ndim else 0
    if e == 0:
        raise ValueError(f"The 'curve' parameter of {owner} must have at least one epoch on its "
                         f"last axis. Got shape {curve.shape} instead.")
    rel = relative_accuracy(curve)
    if epochs is None:
        epochs = np.arange(e)
    else:
        epochs = np.asarray(integer_array(epochs, "epochs", owner, length=e))
        check_range(epochs, "epochs", owner, 0, None)
    reached = np.nan_to_num(rel, nan=-np.inf) >= q * (1 - 1e-12)
    first = np.argmax(reached, axis=-1)
    out = epochs[first].astype(np.float64)
    return np.where(reached.any(axis=-1), out, np.nan)
