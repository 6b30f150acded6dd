"""Streaming fine confusion matrix: the sufficient statistic of greedy accuracy in every label space."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hypbias._validation import check_int
from hypbias.metrics._inputs import logits_and_targets
from hypbias.metrics.base import Accumulator, State


class ConfusionMatrix(Accumulator):
    """Accumulates M[i, j] = number of samples of true class i predicted as j.

    One ``torch.bincount`` per batch on the batch's device, int64 state (C, C), so shards merge
    exactly by addition (:meth:`merge`, :meth:`all_reduce`).

    Parameters
    ----------
    num_classes : int
        C.
    device : torch.device or str, optional
        Where the state lives; by default it follows the first batch.

    Examples
    --------
    >>> cm = ConfusionMatrix(3)
    >>> cm.update(torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]]), torch.tensor([0, 1]))
    >>> cm.compute().tolist()
    [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    """

    states = (State("counts", ("num_classes", "num_classes"), torch.int64),)

    def __init__(self, num_classes: int, device: torch.device | str | None = None) -> None:
        self.num_classes = check_int(num_classes, "num_classes", "ConfusionMatrix", low=1)
        super().__init__(device)

    def signature(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes}

    def update(self, logits: Any, targets: Any) -> None:
        """Add a batch.

        Parameters
        ----------
        logits : tensor or array of shape (N, C), finite; or integer predictions of shape (N,)
        targets : tensor or array of int, shape (N,), values in [0, C)
        """
        scores, y = logits_and_targets(logits, targets, self.num_classes, "ConfusionMatrix.update",
                                       predictions=True)
        self._add(scores, y)

    def _add(self, scores: torch.Tensor, y: torch.Tensor) -> None:
        """:meth:`update` without the checks, for batches already validated (by the tracker):
        logits (N, C) or predictions (N,), targets (N,) on their device."""
        c = self.num_classes
        preds = scores.argmax(dim=1) if scores.ndim == 2 else scores
        dev = self._device_for(scores.device)
        flat = torch.bincount(y.long() * c + preds.long(), minlength=c * c)
        self.counts += flat.view(c, c).to(dev)

    def compute(self) -> np.ndarray:
        """The matrix, array of shape (C, C) of int64."""
        return self.counts.cpu().numpy().astype(np.int64)
