"""Figures and tables that overlay several runs (architectures, losses): accuracy and relative
accuracy per label space (Fig. 1a), τ_q per space and against the number of superclasses (Fig. 4),
mistake severity, NC metrics, and the final accuracies of Table 1.

Every curve function takes ``runs``, an ordered mapping of run name to its long-format metrics table
(columns ``epoch, split, space, metric, value, layer``), and returns a matplotlib Figure, or None
when no run holds the data. A run keeps one color in every figure (:func:`run_colors`). Random label
spaces appear as the mean over their draws (spaces ``R<n>#<k>`` averaged into ``R<n>``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hypbias.analysis.metric_names import topk_ks, topk_of
from hypbias.analysis.tables import space_curves as curves
from hypbias.labelspace.spaceset import SpaceSet, is_random_space, space_order
from hypbias.metrics.hierarchical import SEVERITY, topk_name
from hypbias.report.figures import epoch_axis, space_colors, space_label

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


def _space_overlay(runs: Mapping[str, pd.DataFrame], metric: str, split: str,
                   ylabel: str) -> Figure | None:
    """One panel per label space, one line per run, of one whole-model metric per epoch."""
    tables = {name: curves(m, metric, split) for name, m in runs.items()}
    spaces = space_order(list(dict.fromkeys(c for t in tables.values() for c in t.columns)))
    if not spaces:
        return None
    colors = run_colors(list(runs))
    fig, axes = _grid(len(spaces))
    last = max(float(t.index.max()) for t in tables.values() if not t.empty)
    for ax, space in zip(axes, spaces, strict=True):
        for name, table in tables.items():
            if space in table:
                ax.plot(table.index, table[space], color=colors[name], lw=1.6, label=name)
        kind = "mean of random draws" if is_random_space(space) else \
            "fine classes" if space == "H" else "hypernyms"
        ax.set_title(f"{space_label(space)} ({kind})", fontsize=10)
        epoch_axis(ax, last)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig


def plot_accuracy_overlay(runs: Mapping[str, pd.DataFrame], split: str) -> Figure | None:
    """One panel per label space, one line per run: greedy accuracy A(X) per epoch (Eq. 3–7)."""
    return _space_overlay(runs, "accuracy", split, f"{split} accuracy (%)")


def plot_relative_accuracy_overlay(runs: Mapping[str, pd.DataFrame], split: str) -> Figure | None:
    """Fig. 1a across runs: relative accuracy A_R(X, t) (Eq. 8), one panel per space, one line per
    run (e.g. one per architecture)."""
    return _space_overlay(runs, "relative_accuracy", split, "relative accuracy A_R")


def plot_tau_vs_superclasses(runs: Mapping[str, tuple[Mapping[str, Any], SpaceSet]],
                             split: str) -> Figure | None:
    """Fig. 4 across runs: τ_q against the number of superclasses n, one color per run.

    ``runs`` maps run name to ``(summary, spaces)``: its ``summary.json`` (``tau``, ``tau_sd``,
    ``q``) and its :class:`SpaceSet`. Hypernym spaces S_n are solid lines with circles, their random
    counterparts R_n dashed with squares and ± sd error bars; a space that never converged is left
    out of its line. Returns None when no run has a hypernym space with a τ.
    """
    colors = run_colors(list(runs))
    fig = Figure(figsize=(7.8, 4.4), layout="constrained")
    ax = fig.subplots()
    q = None
    ticks: set[int] = set()
    for name, (summary, spaces) in runs.items():
        q = summary.get("q", q)
        tau = summary.get("tau", {}).get(split, {})
        sd = summary.get("tau_sd", {}).get(split, {})
        ns = sorted((space.num_groups, hyper) for hyper, space in spaces.hypernyms.items())
        ticks.update(n for n, _ in ns)
        for kind, style, marker in (("S", "-", "o"), ("R", "--", "s")):
            pts = [(n, tau.get(h if kind == "S" else spaces.random_name(h)),
                    0.0 if kind == "S" else sd.get(spaces.random_name(h), 0.0)) for n, h in ns]
            pts = [p for p in pts if p[1] is not None]
            if not pts:
                continue
            n, t, e = (np.array(v, dtype=float) for v in zip(*pts, strict=True))
            ax.errorbar(n, t, yerr=e if kind == "R" else None, color=colors[name], ls=style,
                        marker=marker, capsize=3, ms=4,
                        label=f"{'hypernym S_n' if kind == 'S' else 'random R_n'}, {name}")
    if not ax.lines:
        return None
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(sorted(ticks), [str(n) for n in sorted(ticks)])
    ax.set_xlabel("number of superclasses n")
    ax.set_ylabel(f"τ_{q:g} (epochs)" if q is not None else "τ (epochs)")
    ax.set_title(f"{100 * (q or 0.95):.0f}% accuracy convergence epoch per run ({split})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return fig


def accuracy_table(runs: Mapping[str, pd.DataFrame], split: str) -> pd.DataFrame:
    """Table 1: the last epoch's accuracy (%) in every label space, one column per run.

    Rows are H, the hypernym spaces and the random spaces (mean over draws), in display order;
    a space a run does not have is NaN.
    """
    tables = {name: curves(m, "accuracy", split) for name, m in runs.items()}
    finals = {name: t.iloc[-1] for name, t in tables.items() if not t.empty}
    spaces = space_order(list(dict.fromkeys(s for f in finals.values() for s in f.index)))
    table = pd.DataFrame({name: f.reindex(spaces) for name, f in finals.items()}, index=spaces)
    table.index.name = "space"
    return table


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
    topk = {n: m[(m.split == split) & m.metric.map(topk_of).notna()] for n, m in runs.items()}
    topk = {n: t for n, t in topk.items() if not t.empty}
    if not sev and not topk:
        return None
    colors = run_colors(list(runs))
    fig, (left, right) = _grid(2, width=4.6, height=3.4)
    for name, curve in sev.items():
        left.plot(curve.index, curve.to_numpy(), color=colors[name], lw=1.6, label=name)
    left.set_title("mistake severity (mean LCA distance of top-1 mistakes)", fontsize=9)
    left.set_ylabel("LCA distance")
    ks = topk_ks(name for t in topk.values() for name in t.metric.unique())
    for name, table in topk.items():
        for i, k in enumerate(ks):
            curve = curves(table, topk_name(k), split)
            if "H" in curve:
                right.plot(curve.index, curve["H"], color=colors[name], lw=1.4,
                           ls=LINESTYLES[i % len(LINESTYLES)],
                           label=f"{name}, k={k}")
    right.set_title("hierarchical top-k distance (mean LCA distance of the top k)", fontsize=9)
    right.set_ylabel("LCA distance")
    last = max([float(c.index.max()) for c in sev.values()] +
               [float(t.epoch.max()) for t in topk.values()])
    for ax in (left, right):
        epoch_axis(ax, last)
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
        epoch_axis(ax, max(float(t.epoch.max()) for t in nc.values()))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


__all__ = [
    "accuracy_table",
    "plot_accuracy_overlay",
    "plot_nc_overlay",
    "plot_relative_accuracy_overlay",
    "plot_severity_overlay",
    "plot_tau_bars",
    "plot_tau_vs_superclasses",
    "run_colors",
]
