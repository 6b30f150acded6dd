"""Figures of the label-space analysis, matching the paper's Fig. 1a, 3, 4, 7, 8 and 9.

Every curve function takes the long-format metrics table (and the run's :class:`SpaceSet`) and
returns a matplotlib Figure. Random spaces are drawn as the mean over draws with a ±1 sd band, and
the legend says how many draws; a space's label carries its number of groups K when known.

Shared conventions (also used by the other figure modules): :func:`epoch_axis` switches the epoch
axis to a symlog scale when a run is long, so that the first epochs, where hypernym bias shows,
take as much room as the rest; :func:`outside_legend` puts the legend to the right of the data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hypbias.analysis.tables import metric_rows
from hypbias.labelspace import LabelSpace
from hypbias.labelspace.spaceset import SpaceSet, hypernym_of, is_random_space, space_order

FINE_COLOR = "black"
SYMLOG_FROM = 12
"""An epoch axis reaching this epoch or beyond is drawn symlog (linear up to 1, logarithmic after)."""
SYMLOG = {"linthresh": 1, "linscale": 0.5}
"""The symlog scale of every long axis (epochs, blur σ): linear up to 1, logarithmic beyond, the
linear part half as wide as a decade."""
BAND_ALPHA = 0.3


def space_colors(names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """A stable color per hypernym space."""
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def space_sizes(spaces: SpaceSet, num_classes: int) -> dict[str, int]:
    """Space name -> its number of groups K: H, every S, its random family R and every draw."""
    sizes = {"H": int(num_classes)}
    for name, space in spaces.hypernyms.items():
        sizes[name] = space.num_groups
        sizes[spaces.random_name(name)] = space.num_groups
        sizes.update({r: space.num_groups for r, _ in spaces.randoms.get(name, [])})
    return sizes


def space_label(name: str, sizes: Mapping[str, int] | None = None) -> str:
    """``"S4 (K=4)"``: the name and its number of groups, from ``sizes`` or from an ``S<n>`` name."""
    k = (sizes or {}).get(name)
    if k is None and (match := re.fullmatch(r"[SR](\d+)", name.split("#")[0])):
        k = int(match.group(1))
    return name if k is None else f"{name} (K={k})"


def epoch_axis(ax: plt.Axes, last_epoch: float, axis: str = "x") -> None:
    """Label an epoch axis; symlog (linear to 1, log beyond) when it reaches :data:`SYMLOG_FROM`."""
    set_label = ax.set_xlabel if axis == "x" else ax.set_ylabel
    if last_epoch < SYMLOG_FROM:
        set_label("epoch")
        return
    (ax.set_xscale if axis == "x" else ax.set_yscale)("symlog", **SYMLOG)
    ticks = [t for t in (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= last_epoch]
    if last_epoch - ticks[-1] > 0.15 * last_epoch:
        ticks.append(int(last_epoch))
    (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks, [str(t) for t in ticks])
    (ax.xaxis if axis == "x" else ax.yaxis).set_minor_locator(matplotlib.ticker.NullLocator())
    set_label("epoch (log scale beyond 1)")


def outside_legend(ax: plt.Axes, fontsize: float = 8, **kwargs) -> None:
    """The legend of ``ax`` to the right of its data (constrained layout makes room for it)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=fontsize,
              frameon=False, **kwargs)


def plot_space_curves(ax: plt.Axes, rows: pd.DataFrame, sizes: Mapping[str, int] | None = None) -> None:
    """One line per space of ``rows`` (one metric); random draws folded into mean ± sd per family.

    Works from space names alone: ``H`` in black, each hypernym space in its color, and the draws
    ``R<n>#k`` of ``S<n>`` as a dashed mean with a ±1 sd band (edges drawn) in the same color.
    ``sizes`` (name -> K) puts each space's number of groups in its label.
    """
    wide = rows.pivot_table(index="epoch", columns="space", values="value", aggfunc="mean")
    wide = wide.sort_index()
    epochs = wide.index.to_numpy()
    spaces = space_order([s for s in rows.space if s in wide], random=False)
    colors = space_colors([s for s in spaces if s != "H"])
    for name in spaces:
        color = FINE_COLOR if name == "H" else colors[name]
        ax.plot(epochs, wide[name], color=color, lw=2, marker="o", ms=3,
                label=space_label(name, sizes))
    families: dict[str, list[str]] = {}
    for name in dict.fromkeys(rows.space):
        if name in wide and is_random_space(name):
            families.setdefault(name.split("#")[0], []).append(name)
    for family, names in families.items():
        color = colors.get(hypernym_of(family), "tab:gray")
        label = space_label(family, sizes)
        draws = [n for n in names if "#" in n]
        if not draws:  # only the mean row R<n>
            ax.plot(epochs, wide[family], color=color, lw=1.5, ls="--", label=f"{label}, random")
            continue
        values = wide[draws].to_numpy()
        mean = np.nanmean(values, axis=1)
        sd = np.nanstd(values, axis=1, ddof=1) if len(draws) > 1 else np.zeros_like(mean)
        ax.plot(epochs, mean, color=color, lw=1.5, ls="--",
                label=f"{label}, random: mean ± sd of {len(draws)}")
        ax.fill_between(epochs, mean - sd, mean + sd, color=color, alpha=BAND_ALPHA, lw=0.6,
                        edgecolor=color)
    epoch_axis(ax, float(epochs.max()) if len(epochs) else 0.0)
    ax.grid(alpha=0.3)


def _single(metrics: pd.DataFrame, metric: str, split: str, ylabel: str, title: str,
            sizes: Mapping[str, int] | None, ylim: tuple[float, float] | None = None,
            yscale: str = "linear") -> Figure:
    fig, ax = plt.subplots(figsize=(7.6, 4.2), layout="constrained")
    plot_space_curves(ax, metric_rows(metrics, metric, split), sizes)
    ax.set_ylabel(ylabel)
    ax.set_yscale(yscale)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    outside_legend(ax)
    return fig


def plot_relative_accuracy(metrics: pd.DataFrame, split: str = "val",
                           sizes: Mapping[str, int] | None = None) -> Figure:
    """Fig. 1a: A_R(X, t) = A(X, t) / max A(X) per epoch (Eq. 8)."""
    return _single(metrics, "relative_accuracy", split, "relative accuracy A_R",
                   f"Relative accuracy ({split})", sizes, ylim=(0, 1.02))


def plot_relative_gain(metrics: pd.DataFrame, split: str = "val",
                       sizes: Mapping[str, int] | None = None) -> Figure:
    """Fig. 3: G_R(X, t), accuracy gain over chance relative to the best epoch (Eq. 9)."""
    return _single(metrics, "relative_gain", split, "relative gain G_R",
                   f"Relative accuracy gain ({split})", sizes, ylim=(-0.05, 1.02))


def plot_residual_error(metrics: pd.DataFrame, split: str = "val",
                        sizes: Mapping[str, int] | None = None) -> Figure:
    """Fig. 9: E_R(X, t) = (100 − A) / (100 − max A) − 1 (Eq. 35), log scale."""
    frame = metrics.copy()
    frame.loc[frame.metric == "residual_relative_error", "value"] += 1.0
    return _single(frame, "residual_relative_error", split, "residual relative error E_R + 1",
                   f"Residual relative error ({split})", sizes, yscale="log")


def plot_convergence(summary: dict, spaces: SpaceSet, num_classes: int, split: str = "val") -> Figure:
    """Fig. 4: τ_q against the number of superclasses, hypernym spaces S_n vs random R_n."""
    tau, sd = summary["tau"][split], summary["tau_sd"].get(split, {})
    fig, ax = plt.subplots(figsize=(7.6, 4.2), layout="constrained")
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
                color="tab:red", capsize=3, label=f"random spaces R_n\n(mean ± sd, {summary['draws']} draws)")
    if tau.get("H") is not None:
        ax.axhline(tau["H"], color=FINE_COLOR, lw=1, ls=":", label=f"H (K={num_classes})")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(ns_sorted, [str(n) for n in ns_sorted])
    ax.set_xlabel("number of superclasses n")
    ax.set_ylabel(f"τ_{summary['q']:g} (epochs)")
    ax.set_title(f"{100 * summary['q']:.0f}% accuracy convergence epoch ({split})")
    ax.grid(alpha=0.3)
    outside_legend(ax)
    return fig


def plot_theoretical_accuracy(metrics: pd.DataFrame, spaces: SpaceSet, split: str = "val") -> Figure:
    """Fig. 7: measured A(R, t) (mean ± sd over draws) against Eq. 22's P_R, and their difference.

    Top: the measured curve with its band and the theory dashed. Bottom: the residual, measured −
    Eq. 22 per draw, as mean ± sd, with the zero line: where the two agree it sits on zero.
    """
    acc = metric_rows(metrics, "accuracy", split).pivot(index="epoch", columns="space", values="value")
    theo = metric_rows(metrics, "theoretical_accuracy", split).pivot(index="epoch", columns="space",
                                                                      values="value")
    colors = space_colors(list(spaces.hypernyms))
    fig, (ax, res) = plt.subplots(2, 1, figsize=(7.6, 5.6), sharex=True, layout="constrained",
                                  height_ratios=(2, 1))
    epochs = acc.index.to_numpy()
    for name, space in spaces.hypernyms.items():
        draws = [r for r, _ in spaces.randoms.get(name, [])]
        if not draws:
            continue
        rname = space_label(spaces.random_name(name), {spaces.random_name(name): space.num_groups})
        for axis, values, label in ((ax, acc[draws].to_numpy(), f"{rname} measured"),
                                    (res, acc[draws].to_numpy() - theo[draws].to_numpy(),
                                     f"{rname} measured − Eq. 22")):
            mean = values.mean(axis=1)
            sd = values.std(axis=1, ddof=1) if len(draws) > 1 else 0 * mean
            axis.plot(epochs, mean, color=colors[name], lw=2, label=f"{label} (mean ± sd)")
            axis.fill_between(epochs, mean - sd, mean + sd, color=colors[name], alpha=BAND_ALPHA,
                              lw=0.6, edgecolor=colors[name])
        ax.plot(epochs, theo[draws].mean(axis=1), color=colors[name], ls="--", lw=1.5,
                label=f"{rname} theory, Eq. 22")
    res.axhline(0.0, color="black", lw=0.8)
    ax.set_ylabel("accuracy in random space (%)")
    res.set_ylabel("residual (points)")
    ax.set_title(f"Random label spaces: measured vs theoretical accuracy ({split})")
    for axis in (ax, res):
        axis.grid(alpha=0.3)
        epoch_axis(axis, float(epochs.max()) if len(epochs) else 0.0)
    ax.set_xlabel("")
    outside_legend(ax)
    return fig


def group_bounds(t: np.ndarray) -> np.ndarray:
    """Positions (between 0 and len(t)) where consecutive entries of ``t`` change: block edges."""
    t = np.asarray(t)
    return np.concatenate([[0], np.flatnonzero(t[1:] != t[:-1]) + 1, [len(t)]])


def plot_confusions(confusion: np.ndarray, order: np.ndarray, epochs: Sequence[int],
                    space: LabelSpace | None = None, space_name: str | None = None) -> Figure:
    """Fig. 8: row-normalised confusion matrices at a few epochs, classes in the hierarchy's DFS order.

    Parameters
    ----------
    confusion : array (E, C, C), M[e, i, j] = samples of true class i predicted j at epoch e
    order : int array (C,), the classes in depth-first order of the hierarchy
    epochs : epochs to draw, one panel each
    space : a hypernym space whose blocks are outlined (white lines at the group edges in DFS order,
        group names as ticks when there are at most 12 groups)
    space_name : its name, for the title

    The colour is log10 of the share of the true class's samples given each prediction (from 10⁻³),
    one colour bar for all panels.
    """
    fig, axes = plt.subplots(1, len(epochs), figsize=(3.3 * len(epochs) + 1.2, 3.9),
                             layout="constrained", squeeze=False)
    axes = axes[0]
    c = confusion.shape[-1]
    t = None if space is None else space.t[order]
    bounds = None if t is None else group_bounds(t)
    image = None
    for ax, epoch in zip(axes, epochs, strict=True):
        m = confusion[epoch][np.ix_(order, order)].astype(np.float64)
        m /= np.maximum(m.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(np.log10(m + 1e-3), cmap="magma", vmin=-3, vmax=0, interpolation="nearest")
        ax.set_title(f"epoch {epoch}")
        ax.set_xlabel("predicted class (DFS order)")
        if bounds is not None:
            for b in bounds[1:-1]:
                ax.axhline(b - 0.5, color="white", lw=0.7)
                ax.axvline(b - 0.5, color="white", lw=0.7)
        if bounds is not None and len(bounds) - 1 <= 12 and space is not None:
            centres = (bounds[:-1] + bounds[1:]) / 2 - 0.5
            names = [space.names[g] for g in t[bounds[:-1]]]
            ax.set_xticks(centres, names, rotation=90, fontsize=7)
            ax.set_yticks(centres, names if ax is axes[0] else [], fontsize=7)
        else:
            ax.set_xticks([0, c - 1], ["1", str(c)])
            ax.set_yticks([0, c - 1], ["1", str(c)] if ax is axes[0] else [])
    axes[0].set_ylabel("true class (DFS order)")
    fig.colorbar(image, ax=list(axes), shrink=0.85,
                 label="log10 share of the true class's samples")
    blocks = f", blocks of {space_name}" if space_name else ""
    fig.suptitle(f"Confusion matrices in depth-first order of the hierarchy{blocks}")
    return fig


def plot_training_log(log: pd.DataFrame) -> Figure:
    """Training loss and fine accuracy per split."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.4), layout="constrained")
    ax1.plot(log.epoch, log.loss, "o-", ms=3)
    ax1.set_ylabel("training loss")
    for col in [c for c in log.columns if c.startswith("acc_")]:
        ax2.plot(log.epoch, log[col], "o-", ms=3, label=col[4:])
    ax2.set_ylabel("fine accuracy (%)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        epoch_axis(ax, float(log.epoch.max()))
    outside_legend(ax2)
    return fig
