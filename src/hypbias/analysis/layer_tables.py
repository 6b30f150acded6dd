"""The paper's per-layer tables from the long-format metrics table: Table 6 (three CCCs per layer with
an average row) and Table 7 (probes trained in a hypernym space vs in H), and the epochs a figure
shows when it cannot show them all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hypbias.analysis.metric_names import metric_param
from hypbias.analysis.tables import layer_order, layer_rows

CCC_COLUMNS = {"ccc_direct": "direct comparison", "ccc_class_means": "class means",
               "ccc_cover": "mutual cover"}
"""Table 6's columns, in the paper's order: the CCC metric and its heading (App. C.3)."""

AVERAGE = "average"
"""The label of Table 6's last row."""


def pick_epochs(epochs: Sequence[int], n: int = 3) -> list[int]:
    """At most ``n`` of the measured ``epochs`` for a figure: early, middle and last.

    Early is the first epoch after the first one measured (epoch 1 rather than the initialisation),
    last the final one, and the others the measured epochs closest to geometric steps between them,
    so that a few epochs show where a run changes most (its start) and how it ends.
    """
    measured = sorted({int(e) for e in epochs})
    if len(measured) <= n:
        return measured
    early, last = measured[1], measured[-1]
    if n == 1:
        return [last]
    targets = np.geomspace(max(early, 1), max(last, 1), n)[1:-1] if n > 2 else []
    picks = {early, last}
    for t in targets:
        free = [e for e in measured if e not in picks]
        picks.add(min(free, key=lambda e: (abs(np.log(max(e, 1) / t)), e)))
    return sorted(picks)


def ccc_table(metrics: pd.DataFrame, epochs: Sequence[int] | None = None,
              split: str | None = None) -> pd.DataFrame:
    """Table 6: the three CCCs of each layer at each of ``epochs``, and their average over layers.

    Parameters
    ----------
    metrics : long-format metrics table with per-layer ``ccc_*`` rows
    epochs : epochs to show; default every measured epoch
    split : split of the rows; default the first holding them

    Returns
    -------
    DataFrame indexed by layer (bottom first) and ``"average"`` (the mean over the layers), with
    columns (epoch, heading) for the headings of :data:`CCC_COLUMNS` present in the table.
    """
    frames = {}
    for metric, heading in CCC_COLUMNS.items():
        if not (metrics.metric == metric).any():
            continue
        rows = layer_rows(metrics, metric, split)
        frames[heading] = rows.pivot_table(index="layer", columns="epoch", values="value")
    if not frames:
        raise ValueError("The metrics table has no per-layer CCC rows (ccc_direct, ccc_class_means, "
                         "ccc_cover).")
    layers = layer_order(layer_rows(metrics, next(m for m in CCC_COLUMNS if
                                                  (metrics.metric == m).any()), split))
    shown = sorted({e for f in frames.values() for e in f.columns}) if epochs is None else list(epochs)
    table = pd.DataFrame(
        {(epoch, heading): frame.reindex(layers)[epoch] if epoch in frame else np.nan
         for epoch in shown for heading, frame in frames.items()}, index=layers)
    table.loc[AVERAGE] = table.mean(axis=0)
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["epoch", "CCC"])
    table.index.name = "layer"
    return table


def probe_table(metrics: pd.DataFrame, scored: str, epoch: int | None = None,
                split: str | None = None) -> pd.DataFrame:
    """Table 7: accuracy in ``scored`` of probes trained in each space, per layer, at one epoch.

    Probes trained in H are the ``probe_accuracy`` rows; those trained in a space X the
    ``probe_accuracy@trained=X`` rows. Returns a DataFrame indexed by layer (bottom first) with one
    column per training space (``"trained in X"``, hypernym spaces first and H last), at ``epoch``
    (default the last epoch measured).
    """
    probes = metrics[metrics.layer.fillna("") != ""]
    trained = probes.metric.map(lambda m: "H" if m == "probe_accuracy"
                                else metric_param(m, "probe_accuracy", "trained"))
    probes = probes.assign(trained=trained)[trained.notna() & (probes.space == scored)]
    if split is not None:
        probes = probes[probes.split == split]
    if probes.empty:
        raise ValueError(f"The metrics table has no per-layer probe rows scored in {scored!r}.")
    epoch = int(probes.epoch.max()) if epoch is None else int(epoch)
    probes = probes[probes.epoch == epoch]
    wide = probes.pivot_table(index="layer", columns="trained", values="value")
    order = [t for t in dict.fromkeys(probes.trained) if t != "H"] + ["H"] * ("H" in wide)
    wide = wide.reindex(index=layer_order(probes), columns=order)
    wide.columns = [f"trained in {t}" for t in order]
    wide.index.name = "layer"
    return wide


__all__ = ["AVERAGE", "CCC_COLUMNS", "ccc_table", "pick_epochs", "probe_table"]
