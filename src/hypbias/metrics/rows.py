"""The one row type of the long-format metrics table (``metrics.csv``).

Every per-epoch number hypbias measures is one row ``(epoch, split, space, metric, value, layer)``:
label-space accuracies derived from confusion matrices, neural collapse, mistake severity, the
layer-wise manifold analysis. Rows are plain dicts (they are saved in checkpoints, which hold only
plain data), built by :func:`metric_row` so that the layout is written once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("epoch", "split", "space", "metric", "value", "layer")
"""Columns of the metrics table, in order."""


class MetricRow(TypedDict):
    """One measured value. ``layer`` is the empty string for whole-model metrics."""

    epoch: int
    split: str
    space: str
    metric: str
    value: float
    layer: str


def metric_row(epoch: int, split: str, space: str, metric: str, value: float,
               layer: str = "") -> MetricRow:
    """A row with plain Python values (``value`` as float, NaN allowed)."""
    return {"epoch": int(epoch), "split": str(split), "space": str(space), "metric": str(metric),
            "value": float(value), "layer": str(layer)}


def rows_frame(rows: Iterable[MetricRow]) -> pd.DataFrame:
    """The rows as a DataFrame with exactly :data:`COLUMNS` (``layer`` as strings)."""
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=list(COLUMNS))
    frame["layer"] = frame["layer"].fillna("").astype(str)
    return frame


__all__ = ["COLUMNS", "MetricRow", "metric_row", "rows_frame"]
