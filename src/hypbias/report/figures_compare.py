"""Figures that overlay several runs: accuracy per label space, τ_q, mistake severity, NC metrics.

Every function takes ``runs``, an ordered mapping of run name to its long-format metrics table
(columns ``epoch, split, space, metric, value, layer``), and returns a matplotlib Figure, or None
when no run holds the data. A run keeps one color in every figure (:func:`run_colors`). Random label
spaces appear as the mean over their draws (spaces ``R<n>#<k>`` averaged into ``R<n>``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hypbias.analysis.tables import space_curves as curves
from hypbias.labelspace.spaceset import is_random_space, space_order
from hypbias.metrics.hierarchical import SEVERITY
from hypbias.report.figures import space_colors

LINESTYLES = ("-", "--", ":", "-.")


def run_colors(names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """A stable color per run (the label-space palette, applied to runs)."""
    return space_colors(names)


def _grid(panels: int, width: float = 3.6, height: float = 3.0) -> tuple[Figure, list]:
    ncols = min(panels, 4)
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def plot_accuracy_overlay(runs: Mapping[str, pd.DataFrame], split: str) -> Figure | None:
    """One panel per label space, one line per run: greedy accuracy A(X) per epoch (Eq. 3–7)."""
    tables = {name: curves(m, "accuracy", split) for name, m in runs.items()}
    spaces = space_order(list(dict.fromkeys(c for t in tables.values() for c in t.columns)))
    if not spaces:
        return None
    colors = run_colors(list(runs))
    fig, axes = _grid(len(spaces))
    for ax, space in zip(axes, spaces, strict=True):
        for name, table in tables.items():
            if space in table:
                ax.plot(table.index, table[space], color=colors[name], lw=1.6, label=name)
        kind = "mean of random draws" if is_random_space(space) else \
            "fine classes" if space == "H" else "hypernyms"
        ax.set_title(f"{space} ({kind})", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{split} accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig


def plot_tau_bars(taus: Mapping[str, Mapping[str, float | None]], q: float,
                  split: str) -> Figure | None:
    """Grouped bars of τ_q per label space (Fig. 4's quantity), one bar per run.

    ``taus`` maps run name to ``{space: epoch or None}`` (``summary.json``'s ``tau[split]``);
    random draws are left out (their mean ``R<n>`` is kept). A space a run never converged in is
    marked "never" at the bottom of the axis.
    """
    spaces = space_order(list(dict.fromkeys(
        s for t in taus.values() for s in t if "#" not in s)))
    if not spaces:
        return None
    colors = run_colors(list(taus))
    width = 0.8 / len(taus)
    fig = Figure(figsize=(max(5.0, 0.9 * len(spaces) * max(len(taus), 2) / 2 + 2), 3.6),
                 layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(spaces))
    for i, (name, tau) in enumerate(taus.items()):
        pos = x - 0.4 + width * (i + 0.5)
        values = [tau.get(s) for s in spaces]
        heights = [np.nan if v is None else v for v in values]
        ax.bar(pos, heights, width, color=colors[name], label=name)
        for p, v in zip(pos, values, strict=True):
            if v is None:
                ax.text(p, 0, "never", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, spaces)
    ax.set_ylabel(f"τ_{q:g} (epochs)")
    ax.set_title(f"{100 * q:.0f}% accuracy convergence epoch per label space ({split})")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig


def plot_severity_overlay(runs: Mapping[str, pd.DataFrame], split: str) -> Figure | None:
    """Mistake severity (left) and hierarchical top-k distances (right, one style per k)."""
    sev = {n: curves(m, SEVERITY, split) for n, m in runs.items()}
    sev = {n: t["H"] for n, t in sev.items() if "H" in t}
    topk = {n: m[(m.split == split) & m.metric.str.startswith("hier_dist@")]
            for n, m in runs.items()}
    topk = {n: t for n, t in topk.items() if not t.empty}
    if not sev and not topk:
        return None
    colors = run_colors(list(runs))
    fig, (left, right) = _grid(2, width=4.6, height=3.4)
    for name, curve in sev.items():
        left.plot(curve.index, curve.to_numpy(), color=colors[name], lw=1.6, label=name)
    left.set_title("mistake severity (mean LCA height of top-1 mistakes)", fontsize=9)
    left.set_ylabel("LCA height")
    ks = sorted({int(m.split("@")[1]) for t in topk.values() for m in t.metric.unique()})
    for name, table in topk.items():
        for i, k in enumerate(ks):
            curve = curves(table, f"hier_dist@{k}", split)
            if "H" in curve:
                right.plot(curve.index, curve["H"], color=colors[name], lw=1.4,
                           ls=LINESTYLES[i % len(LINESTYLES)],
                           label=f"{name}, k={k}")
    right.set_title("hierarchical top-k distance (mean LCA height of the top k)", fontsize=9)
    right.set_ylabel("LCA height")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7, ncol=1 + (len(ax.lines) > 6))
    return fig


def plot_nc_overlay(runs: Mapping[str, pd.DataFrame]) -> Figure | None:
    """One panel per neural-collapse metric (``nc*``): color = run, line style = label space."""
    nc = {n: m[m.metric.str.startswith("nc") & (m.layer == "")] for n, m in runs.items()}
    nc = {n: t for n, t in nc.items() if not t.empty}
    if not nc:
        return None
    metrics = sorted({m for t in nc.values() for m in t.metric.unique()})
    colors = run_colors(list(runs))
    fig, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        for name, table in nc.items():
            wide = curves(table, metric)
            spaces = [s for s in space_order(list(wide.columns)) if not is_random_space(s)]
            for i, space in enumerate(spaces):
                ax.plot(wide.index, wide[space], color=colors[name], lw=1.4,
                        ls=LINESTYLES[i % len(LINESTYLES)], label=f"{name}, {space}")
        if metric == "nc1":
            ax.set_yscale("log")
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


__all__ = [
    "plot_accuracy_overlay",
    "plot_nc_overlay",
    "plot_severity_overlay",
    "plot_tau_bars",
    "run_colors",
]
