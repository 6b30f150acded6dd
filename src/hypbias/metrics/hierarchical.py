"""How bad the mistakes are: mistake severity and hierarchical top-k distance (DESIGN.md §2).

Definitions (report §3; Bertinetto et al. 2020, "Making Better Mistakes", §4), with d(i, j) an LCA
distance between classes i and j in the tree view (0 when i == j):

* mistake severity = mean of d(y, ŷ) over the samples whose top-1 prediction ŷ is wrong
  (NaN when there are none);
* hierarchical top-k distance = mean over samples of (1/k) Σ_{j=1}^{k} d(y, ŷ_j), ŷ_j the j-th most
  likely class; correct predictions count with distance 0.

``lca`` chooses d (:meth:`Hierarchy.lca_distance_matrix`): ``"depth"`` (the default), H − depth(LCA)
with H the tree height, is the distance of Bertinetto et al.'s released code and of their
published numbers (their ``ilsvrc_distances`` files equal it on every pair of classes of
tiered-ImageNet and ImageNet); ``"height"``, the LCA's height above its deepest leaf, is the
reading of "LCA height" that hypbias used before. They agree on trees whose leaves all lie at
the same depth.

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
from hypbias.metrics._inputs import logits_and_targets
from hypbias.metrics.base import Accumulator, State

DEFAULT_KS = (1, 5, 10, 20)
"""The k of the hierarchical top-k distance tracked by default (those that do not exceed C)."""

SEVERITY = "mistake_severity"
"""Metric name of the mistake severity in ``metrics.csv``."""


def topk_name(k: int) -> str:
    """Metric name of the hierarchical top-k distance in ``metrics.csv``: ``hier_dist@k``."""
    return f"hier_dist@{k}"


def lca_distances(hierarchy: Hierarchy, lca: str, owner: str) -> np.ndarray:
    """The (C, C) int64 LCA distances of ``hierarchy`` in convention ``lca`` (module docstring)."""
    if not isinstance(hierarchy, Hierarchy):
        raise ValueError(f"The 'hierarchy' parameter of {owner} must be a Hierarchy. "
                         f"Got {type(hierarchy).__name__} instead.")
    return hierarchy.lca_distance_matrix(lca, name="lca", owner=owner)


def hierarchical_sums(logits: torch.Tensor, targets: torch.Tensor, distances: torch.Tensor,
                      ks: Sequence[int]) -> torch.Tensor:
    """Additive statistics of one batch, float64 tensor of shape (3 + len(ks),).

    Entries: number of samples, number of top-1 mistakes, Σ over mistakes of d(y, ŷ), then for each
    k in ``ks`` Σ over samples of (1/k) Σ_{j≤k} d(y, ŷ_j). Sums of batches are the sums of their
    union, so shards merge by addition.

    Parameters
    ----------
    logits : tensor of shape (N, C)
    targets : long tensor of shape (N,)
    distances : tensor of shape (C, C)
        LCA distances (:meth:`Hierarchy.lca_distance_matrix`) on the device of ``logits``, 0 on
        the diagonal and positive elsewhere.
    ks : sequence of int in [1, C]
    """
    top = logits.topk(max(ks), dim=1).indices
    dist = distances[targets.unsqueeze(1), top].to(torch.float64)  # (N, max k)
    first = dist[:, 0]
    head = torch.stack([dist.new_tensor(float(len(targets))),
                        (top[:, 0] != targets).sum(dtype=torch.float64), first.sum()])
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


def mistake_severity(logits: Any, targets: Any, hierarchy: Hierarchy, *, lca: str = "depth") -> float:
    """Mean LCA distance d(y, ŷ) over the top-1 mistakes; NaN when there are none.

    Parameters
    ----------
    logits : tensor or array of shape (N, C), finite
    targets : tensor or array of shape (N,) of int in [0, C)
    hierarchy : Hierarchy with C classes
    lca : ``"depth"`` (H − depth(LCA), the published convention) or ``"height"`` (module docstring)
    """
    return _one_shot(logits, targets, hierarchy, lca, 1, "mistake_severity")[SEVERITY]


def hierarchical_topk_distance(logits: Any, targets: Any, hierarchy: Hierarchy, k: int, *,
                               lca: str = "depth") -> float:
    """Mean over samples and over the k most likely classes of the LCA distance to the truth.

    Parameters
    ----------
    logits : tensor or array of shape (N, C), finite
    targets : tensor or array of shape (N,) of int in [0, C)
    hierarchy : Hierarchy with C classes
    k : int in [1, C]
    lca : ``"depth"`` (H − depth(LCA), the published convention) or ``"height"`` (module docstring)
    """
    return _one_shot(logits, targets, hierarchy, lca, k, "hierarchical_topk_distance")[topk_name(k)]


def _one_shot(logits: Any, targets: Any, hierarchy: Hierarchy, lca: str, k: int,
              owner: str) -> dict[str, float]:
    distances = lca_distances(hierarchy, lca, owner)
    k = check_int(k, "k", owner, low=1, high=hierarchy.num_classes)
    logits, targets = logits_and_targets(logits, targets, hierarchy.num_classes, owner)
    sums = hierarchical_sums(logits, targets, torch.as_tensor(distances, device=logits.device), (k,))
    return metrics_from_sums(sums, (k,))


class HierarchicalMistakes(Accumulator):
    """Accumulates mistake severity and hierarchical top-k distances over batches.

    State is the float64 vector of :func:`hierarchical_sums` (``sums``, shape (3 + len(ks),)) on
    the device of the first batch, so updates never wait for the host beyond the one input check
    per batch, and shards merge exactly by addition.

    Parameters
    ----------
    hierarchy : Hierarchy with C classes
    ks : sequence of int in [1, C], optional
        Default: those of :data:`DEFAULT_KS` (1, 5, 10, 20) that do not exceed C.
    lca : ``"depth"`` (default) or ``"height"``: the LCA distance (module docstring).
    device : torch.device or str, optional
        Where the state lives; by default it follows the first batch.

    Examples
    --------
    >>> acc = HierarchicalMistakes(hierarchy)          # doctest: +SKIP
    >>> for logits, y in batches: acc.update(logits, y)  # doctest: +SKIP
    >>> acc.compute()  # {"mistake_severity": 1.6, "hier_dist@1": 0.4, "hier_dist@5": 1.9, ...}
    """

    states = (State("sums", ("num_sums",), torch.float64),)
    buffers = ("distances",)

    def __init__(self, hierarchy: Hierarchy, ks: Sequence[int] | None = None, *,
                 lca: str = "depth", device: torch.device | str | None = None) -> None:
        owner = "HierarchicalMistakes"
        self.distances = torch.from_numpy(lca_distances(hierarchy, lca, owner))
        c = hierarchy.num_classes
        if ks is None:
            ks = [k for k in DEFAULT_KS if k <= c]
        self.ks = tuple(sorted({check_int(k, "ks", owner, low=1, high=c) for k in ks}))
        if not self.ks:
            raise ValueError(f"The 'ks' parameter of {owner} must list at least one k. Got {ks!r} "
                             "instead.")
        self.num_classes = c
        self.lca = lca
        self.num_sums = 3 + len(self.ks)
        self._distance_copies: dict[torch.device, torch.Tensor] = {}
        super().__init__(device)

    def signature(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "ks": self.ks, "lca": self.lca}

    @property
    def names(self) -> list[str]:
        """The metric names :meth:`compute` returns, in order."""
        return [SEVERITY, *(topk_name(k) for k in self.ks)]

    def update(self, logits: Any, targets: Any) -> None:
        """Add a batch: finite logits of shape (N, C), targets of shape (N,) in [0, C)."""
        self._add(*logits_and_targets(logits, targets, self.num_classes,
                                      "HierarchicalMistakes.update"))

    def _add(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """:meth:`update` without the checks, for batches already validated (by the tracker):
        float logits (N, C), integer targets (N,) on their device."""
        state_device = self._device_for(logits.device)
        sums = hierarchical_sums(logits.detach(), targets.long(), self._distances_on(logits.device),
                                 self.ks)
        self.sums += sums.to(state_device)

    def _distances_on(self, device: torch.device) -> torch.Tensor:
        """The (C, C) distances on ``device``: the buffer, or a copy cached once per other device
        (so batches on another device than the state's do not copy the matrix every time)."""
        if device == self.distances.device:
            return self.distances
        if device not in self._distance_copies:
            self._distance_copies[device] = self.distances.to(device)
        return self._distance_copies[device]

    def compute(self) -> dict[str, float]:
        """``{"mistake_severity": ..., "hier_dist@k": ...}``; NaN before any sample."""
        return metrics_from_sums(self.sums, self.ks)
