"""Accuracy curves of every label space and their convergence epochs, from stored confusion matrices.

Greedy accuracy in any space is a sum over the fine confusion matrix (Eq. 3–7), so the curves of
H, every S_n and every random draw R_n follow from ``confusion.npz`` without another pass over the
data. Space names follow :mod:`hypbias.labelspace.spaceset`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hypbias.labelspace import LabelSpace, SpaceSet
from hypbias.metrics.accuracy import (
    convergence_epoch,
    label_space_accuracy,
    relative_accuracy,
    relative_gain,
    residual_relative_error,
)
from hypbias.metrics.rows import COLUMNS

DERIVED_METRICS = ("accuracy", "relative_accuracy", "relative_gain", "residual_relative_error",
                   "theoretical_accuracy")
"""Metrics :func:`space_metrics` derives from confusion matrices (recomputed, never stored state)."""


def space_metrics(confusion: np.ndarray, spaces: SpaceSet, split: str) -> pd.DataFrame:
    """Every accuracy-derived metric for every space, from one stack of confusion matrices.

    Parameters
    ----------
    confusion : array of shape (E, C, C), epoch 0 first.
    spaces : the experiment's spaces.
    split : the split name written in the rows.

    Returns
    -------
    Long-format DataFrame with :data:`hypbias.metrics.rows.COLUMNS`: metrics ``accuracy``,
    ``relative_accuracy``, ``relative_gain``, ``residual_relative_error`` for H, every S, every
    draw and the draws' mean ``R<n>``, and ``theoretical_accuracy`` (Eq. 22) for the random spaces.
    """
    epochs = np.arange(confusion.shape[0])
    counts = confusion[0].sum(axis=1)  # samples per true class, the same at every epoch
    acc_h = label_space_accuracy(confusion)
    frames: list[pd.DataFrame] = []

    def emit(name: str, curves: dict[str, np.ndarray]) -> None:
        for metric, values in curves.items():
            frames.append(pd.DataFrame({"epoch": epochs, "split": split, "space": name,
                                        "metric": metric, "value": values, "layer": ""}))

    identity = LabelSpace.identity(confusion.shape[-1])
    emit("H", _curves(acc_h, identity.chance_accuracy(counts)))
    for name, space in spaces.hypernyms.items():
        emit(name, _curves(label_space_accuracy(confusion, space), space.chance_accuracy(counts)))
        draws = spaces.randoms.get(name, [])
        if not draws:
            continue
        per_draw = []
        for rname, rspace in draws:
            curves = _curves(label_space_accuracy(confusion, rspace), rspace.chance_accuracy(counts))
            curves["theoretical_accuracy"] = rspace.theoretical_accuracy(acc_h, counts)
            emit(rname, curves)
            per_draw.append(curves)
        emit(spaces.random_name(name),
             {m: np.mean([d[m] for d in per_draw], axis=0) for m in per_draw[0]})
    return pd.concat(frames, ignore_index=True)[list(COLUMNS)]


def _curves(acc: np.ndarray, chance: float) -> dict[str, np.ndarray]:
    return {
        "accuracy": acc,
        "relative_accuracy": relative_accuracy(acc),
        "relative_gain": relative_gain(acc, chance),
        "residual_relative_error": residual_relative_error(acc),
    }


def convergence_summary(metrics: pd.DataFrame, spaces: SpaceSet, q: float) -> dict[str, Any]:
    """τ_q per split and space; for each R<n>, the mean and sd over its draws (sd with ddof = 1).

    Returns ``{"tau": {split: {space: epoch}}, "tau_sd": {split: {R<n>: sd}}, "draws": k}``.
    """
    acc = metrics[(metrics.metric == "accuracy") & (metrics.layer == "")]
    tau: dict[str, dict[str, float | None]] = {}
    tau_sd: dict[str, dict[str, float]] = {}
    for split, frame in acc.groupby("split", sort=False):
        wide = frame.pivot(index="epoch", columns="space", values="value").sort_index()
        epochs = wide.index.to_numpy()
        taus = {s: convergence_epoch(wide[s].to_numpy(), q=q, epochs=epochs) for s in wide.columns}
        split_tau: dict[str, float | None] = {}
        split_sd: dict[str, float] = {}
        for name in ["H", *spaces.hypernyms]:
            split_tau[name] = _maybe(taus[name])
            draws = [taus[r] for r, _ in spaces.randoms.get(name, [])]
            if draws:
                rname = spaces.random_name(name)
                split_tau[rname] = _maybe(np.nanmean(draws))
                split_sd[rname] = float(np.nanstd(draws, ddof=1)) if len(draws) > 1 else 0.0
                for r, _ in spaces.randoms[name]:
                    split_tau[r] = _maybe(taus[r])
        tau[str(split)] = split_tau
        tau_sd[str(split)] = split_sd
    return {"q": q, "tau": tau, "tau_sd": tau_sd,
            "draws": max((len(d) for d in spaces.randoms.values()), default=0)}


def _maybe(value: Any) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value
