"""The frequency-analysis figure (paper Fig. 17–18): accuracy on blurred images against σ.

Columns: H and each hypernym space. Rows: accuracy A_σ(X) in percent; relative accuracy
A_σ(X) / A_0(X); relative gain (A_σ(X) − B(X)) / (A_0(X) − B(X)), the paper's G, both against the
unblurred accuracy of the same checkpoint. One line per evaluated checkpoint, early ones light and
late ones dark, so an early checkpoint that leaned more on low frequencies would sit above the late
one in the bottom rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hypbias.analysis.blur import blur_table
from hypbias.labelspace.spaceset import is_random_space, space_order
from hypbias.report.figures import SYMLOG, outside_legend, space_label

BLUR_ROWS = (("blur_accuracy", "accuracy (%)"),
             ("blur_relative_accuracy", "A_σ / A_0"),
             ("blur_relative_gain", "relative gain G"))


def plot_blur(metrics: pd.DataFrame, split: str | None = None, spaces: Sequence[str] | None = None,
              sizes: Mapping[str, int] | None = None) -> Figure | None:
    """Accuracy, relative accuracy and relative gain against σ per space, one line per checkpoint.

    ``spaces`` defaults to H and the hypernym spaces of the blur rows (random ones left out);
    returns None when the table holds no blur rows.
    """
    table = blur_table(metrics)
    if table.empty:
        return None
    split = split or str(table.split.iloc[0])
    table = table[table.split == split]
    names = list(spaces) if spaces is not None else [
        s for s in space_order(list(table.space)) if not is_random_space(s)]
    epochs = sorted(table.epoch.unique())
    colors = plt.get_cmap("viridis_r")(np.linspace(0.15, 0.95, len(epochs)))
    fig, axes = plt.subplots(len(BLUR_ROWS), len(names),
                             figsize=(3.3 * len(names) + 1.8, 2.6 * len(BLUR_ROWS)),
                             sharex=True, sharey="row", layout="constrained", squeeze=False)
    for col, space in enumerate(names):
        for row, (metric, ylabel) in enumerate(BLUR_ROWS):
            ax = axes[row, col]
            for color, epoch in zip(colors, epochs, strict=True):
                sel = table[(table.space == space) & (table.metric == metric) & (table.epoch == epoch)]
                ax.plot(sel.sigma, sel.value, "-o", ms=3, color=color, label=f"epoch {epoch}")
            if row == 0:
                ax.set_title(space_label(space, sizes), fontsize=10)
            if col == 0:
                ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
    sigmas = sorted(table.sigma.unique())
    for ax in axes[-1]:
        ax.set_xscale("symlog", **SYMLOG)
        ax.set_xticks(sigmas, [f"{s:g}" for s in sigmas])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("blur σ (pixels)")
    outside_legend(axes[0, -1])
    fig.suptitle(f"Accuracy on Gaussian-blurred images ({split}), per checkpoint", fontsize=10)
    return fig


__all__ = ["plot_blur"]
