"""Streaming fine confusion matrix: the sufficient statistic of greedy accuracy in every label space."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hypbias._validation import check_int


class ConfusionMatrix:
    """Accumulates M[i, j] = number of samples of true class i predicted as j.

    One ``torch.bincount`` per batch on the batch's device, int64 state, so shards merge exactly by
    addition (:meth:`merge`, :meth:`all_reduce`).

    Parameters
    ----------
    num_classes : int
        C.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = check_int(num_classes, "num_classes", "ConfusionMatrix", low=1)
        self._counts: torch.Tensor | None = None

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch: ``logits`` of shape (N, C) (or predictions of shape (N,)), ``targets`` (N,)."""
        c = self.num_classes
        preds = logits.argmax(dim=1) if logits.ndim == 2 else logits
        if logits.ndim == 2 and logits.shape[1] != c:
            raise ValueError(
                f"The 'logits' parameter of ConfusionMatrix.update must have {c} columns. "
                f"Got shape {tuple(logits.shape)} instead."
            )
        if preds.shape != targets.shape:
            raise ValueError(
                f"ConfusionMatrix.update: {preds.shape[0]} predictions but targets of shape "
                f"{tuple(targets.shape)}"
            )
        flat = torch.bincount(targets.long() * c + preds.long(), minlength=c * c)
        if flat.numel() != c * c:
            raise ValueError(f"ConfusionMatrix.update: a target or prediction is outside [0, {c})")
        if self._counts is None:
            self._counts = flat
        else:
            self._counts += flat.to(self._counts.device)

    def compute(self) -> np.ndarray:
        """The matrix, array of shape (C, C) of int64."""
        if self._counts is None:
            return np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        return self._counts.view(self.num_classes, self.num_classes).cpu().numpy().astype(np.int64)

    def reset(self) -> None:
        self._counts = None

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another shard's counts into this one; returns self."""
        if other.num_classes != self.num_classes:
            raise ValueError("ConfusionMatrix.merge: the matrices have different numbers of classes")
        if other._counts is not None:
            if self._counts is None:
                self._counts = other._counts.clone()
            else:
                self._counts += other._counts.to(self._counts.device)
        return self

    def all_reduce(self, device: Any = None) -> None:
        """Sum the counts over the processes of ``torch.distributed`` (no-op when not initialised)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        if self._counts is None:
            self._counts = torch.zeros(self.num_classes**2, dtype=torch.int64, device=device)
        dist.all_reduce(self._counts)
