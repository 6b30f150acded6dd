"""Figures of the layer-wise hierarchy analysis: Table 6 / Fig. 6a, Fig. 2 and Fig. 6b–c, 15.

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
from hypbias.analysis.tables import layer_order, layer_rows, normalised_depth


def plot_ccc_heatmap(metrics: pd.DataFrame, metric: str = "ccc_cover",
                     split: str | None = None) -> Figure:
    """Table 6 / Fig. 6a: CCC with the hierarchy per layer (rows, top layer up) and epoch (columns)."""
    sel = layer_rows(metrics, metric, split)
    layers = layer_order(sel)
    grid = sel.pivot_table(index="layer", columns="epoch", values="value").reindex(layers)
    epochs = grid.columns.to_numpy()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(epochs) + 2.5),
                                    max(2.2, 0.45 * len(layers) + 1.4)), layout="constrained")
    image = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="viridis",
                      vmin=min(0.0, np.nanmin(grid.to_numpy())), vmax=1.0)
    if len(epochs) <= 25:
        for (r, c), v in np.ndenumerate(grid.to_numpy()):
            if np.isfinite(v):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 0.5 else "black")
    step = max(1, len(epochs) // 15)
    ax.set_xticks(range(0, len(epochs), step), [str(e) for e in epochs[::step]])
    ax.set_yticks(range(len(layers)), layers)
    ax.set_xlabel("epoch")
    ax.set_ylabel("layer")
    ax.set_title(f"CCC of the hierarchy's graph distances and the {CCC_LABELS.get(metric, metric)}",
                 fontsize=9)
    fig.colorbar(image, ax=ax, label="CCC")
    return fig


def plot_cover_curves(metrics: pd.DataFrame, layers: Sequence[str] | None = None,
                      split: str | None = None) -> Figure:
    """Fig. 2: mean self-cover and mean mutual cover per epoch, one panel per layer."""
    self_rows = layer_rows(metrics, "self_cover", split)
    mutual_rows = layer_rows(metrics, "mutual_cover", self_rows.split.iloc[0])
    layers = list(layers) if layers is not None else layer_order(self_rows)
    fig, axes = plt.subplots(1, len(layers), figsize=(3.2 * len(layers), 3.0), sharey=True,
                             layout="constrained", squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=True):
        for rows, label, style in ((self_rows, "self-cover mean", "-o"),
                                   (mutual_rows, "mutual-cover mean", "--s")):
            curve = rows[rows.layer == layer].sort_values("epoch")
            ax.plot(curve.epoch, curve.value, style, ms=3, label=label)
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("cover")
    axes[0, 0].legend(fontsize=8)
    return fig


def plot_probe_depth(metrics: pd.DataFrame, spaces: Sequence[str] | None = None,
                     epochs: Sequence[int] | None = None, max_epochs: int = 6) -> Figure:
    """Fig. 6b–c, 15: probe accuracy against normalised layer depth, one panel per label space.

    One line per epoch; by default at most ``max_epochs`` epochs spread evenly over those measured.
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
    fig, axes = plt.subplots(1, len(spaces), figsize=(3.6 * len(spaces), 3.2), sharey=False,
                             layout="constrained", squeeze=False)
    for ax, space in zip(axes[0], spaces, strict=True):
        for color, epoch in zip(colors, epochs, strict=True):
            rows = sel[(sel.space == space) & (sel.epoch == epoch)]
            x = rows.layer.map(depth)
            order = np.argsort(x.to_numpy())
            ax.plot(x.to_numpy()[order], rows.value.to_numpy()[order], "-o", ms=3, color=color,
                    label=f"epoch {epoch}")
        ax.set_title(f"probes scored in {space}", fontsize=9)
        ax.set_xlabel("normalised layer depth")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("probe accuracy (%)")
    axes[0, -1].legend(fontsize=7)
    return fig


__all__ = [
    "plot_ccc_heatmap",
    "plot_cover_curves",
    "plot_probe_depth",
]
