"""Selections of the long-format metrics table (columns :data:`hypbias.metrics.rows.COLUMNS`).

The report's figures, the findings and ``compare`` all read the same table; these functions are
the only places that know how to pick a metric's rows, fold random draws into their mean, and order
the analysed layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from hypbias.labelspace.spaceset import space_order


def metric_rows(metrics: pd.DataFrame, metric: str, split: str | None = None) -> pd.DataFrame:
    """Whole-model rows (``layer == ""``) of ``metric``, in ``split`` (every split when None)."""
    sel = metrics[(metrics.metric == metric) & (metrics.layer == "")]
    return sel if split is None else sel[sel.split == split]


def default_split(rows: pd.DataFrame, preferred: str = "train") -> str | None:
    """The split of ``rows`` to show: ``preferred`` when present, else the first one; None if empty."""
    splits = list(dict.fromkeys(rows.split))
    if not splits:
        return None
    return preferred if preferred in splits else str(splits[0])


def space_curves(metrics: pd.DataFrame, metric: str, split: str | None = None) -> pd.DataFrame:
    """Epochs × spaces table of one whole-model metric, spaces in :func:`space_order`.

    The random draws ``R<n>#k`` are averaged into their ``R<n>`` column (a stored ``R<n>`` row,
    the same mean, is averaged with them to the same value).
    """
    sel = metric_rows(metrics, metric, split)
    if sel.empty:
        return pd.DataFrame()
    sel = sel.assign(space=sel.space.str.split("#").str[0])
    wide = sel.pivot_table(index="epoch", columns="space", values="value", aggfunc="mean",
                           dropna=False)  # a space whose values are all NaN keeps its column
    return wide[space_order(sel.space)].sort_index()


def layer_rows(metrics: pd.DataFrame, metric: str, split: str | None = None) -> pd.DataFrame:
    """Per-layer rows of ``metric`` in ``split`` (default: the first split holding them).

    Raises ``ValueError`` naming the metric when the table holds none.
    """
    sel = metrics[(metrics.metric == metric) & (metrics.layer.fillna("") != "")]
    if sel.empty:
        raise ValueError(f"The metrics table has no per-layer '{metric}' rows.")
    split = sel.split.iloc[0] if split is None else split
    sel = sel[sel.split == split]
    if sel.empty:
        raise ValueError(f"The metrics table has no per-layer '{metric}' rows for split {split!r}.")
    return sel


def layer_order(metrics: pd.DataFrame) -> list[str]:
    """Layers in order of first appearance (bottom to top), skipping rows without a layer."""
    layers = metrics.layer.fillna("")
    return list(dict.fromkeys(layers[layers != ""]))


def normalised_depth(layers: Sequence[str]) -> dict[str, float]:
    """Layer -> l / (L − 1) for the l-th of L layers (0 for a single layer)."""
    n = len(layers)
    return {name: (i / (n - 1) if n > 1 else 0.0) for i, name in enumerate(layers)}


__all__ = ["default_split", "layer_order", "layer_rows", "metric_rows", "normalised_depth",
           "space_curves"]
