"""How bad the mistakes are: mistake severity and hierarchical top-k distance (DESIGN.md §2).

Definitions (report §3; Bertinetto et al. 2020, "Making Better Mistakes", §4), with h(i, j) the
height of the lowest common ancestor of classes i and j in the tree view (0 when i == j):

* mistake severity = mean of h(y, ŷ) over the samples whose top-1 prediction ŷ is wrong
  (NaN when there are none);
* hierarchical top-k distance = mean over samples of (1/k) Σ_{j=1}^{k} h(y, ŷ_j), ŷ_j the j-th most
  likely class; correct predictions count with distance 0.

The functional core :func:`hierarchical_sums` turns a batch into additive float64 sums;
:class:`HierarchicalMistakes` accumulates them over batches (and shards) so that an epoch's values
need no stored logits. Top-k ranks follow ``torch.topk`` (ties between equal logits are broken as
it breaks them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hypbias._validation import check_int
from hypbias.hierarchy.tree import Hierarchy

DEFAULT_KS = (1, 5, 10, 20)
"""The k of the hierarchical top-k distance tracked by default (those that do not exceed C)."""

SEVERITY = "mistake_severity"
"""Metric name of the mistake severity in ``metrics.csv``."""


def topk_name(k: int) -> str:
    """Metric name of the hierarchical top-k distance in ``metrics.csv``: ``hier_dist@k``."""
    return f"hier_dist@{k}"


def _batch(logits: Any, targets: Any, num_classes: int, owner: str) -> tuple[torch.Tensor, ...]:
    logits = torch.as_tensor(logits)
    targets = torch.as_tensor(targets, device=logits.device)
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(
            f"The 'logits' parameter of {owner} must have shape (N, {num_classes}). "
            f"Got shape {tuple(logits.shape)} instead."
        )
    if targets.shape != logits.shape[:1] or targets.is_floating_point():
        raise ValueError(
            f"The 'targets' parameter of {owner} must be {logits.shape[0]} integer labels. "
            f"Got shape {tuple(targets.shape)} and dtype {targets.dtype} instead."
        )
    return logits, targets.long()


def hierarchical_sums(logits: torch.Tensor, targets: torch.Tensor, heights: torch.Tensor,
                      ks: Sequence[int]) -> torch.Tensor:
    """Additive statistics of one batch, float64 tensor of shape (3 + len(ks),).

    Entries: number of samples, number of top-1 mistakes, Σ over mistakes of h(y, ŷ), then for each
    k in ``ks`` Σ over samples of (1/k) Σ_{j≤k} h(y, ŷ_j). Sums of batches are the sums of their
    union, so shards merge by addition.

    Parameters
    ----------
    logits : tensor of shape (N, C)
    targets : long tensor of shape (N,)
    heights : tensor of shape (C, C)
        LCA heights (:meth:`Hierarchy.lca_height_matrix`) on the device of ``logits``.
    ks : sequence of int in [1, C]
    """
    top = logits.topk(max(ks), dim=1).indices
    dist = heights[targets.unsqueeze(1), top].to(torch.float64)  # (N, max k)
    first = dist[:, 0]
    head = torch.stack([dist.new_tensor(float(len(targets))),
                        (first > 0).sum(dtype=torch.float64), first.sum()])
    per_k = dist.cumsum(dim=1)[:, [k - 1 for k in ks]].sum(dim=0) / dist.new_tensor(ks)
    return torch.cat([head, per_k])


def metrics_from_sums(sums: Any, ks: Sequence[int]) -> dict[str, float]:
    """Mistake severity and hierarchical top-k distances from :func:`hierarchical_sums`.

    Returns ``{"mistake_severity": ..., "hier_dist@k": ... for k in ks}``; NaN where undefined
    (no samples, or no mistakes for the severity).
    """
    s = np.asarray(torch.as_tensor(sums).cpu(), dtype=np.float64)
    out = {SEVERITY: float(s[2] / s[1]) if s[1] else float("nan")}
    for k, total in zip(ks, s[3:], strict=True):
        out[topk_name(k)] = float(total / s[0]) if s[0] else float("nan")
    return out


def _heights(hierarchy: Hierarchy, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(hierarchy.lca_height_matrix(), device=device)


def mistake_severity(logits: Any, targets: Any, hierarchy: Hierarchy) -> float:
    """Mean LCA height h(y, ŷ) over the top-1 mistakes; NaN when there are none.

    Parameters
    ----------
    logits : tensor or array of shape (N, C)
    targets : tensor or array of shape (N,) of int
    hierarchy : Hierarchy with C classes
    """
    logits, targets = _batch(logits, targets, hierarchy.num_classes, "mistake_severity")
    sums = hierarchical_sums(logits, targets, _heights(hierarchy, logits.device), (1,))
    return metrics_from_sums(sums, (1,))[SEVERITY]


def hierarchical_topk_distance(logits: Any, targets: Any, hierarchy: Hierarchy, k: int) -> float:
    """Mean over samples and over the k most likely classes of the LCA height to the truth.

    Parameters
    ----------
    logits : tensor or array of shape (N, C)
    targets : tensor or array of shape (N,) of int
    hierarchy : Hierarchy with C classes
    k : int in [1, C]
    """
    owner = "hierarchical_topk_distance"
    k = check_int(k, "k", owner, low=1, high=hierarchy.num_classes)
    logits, targets = _batch(logits, targets, hierarchy.num_classes, owner)
    sums = hierarchical_sums(logits, targets, _heights(hierarchy, logits.device), (k,))
    return metrics_from_sums(sums, (k,))[topk_name(k)]


class HierarchicalMistakes:
    """Accumulates mistake severity and hierarchical top-k distances over batches.

    State is the float64 vector of :func:`hierarchical_sums` on the device of the first batch, so
    updates never synchronise with the host and shards merge exactly by addition.

    Parameters
    ----------
    hierarchy : Hierarchy with C classes
    ks : sequence of int in [1, C], optional
        Default: those of :data:`DEFAULT_KS` (1, 5, 10, 20) that do not exceed C.

    Examples
    --------
    >>> acc = HierarchicalMistakes(hierarchy)          # doctest: +SKIP
    >>> for logits, y in batches: acc.update(logits, y)  # doctest: +SKIP
    >>> acc.compute()  # {"mistake_severity": 1.6, "hier_dist@1": 0.4, "hier_dist@5": 1.9, ...}
    """

    def __init__(self, hierarchy: Hierarchy, ks: Sequence[int] | None = None) -> None:
        owner = "HierarchicalMistakes"
        c = hierarchy.num_classes
        if ks is None:
            ks = [k for k in DEFAULT_KS if k <= c]
        self.ks = tuple(sorted({check_int(k, "ks", owner, low=1, high=c) for k in ks}))
        if not self.ks:
            raise ValueError(f"The 'ks' parameter of {owner} must list at least one k. Got {ks!r} "
                             "instead.")
        self.num_classes = c
        self._heights_np = hierarchy.lca_height_matrix()
        self._heights: dict[torch.device, torch.Tensor] = {}
        self._sums: torch.Tensor | None = None

    @property
    def names(self) -> list[str]:
        """The metric names :meth:`compute` returns, in order."""
        return [SEVERITY, *(topk_name(k) for k in self.ks)]

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch: logits of shape (N, C), targets of shape (N,)."""
        logits, targets = _batch(logits, targets, self.num_classes, "HierarchicalMistakes.update")
        dev = logits.device
        if dev not in self._heights:
            self._heights[dev] = torch.as_tensor(self._heights_np, device=dev)
        sums = hierarchical_sums(logits.detach(), targets, self._heights[dev], self.ks)
        self._sums = sums if self._sums is None else self._sums + sums.to(self._sums.device)

    def compute(self) -> dict[str, float]:
        """``{"mistake_severity": ..., "hier_dist@k": ...}``; NaN before any sample."""
        sums = self._sums if self._sums is not None else torch.zeros(3 + len(self.ks))
        return metrics_from_sums(sums, self.ks)

    def reset(self) -> None:
        self._sums = None

    def merge(self, other: HierarchicalMistakes) -> HierarchicalMistakes:
        """Add another shard's sums into this one; returns self."""
        if other.ks != self.ks or other.num_classes != self.num_classes:
            raise ValueError("HierarchicalMistakes.merge: the accumulators track different "
                             f"classes or ks ({other.num_classes}, {other.ks} vs "
                             f"{self.num_classes}, {self.ks})")
        if other._sums is not None:
            self._sums = other._sums.clone() if self._sums is None else \
                self._sums + other._sums.to(self._sums.device)
        return self

    def all_reduce(self, device: Any = None) -> None:
        """Sum the state over the ``torch.distributed`` processes (no-op when not initialised)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        if self._sums is None:
            self._sums = torch.zeros(3 + len(self.ks), dtype=torch.float64, device=device)
        dist.all_reduce(self._sums)
