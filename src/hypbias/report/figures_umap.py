"""UMAP pictures of a layer at a few epochs (paper Fig. 1b, 12 and 13).

One row per epoch. Columns: the examples coloured by the hierarchy distance of their class to an
anchor class (Fig. 1b, 12), the same examples coloured by superclass, and the embedded class means
coloured by distance (Fig. 13). Points of classes nearer the anchor are drawn on top; the anchor's
class centre is a star. UMAP coordinates carry no units, so the axes have no ticks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hypbias.analysis.umap_pictures import Picture
from hypbias.labelspace import LabelSpace

DISTANCE_CMAP = "turbo_r"
"""Near classes red, far ones blue, as in the paper's pictures."""


def _near_on_top(distance: np.ndarray) -> np.ndarray:
    """Drawing order: farthest first, so that the classes near the anchor stay visible."""
    return np.argsort(-distance, kind="stable")


def plot_umap_pictures(pictures: Mapping[int, Picture], distances: np.ndarray, *, anchor: int,
                       class_names: Sequence[str], groups: LabelSpace | None = None,
                       group_name: str | None = None) -> Figure:
    """Draw the pictures of one layer, one row per epoch (keys of ``pictures``, ascending).

    Parameters
    ----------
    pictures : epoch -> Picture of the layer
    distances : float array of shape (C,), each class's hierarchy distance to the anchor
    anchor : the anchor class
    class_names : the C class names
    groups : the superclass space of the middle column (None leaves the column out)
    group_name : its name, for the column title
    """
    epochs = sorted(pictures)
    ncols = 3 if groups is not None else 2
    fig, axes = plt.subplots(len(epochs), ncols, figsize=(3.3 * ncols + 2.6, 3.0 * len(epochs)),
                             layout="constrained", squeeze=False)
    norm = Normalize(vmin=0.0, vmax=max(float(np.max(distances)), 1e-9))
    cmap = plt.get_cmap(DISTANCE_CMAP)
    group_colors = plt.get_cmap("tab10" if groups is None or groups.num_groups <= 10 else "tab20")
    scatter = None
    for row, epoch in zip(axes, epochs, strict=True):
        pic = pictures[epoch]
        d = distances[pic.labels]
        order = _near_on_top(d)
        scatter = row[0].scatter(pic.points[order, 0], pic.points[order, 1], c=d[order], cmap=cmap,
                                 norm=norm, s=4, lw=0)
        if groups is not None:
            g = groups.t[pic.labels]
            for k in np.unique(g):
                sel = g == k
                row[1].scatter(pic.points[sel, 0], pic.points[sel, 1], s=4, lw=0,
                               color=group_colors(k % group_colors.N), label=groups.names[k])
        shown = np.flatnonzero(np.isfinite(pic.centres[:, 0]))
        corder = shown[_near_on_top(distances[shown])]
        row[-1].scatter(pic.centres[corder, 0], pic.centres[corder, 1], c=distances[corder],
                        cmap=cmap, norm=norm, s=18, lw=0.3, edgecolors="black")
        if np.isfinite(pic.centres[anchor, 0]):  # hollow, so the anchor's own colour shows
            row[-1].scatter(*pic.centres[anchor], marker="*", s=200, facecolors="none",
                            edgecolors="black", lw=1.0)
        row[0].set_ylabel(f"epoch {epoch}")
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    top = axes[0]
    top[0].set_title(f"examples by distance to {class_names[anchor]}", fontsize=9)
    if groups is not None:
        top[1].set_title(f"examples by superclass ({group_name or 'groups'})", fontsize=9)
    top[-1].set_title("class means", fontsize=9)
    handles = [Line2D([], [], ls="", marker="*", ms=11, mfc="none", mec="black",
                      label=f"anchor: {class_names[anchor]}")]
    if groups is not None and groups.num_groups <= 20:
        handles += [Line2D([], [], ls="", marker="o", ms=5, color=group_colors(k % group_colors.N),
                           label=groups.names[k]) for k in range(groups.num_groups)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 7), fontsize=7,
               frameon=False)
    fig.colorbar(scatter, ax=axes[:, -1].tolist(), shrink=0.8,
                 label=f"hierarchy distance to {class_names[anchor]}")
    return fig


__all__ = ["plot_umap_pictures"]
