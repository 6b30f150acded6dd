"""Validation of the batches that accumulators and metric functions receive, written once.

Every check of metadata (dimensions, dtypes, lengths) is free. Checks of values — labels within
[0, C), finite logits or features — need the data: they are fused into one small reduction per
batch whose result is copied to the host once, so a batch on a GPU costs one synchronisation
whatever it is checked for. Messages come from :mod:`hypbias._validation`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hypbias._validation import finite_error, integer_array, out_of_range, range_error


def as_tensor(value: Any, name: str, owner: str) -> torch.Tensor:
    """``value`` as a tensor (NumPy arrays and sequences are converted on the CPU)."""
    if isinstance(value, torch.Tensor):
        return value
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"The '{name}' parameter of {owner} must be a numeric array or tensor. "
            f"Got dtype {arr.dtype} instead."
        )
    return torch.as_tensor(np.ascontiguousarray(arr))


def float_matrix(value: Any, name: str, owner: str, columns: int | None,
                 rows: int | None = None) -> torch.Tensor:
    """A non-empty float tensor of shape (n, columns); metadata only.

    ``columns`` None: any number of columns (D); ``rows``: the n required (None: any n >= 1).
    """
    x = as_tensor(value, name, owner)
    if (x.ndim != 2 or x.shape[0] == 0 or not x.is_floating_point()
            or (columns is not None and x.shape[1] != columns)
            or (rows is not None and x.shape[0] != rows)):
        shape = f"({'n' if rows is None else rows}, {'D' if columns is None else columns})"
        raise ValueError(
            f"The '{name}' parameter of {owner} must be a non-empty float array of shape "
            f"{shape}. Got shape {tuple(x.shape)} and dtype {x.dtype} instead."
        )
    return x


def labels_for(values: torch.Tensor, labels: Any, name: str, owner: str) -> torch.Tensor:
    """1-d integer labels, one per row of ``values``, on its device; metadata only."""
    y = integer_array(as_tensor(labels, name, owner), name, owner, length=values.shape[0])
    return y.to(values.device)


def _nonfinite(x: torch.Tensor) -> torch.Tensor:
    return (~torch.isfinite(x)).sum() if x.is_floating_point() else x.new_zeros((), dtype=torch.int64)


def check_values(checks: list[tuple[str, torch.Tensor, int]],
                 finite: list[tuple[str, torch.Tensor]], owner: str) -> None:
    """The value checks of one batch with one host transfer.

    ``checks``: (name, integer tensor, upper bound C) for values that must lie in [0, C);
    ``finite``: (name, float tensor) pairs whose entries must be finite. One transfer when they
    share a device (the reductions of others are gathered on the first one's device first).
    """
    parts = [p for _, y, _ in checks for p in y.aminmax()] + [_nonfinite(x) for _, x in finite]
    if not parts:
        return
    host = torch.stack([p.to(parts[0].device, torch.int64) for p in parts]).tolist()
    for i, (name, _, high) in enumerate(checks):
        got = (host[2 * i], host[2 * i + 1])
        if out_of_range(got, 0, high):
            raise range_error(name, owner, 0, high, got)
    for count, (name, x) in zip(host[2 * len(checks):], finite, strict=True):
        if count:
            raise finite_error(name, owner, x)


_Checks = tuple[list[tuple[str, torch.Tensor, int]], list[tuple[str, torch.Tensor]]]


def _scores_and_targets(logits: Any, targets: Any, num_classes: int, owner: str,
                        predictions: bool) -> tuple[torch.Tensor, torch.Tensor, _Checks]:
    """The metadata checks of :func:`logits_and_targets`, and the value checks still to run."""
    raw = as_tensor(logits, "logits", owner)
    if predictions and raw.ndim == 1 and not raw.is_floating_point():
        preds = integer_array(raw, "logits", owner)
        y = labels_for(preds, targets, "targets", owner)
        return preds, y, ([("logits", preds, num_classes), ("targets", y, num_classes)], [])
    x = float_matrix(raw, "logits", owner, num_classes)
    y = labels_for(x, targets, "targets", owner)
    return x, y, ([("targets", y, num_classes)], [("logits", x)])


def logits_and_targets(logits: Any, targets: Any, num_classes: int, owner: str, *,
                       predictions: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated ``logits`` (N, C) float and finite, and ``targets`` (N,) in [0, C) on their device.

    With ``predictions=True``, ``logits`` may instead be integer predictions of shape (N,) in
    [0, C). One host transfer per call (:func:`check_values`).
    """
    x, y, (ranges, finite) = _scores_and_targets(logits, targets, num_classes, owner, predictions)
    check_values(ranges, finite, owner)
    return x, y


def tracked_batch(logits: Any, targets: Any, features: Any, num_classes: int,
                  owner: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One evaluation batch as the tracker receives it, validated with one host transfer.

    ``logits`` (N, C) float and finite, or integer predictions (N,) in [0, C); ``targets`` (N,) in
    [0, C), on the device of ``logits``; ``features`` None, or (N, D) float and finite for any D
    (the consumer checks D). The accumulators are then fed without checking again.
    """
    x, y, (ranges, finite) = _scores_and_targets(logits, targets, num_classes, owner, True)
    h = None
    if features is not None:
        h = float_matrix(features, "features", owner, None, rows=len(y))
        finite.append(("features", h))
    check_values(ranges, finite, owner)
    return x, y, h


def features_and_labels(features: Any, labels: Any, dim: int, num_classes: int,
                        owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated ``features`` (n, D) float and finite, ``labels`` (n,) in [0, C), on one device."""
    h = float_matrix(features, "features", owner, dim)
    y = labels_for(h, labels, "labels", owner)
    check_values([("labels", y, num_classes)], [("features", h)], owner)
    return h, y


def finite_features(features: Any, dim: int, owner: str) -> torch.Tensor:
    """Validated ``features`` (n, D), float and finite."""
    h = float_matrix(features, "features", owner, dim)
    check_values([], [("features", h)], owner)
    return h
