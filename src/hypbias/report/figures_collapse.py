"""Neural collapse figures, like the paper's Fig. 5 (NC1, NC3, NC4) and Fig. 11 (NC2).

Every function takes the long-format metrics table (columns ``epoch, split, space, metric, value,
layer``) as written by the tracker, with NC rows named by the keys of
:func:`hypbias.metrics.collapse.neural_collapse` plus ``nc4``. One line per label space: H in
black, each hypernym space in its own color, and the random draws ``R<n>#<k>`` of a space as their
mean (dashed, same color as ``S<n>``) with a ±1 sd band (ddof = 1). Functions return None when the
table holds no NC rows (NC tracking is off by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.figure import Figure

from hypbias.analysis.tables import default_split, metric_rows
from hypbias.report.figures import outside_legend, plot_space_curves

COLLAPSE_PANELS = (("nc1", "NC1: tr(Σ_W Σ_B†) / K, K = groups of each space", "log"),
                   ("nc3", "NC3: ‖W/‖W‖ − M/‖M‖‖²", "linear"),
                   ("nc4", "NC4: classifier ≠ nearest mean", "linear"))
EQUALITY_PANELS = (("nc2_equinorm_means", "norm equality of means (std/avg)"),
                   ("nc2_equinorm_weights", "norm equality of weights (std/avg)"),
                   ("nc2_equiangular_means", "angle equality of means (std cos)"),
                   ("nc2_equiangular_weights", "angle equality of weights (std cos)"),
                   ("nc2_maxangle_means", "max-angle of means: avg |cos + 1/(K−1)|"),
                   ("nc2_maxangle_weights", "max-angle of weights: avg |cos + 1/(K−1)|"))


def _rows(metrics: pd.DataFrame, metric: str, split: str | None) -> tuple[pd.DataFrame, str]:
    """Rows of ``metric`` (non-layer) in ``split``; by default the split holding them (train first)."""
    sel = metric_rows(metrics, metric)
    split = split or default_split(sel) or "train"
    return sel[sel.split == split], split


def _panels(metrics: pd.DataFrame, panels: Sequence[tuple[str, str, str]], ncols: int,
            title: str, split: str | None, sizes: Mapping[str, int] | None) -> Figure | None:
    selected = [(_rows(metrics, metric, split), label, scale) for metric, label, scale in panels]
    if all(rows.empty for (rows, _), _, _ in selected):
        return None
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.2 * ncols + 2.4, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    used = next(s for (rows, s), _, _ in selected if not rows.empty)
    for ax, ((rows, _), label, scale) in zip(axes, selected, strict=True):
        ax.set_title(label, fontsize=10)
        if rows.empty:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
            continue
        plot_space_curves(ax, rows, sizes)
        ax.set_yscale(scale)
    with_lines = [ax for ax in axes if ax.lines]
    outside_legend(with_lines[min(ncols, len(with_lines)) - 1], fontsize=7)
    fig.suptitle(f"{title} ({used} split)")
    return fig


def plot_collapse(metrics: pd.DataFrame, split: str | None = None,
                  sizes: Mapping[str, int] | None = None) -> Figure | None:
    """Fig. 5: NC1 (log scale), NC3 and NC4 per epoch, one line per label space.

    Parameters
    ----------
    metrics : long-format metrics table.
    split : split of the NC rows; by default the split that holds them (``train`` if several do).
    sizes : space name -> number of groups K, shown in the legend (NC1 divides by each space's K).

    Returns
    -------
    Figure with three axes, or None when the table holds none of ``nc1``, ``nc3``, ``nc4``.
    """
    return _panels(metrics, COLLAPSE_PANELS, 3, "Neural collapse per label space", split, sizes)


def plot_equality(metrics: pd.DataFrame, split: str | None = None,
                  sizes: Mapping[str, int] | None = None) -> Figure | None:
    """Fig. 11: NC2 norm equality (Eq. 29–30), angle equality and max-angle of means and weights.

    Returns a Figure with six axes (rows: norms, angles, max-angle; columns: means, weights), or
    None when the table holds no NC2 rows.
    """
    panels = [(metric, label, "linear") for metric, label in EQUALITY_PANELS]
    return _panels(metrics, panels, 2, "Convergence to a simplex ETF (NC2)", split, sizes)
