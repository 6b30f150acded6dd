"""Figures of the label-space analysis, matching the paper's Fig. 1a, 3, 4, 7 and 9.

Every function takes the long-format metrics table (and the run's :class:`SpaceSet`) and returns a
matplotlib Figure. Random spaces are drawn as the mean over draws with a ±1 sd band, and the legend
says how many draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hypbias.analysis.tables import metric_rows
from hypbias.labelspace.spaceset import SpaceSet, hypernym_of, is_random_space, space_order

FINE_COLOR = "black"


def space_colors(names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """A stable color per hypernym space."""
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def plot_space_curves(ax: plt.Axes, rows: pd.DataFrame) -> None:
    """One line per space of ``rows`` (one metric); random draws folded into mean ± sd per family.

    Works from space names alone: ``H`` in black, each hypernym space in its color, and the draws
    ``R<n>#k`` of ``S<n>`` as a dashed mean with a ±1 sd band in the same color.
    """
    wide = rows.pivot_table(index="epoch", columns="space", values="value", aggfunc="mean")
    wide = wide.sort_index()
    epochs = wide.index.to_numpy()
    spaces = space_order([s for s in rows.space if s in wide], random=False)
    colors = space_colors([s for s in spaces if s != "H"])
    for name in spaces:
        color = FINE_COLOR if name == "H" else colors[name]
        ax.plot(epochs, wide[name], color=color, lw=2, marker="o", ms=3, label=name)
    families: dict[str, list[str]] = {}
    for name in dict.fromkeys(rows.space):
        if name in wide and is_random_space(name):
            families.setdefault(name.split("#")[0], []).append(name)
    for family, names in families.items():
        color = colors.get(hypernym_of(family), "tab:gray")
        draws = [n for n in names if "#" in n]
        if not draws:  # only the mean row R<n>
            ax.plot(epochs, wide[family], color=color, lw=1.5, ls="--", label=f"{family} (random)")
            continue
        values = wide[draws].to_numpy()
        mean = np.nanmean(values, axis=1)
        sd = np.nanstd(values, axis=1, ddof=1) if len(draws) > 1 else np.zeros_like(mean)
        ax.plot(epochs, mean, color=color, lw=1.5, ls="--",
                label=f"{family} (random, mean ± sd of {len(draws)})")
        ax.fill_between(epochs, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)


def _single(metrics: pd.DataFrame, metric: str, split: str, ylabel: str, title: str,
            ylim: tuple[float, float] | None = None, yscale: str = "linear") -> Figure:
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    plot_space_curves(ax, metric_rows(metrics, metric, split))
    ax.set_ylabel(ylabel)
    ax.set_yscale(yscale)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    return fig


def plot_relative_accuracy(metrics: pd.DataFrame, split: str = "val") -> Figure:
    """Fig. 1a: A_R(X, t) = A(X, t) / max A(X) per epoch (Eq. 8)."""
    return _single(metrics, "relative_accuracy", split, "relative accuracy A_R",
                   f"Relative accuracy ({split})", ylim=(0, 1.02))


def plot_relative_gain(metrics: pd.DataFrame, split: str = "val") -> Figure:
    """Fig. 3: G_R(X, t), accuracy gain over chance relative to the best epoch (Eq. 9)."""
    return _single(metrics, "relative_gain", split, "relative gain G_R",
                   f"Relative accuracy gain ({split})", ylim=(-0.05, 1.02))


def plot_residual_error(metrics: pd.DataFrame, split: str = "val") -> Figure:
    """Fig. 9: E_R(X, t) = (100 − A) / (100 − max A) − 1 (Eq. 35), log scale."""
    frame = metrics.copy()
    frame.loc[frame.metric == "residual_relative_error", "value"] += 1.0
    return _single(frame, "residual_relative_error", split, "residual relative error E_R + 1",
                   f"Residual relative error ({split})", yscale="log")


def plot_convergence(summary: dict, spaces: SpaceSet, num_classes: int, split: str = "val") -> Figure:
    """Fig. 4: τ_q against the number of superclasses, hypernym spaces S_n vs random R_n."""
    tau, sd = summary["tau"][split], summary["tau_sd"].get(split, {})
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    ns, s_tau, r_tau, r_sd = [], [], [], []
    for name, space in spaces.hypernyms.items():
        rname = spaces.random_name(name)
        ns.append(space.num_groups)
        s_tau.append(np.nan if tau.get(name) is None else tau[name])
        r_tau.append(np.nan if tau.get(rname) is None else tau[rname])
        r_sd.append(sd.get(rname, 0.0))
    order = np.argsort(ns)
    ns_sorted = np.array(ns)[order]
    ax.plot(ns_sorted, np.array(s_tau)[order], "o-", color="tab:blue", label="hypernym spaces S_n")
    ax.errorbar(ns_sorted, np.array(r_tau)[order], yerr=np.array(r_sd)[order], fmt="s--",
                color="tab:red", capsize=3, label=f"random spaces R_n (mean ± sd, {summary['draws']} draws)")
    if tau.get("H") is not None:
        ax.axhline(tau["H"], color=FINE_COLOR, lw=1, ls=":", label=f"H ({num_classes} classes)")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(ns_sorted, [str(n) for n in ns_sorted])
    ax.set_xlabel("number of superclasses n")
    ax.set_ylabel(f"τ_{summary['q']:g} (epochs)")
    ax.set_title(f"{100 * summary['q']:.0f}% accuracy convergence epoch ({split})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_theoretical_accuracy(metrics: pd.DataFrame, spaces: SpaceSet, split: str = "val") -> Figure:
    """Fig. 7: measured A(R, t) (mean ± sd over draws) against Eq. 22's P_R."""
    acc = metric_rows(metrics, "accuracy", split).pivot(index="epoch", columns="space", values="value")
    theo = metric_rows(metrics, "theoretical_accuracy", split).pivot(index="epoch", columns="space",
                                                                      values="value")
    colors = space_colors(list(spaces.hypernyms))
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    epochs = acc.index.to_numpy()
    for name in spaces.hypernyms:
        draws = [r for r, _ in spaces.randoms.get(name, [])]
        if not draws:
            continue
        values = acc[draws].to_numpy()
        mean = values.mean(axis=1)
        sd = values.std(axis=1, ddof=1) if len(draws) > 1 else 0 * mean
        rname = spaces.random_name(name)
        ax.plot(epochs, mean, color=colors[name], lw=2, label=f"{rname} measured (mean ± sd)")
        ax.fill_between(epochs, mean - sd, mean + sd, color=colors[name], alpha=0.2, lw=0)
        ax.plot(epochs, theo[draws].mean(axis=1), color=colors[name], ls="--", lw=1.5,
                label=f"{rname} theory, Eq. 22")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy in random space (%)")
    ax.set_title(f"Random label spaces: measured vs theoretical accuracy ({split})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_confusions(confusion: np.ndarray, order: np.ndarray, epochs: Sequence[int]) -> Figure:
    """Row-normalised confusion matrices at a few epochs, classes in the hierarchy's DFS order."""
    fig, axes = plt.subplots(1, len(epochs), figsize=(3.2 * len(epochs), 3.4), layout="constrained")
    axes = np.atleast_1d(axes)
    for ax, epoch in zip(axes, epochs, strict=True):
        m = confusion[epoch][np.ix_(order, order)].astype(np.float64)
        m /= np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(np.log10(m + 1e-3), cmap="magma", vmin=-3, vmax=0, interpolation="nearest")
        ax.set_title(f"epoch {epoch}")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel("true class (DFS order)")
    fig.suptitle("Confusion matrices, log10 of row-normalised counts")
    return fig


def plot_training_log(log: pd.DataFrame) -> Figure:
    """Training loss and fine accuracy per split."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    ax1.plot(log.epoch, log.loss, "o-", ms=3)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss")
    ax1.grid(alpha=0.3)
    for col in [c for c in log.columns if c.startswith("acc_")]:
        ax2.plot(log.epoch, log[col], "o-", ms=3, label=col[4:])
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("fine accuracy (%)")
    ax2.grid(alpha=0.3)
    ax2.legend()
    return fig
