"""The per-term figure of the multi-level loss (the paper's §5 remark that coarse terms matter
mostly early in training).

Left: the epoch mean of each weighted term of the training loss (``loss_term`` rows): w_H · CE for
H, −w_s · log p(superclass) for each space. Right: each term's share of the loss, in percent.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hypbias.labelspace.spaceset import FINE, space_order
from hypbias.report.figures import FINE_COLOR, epoch_axis, outside_legend, space_colors, space_label


def loss_term_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """The ``loss_term`` rows as a table of epoch × term (H first, then the spaces in order)."""
    rows = metrics[metrics.metric == "loss_term"]
    wide = rows.pivot_table(index="epoch", columns="space", values="value", sort=True)
    return wide[space_order(list(wide.columns))]


def plot_loss_terms(metrics: pd.DataFrame, sizes: Mapping[str, int] | None = None) -> Figure | None:
    """Each term of the multi-level loss per epoch and its share of the loss; None without
    ``loss_term`` rows."""
    table = loss_term_table(metrics)
    if table.empty:
        return None
    share = 100.0 * table.div(table.sum(axis=1), axis=0)
    colors = space_colors([c for c in table.columns if c != FINE])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    for name in table.columns:
        color = FINE_COLOR if name == FINE else colors[name]
        label = space_label(name, sizes)
        ax1.plot(table.index, table[name], "o-", ms=3, color=color, label=label)
        ax2.plot(share.index, share[name], "o-", ms=3, color=color, label=label)
    ax1.set_ylabel("weighted term (nats, epoch mean)")
    ax2.set_ylabel("share of the training loss (%)")
    ax2.set_ylim(0, 100)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        epoch_axis(ax, float(table.index.max()))
    outside_legend(ax2)
    fig.suptitle("Terms of the multi-level loss during training")
    return fig


__all__ = ["loss_term_table", "plot_loss_terms"]
