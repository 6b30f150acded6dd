"""Figures of the layer-wise hierarchy analysis: Table 6 / Fig. 6a, Fig. 2a–b and Fig. 6b–c, 15.

Every function takes the long-format metrics table (columns ``epoch, split, space, metric, value,
layer``) as written by :func:`hypbias.analysis.manifold_metrics` and returns a matplotlib Figure.
Layers keep the order in which they first appear in the table, bottom of the network first; the
normalised depth of layer l of L is l / (L − 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hypbias.analysis.findings import CCC_LABELS
from hypbias.analysis.metric_names import metric_param, param_metric
from hypbias.analysis.tables import layer_order, layer_rows, normalised_depth
from hypbias.report.figures import SYMLOG, SYMLOG_FROM, epoch_axis, outside_legend


def epoch_cell_edges(epochs: np.ndarray) -> np.ndarray:
    """Edges (len + 1,) of cells centred on ``epochs`` as the epoch axis draws them (:func:`epoch_axis`).

    Cells meet half-way between neighbouring epochs in the axis's own coordinate (symlog for long
    runs), so every cell is as wide as the gap to its neighbours and no epoch is stretched.
    """
    e = np.asarray(epochs, dtype=np.float64)
    symlog = len(e) and e.max() >= SYMLOG_FROM
    transform = (matplotlib.scale.SymmetricalLogTransform(10, **SYMLOG) if symlog
                 else matplotlib.transforms.IdentityTransform())
    u = transform.transform(e.reshape(-1, 1)).ravel()
    gaps = np.diff(u) if len(u) > 1 else np.array([1.0])
    mids = np.concatenate([[u[0] - gaps[0] / 2], (u[:-1] + u[1:]) / 2, [u[-1] + gaps[-1] / 2]])
    return transform.inverted().transform(mids.reshape(-1, 1)).ravel()


def plot_ccc_heatmap(metrics: pd.DataFrame, metric: str = "ccc_cover",
                     split: str | None = None) -> Figure:
    """Table 6 / Fig. 6a: CCC with the hierarchy per layer (rows, top layer up) and epoch (columns).

    Columns are placed at their epoch values on the epoch axis (symlog for long runs), so a
    schedule such as 0, 1, 2, 4, 8, 30 is not drawn evenly spaced.
    """
    sel = layer_rows(metrics, metric, split)
    layers = layer_order(sel)
    grid = sel.pivot_table(index="layer", columns="epoch", values="value").reindex(layers)
    epochs = grid.columns.to_numpy()
    values = grid.to_numpy()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(epochs) + 3.5),
                                    max(2.4, 0.45 * len(layers) + 1.6)), layout="constrained")
    mesh = ax.pcolormesh(epoch_cell_edges(epochs), np.arange(len(layers) + 1) - 0.5, values,
                         cmap="viridis", vmin=min(0.0, np.nanmin(values)), vmax=1.0)
    if len(epochs) <= 25:
        for (r, c), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(epochs[c], r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 0.5 else "black")
    epoch_axis(ax, float(epochs.max()))
    if len(epochs) <= 15:  # label every measured epoch; otherwise the axis's own ticks
        ax.set_xticks(epochs, [str(e) for e in epochs])
    ax.set_yticks(range(len(layers)), layers)
    ax.set_ylabel("layer")
    ax.set_title(f"CCC of the hierarchy's graph distances and the {CCC_LABELS.get(metric, metric)}",
                 fontsize=9)
    fig.colorbar(mesh, ax=ax, label="CCC")
    return fig


def _cover_panel(ax: plt.Axes, metrics: pd.DataFrame, layer: str, split: str | None,
                 space: str | None = None) -> None:
    """Self- and mutual-cover means of one layer per epoch (``space="raw"``: the raw-feature rows)."""
    last = 0.0
    for metric, label, style in (("self_cover", "self-cover mean", "-o"),
                                 ("mutual_cover", "mutual-cover mean", "--s")):
        rows = layer_rows(metrics, metric if space is None else param_metric(metric, space=space),
                          split)
        curve = rows[rows.layer == layer].sort_values("epoch")
        ax.plot(curve.epoch, curve.value, style, ms=3, label=label)
        last = max(last, float(curve.epoch.max()))
    epoch_axis(ax, last)
    ax.grid(alpha=0.3)


def plot_cover_curves(metrics: pd.DataFrame, layers: Sequence[str] | None = None,
                      split: str | None = None) -> Figure:
    """Fig. 2: mean self-cover and mean mutual cover per epoch, one panel per layer."""
    self_rows = layer_rows(metrics, "self_cover", split)
    split = self_rows.split.iloc[0]
    layers = list(layers) if layers is not None else layer_order(self_rows)
    fig, axes = plt.subplots(1, len(layers), figsize=(3.2 * len(layers) + 1.8, 3.0), sharey=True,
                             layout="constrained", squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=True):
        _cover_panel(ax, metrics, layer, split)
        ax.set_title(layer, fontsize=9)
    axes[0, 0].set_ylabel("cover")
    outside_legend(axes[0, -1])
    return fig


def plot_cover_spaces(metrics: pd.DataFrame, layer: str | None = None,
                      split: str | None = None) -> Figure | None:
    """Fig. 2a next to 2b: covers of one layer (default the top one) in the raw feature space and in
    the UMAP embedding, from a run measured with ``space="both"``; None without raw rows."""
    if not (metrics.metric == param_metric("self_cover", space="raw")).any():
        return None
    self_rows = layer_rows(metrics, "self_cover", split)
    split = self_rows.split.iloc[0]
    layer = layer_order(self_rows)[-1] if layer is None else layer
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.2), sharey=True, layout="constrained")
    for ax, space, title in ((axes[0], "raw", "(a) feature space"),
                             (axes[1], None, "(b) UMAP embedding space")):
        _cover_panel(ax, metrics, layer, split, space)
        ax.set_title(f"{title}, layer {layer}", fontsize=9)
    axes[0].set_ylabel("cover")
    outside_legend(axes[1])
    return fig


def plot_probe_depth(metrics: pd.DataFrame, spaces: Sequence[str] | None = None,
                     epochs: Sequence[int] | None = None, max_epochs: int = 6,
                     method: str | None = None) -> Figure:
    """Fig. 6b–c, 15: probe accuracy against normalised layer depth, one panel per label space.

    Panels sit in a grid of at most three columns sharing the accuracy axis; one line per epoch; by
    default at most ``max_epochs`` epochs spread evenly over those measured. ``method`` (ridge or
    logistic) is named in the title.
    """
    sel = layer_rows(metrics, "probe_accuracy")
    spaces = list(spaces) if spaces is not None else list(dict.fromkeys(sel.space))
    measured = np.sort(sel.epoch.unique())
    if epochs is None:
        picks = np.unique(np.linspace(0, len(measured) - 1, min(max_epochs, len(measured)))
                          .round().astype(int))
        epochs = measured[picks]
    depth = normalised_depth(layer_order(sel))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(epochs)))
    ncols = min(3, len(spaces))
    nrows = -(-len(spaces) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols + 1.6, 3.0 * nrows), sharey=True,
                             sharex=True, layout="constrained", squeeze=False)
    for ax in axes.ravel()[len(spaces):]:
        ax.set_visible(False)
    for ax, space in zip(axes.ravel(), spaces, strict=False):
        for color, epoch in zip(colors, epochs, strict=True):
            rows = sel[(sel.space == space) & (sel.epoch == epoch)]
            x = rows.layer.map(depth)
            order = np.argsort(x.to_numpy())
            ax.plot(x.to_numpy()[order], rows.value.to_numpy()[order], "-o", ms=3, color=color,
                    label=f"epoch {epoch}")
        ax.set_title(f"probes scored in {space}", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("normalised layer depth")
    for ax in axes[:, 0]:
        ax.set_ylabel("probe accuracy (%)")
    outside_legend(axes[0, -1], fontsize=7)
    trained = f"{method} probes" if method else "probes"
    fig.suptitle(f"Few-shot {trained} trained in H, scored in each space", fontsize=10)
    return fig


__all__ = [
    "epoch_cell_edges",
    "plot_ccc_heatmap",
    "plot_cover_curves",
    "plot_cover_spaces",
    "plot_probe_depth",
]


PROBE_KINDS = {"fewshot-ridge": ("few-shot (closed form)", "--", "s"),
               "fewshot-logistic": ("few-shot (logistic)", "--", "o"),
               "trained": ("trained", "-", "^"),
               "trained-small": ("trained layer (small)", "-", "v"),
               "trained-balanced": ("trained layer (balanced)", "-", "^"),
               "trained-large": ("trained layer (large)", "-", "D")}
"""Fig. 14's probe kinds (``probe_accuracy@probe=<kind>`` rows): legend label, line style, marker."""


def plot_probe_comparison(metrics: pd.DataFrame, spaces: Sequence[str] | None = None) -> Figure | None:
    """Fig. 14: accuracy of each probe kind against normalised layer depth, one panel per space.

    Reads the ``probe_accuracy@probe=<kind>`` rows of the last epoch holding them; None without any.
    """
    kind = metrics.metric.map(lambda name: metric_param(name, "probe_accuracy", "probe"))
    sel = metrics.assign(kind=kind)[kind.notna() & (metrics.layer.fillna("") != "")]
    if sel.empty:
        return None
    epoch = sel.epoch.max()
    sel = sel[sel.epoch == epoch]
    spaces = list(spaces) if spaces is not None else list(dict.fromkeys(sel.space))
    depth = normalised_depth(layer_order(sel))
    fig, axes = plt.subplots(1, len(spaces), figsize=(3.8 * len(spaces) + 2.2, 3.3), sharey=True,
                             layout="constrained", squeeze=False)
    for ax, space in zip(axes[0], spaces, strict=True):
        for name in [k for k in PROBE_KINDS if k in set(sel.kind)]:
            rows = sel[(sel.space == space) & (sel.kind == name)]
            x = rows.layer.map(depth).to_numpy()
            order = np.argsort(x)
            label, style, marker = PROBE_KINDS[name]
            ax.plot(x[order], rows.value.to_numpy()[order], ls=style, marker=marker, ms=4,
                    label=label)
        ax.set_title(f"scored in {space}", fontsize=9)
        ax.set_xlabel("normalised layer depth")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("probe accuracy (%)")
    outside_legend(axes[0, -1], fontsize=7)
    fig.suptitle(f"Probe types at epoch {epoch}, trained in H", fontsize=10)
    return fig


__all__ += ["PROBE_KINDS", "plot_probe_comparison"]
