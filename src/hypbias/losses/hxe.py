"""Hierarchical cross-entropy (HXE; report §3.1, Bertinetto et al. 2020 Eq. 2–4)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hypbias._validation import check_choice, check_float
from hypbias.hierarchy.tree import Hierarchy
from hypbias.losses._common import (
    REDUCTIONS,
    check_hierarchy,
    checked_logits,
    group_logsumexp,
    reduce,
)
from hypbias.losses.options import LossSpec, Option

WEIGHTINGS = ("depth", "height_literal")


class HierarchicalCrossEntropy(nn.Module):
    """Hierarchical cross-entropy (HXE; report §3.1, Bertinetto et al. 2020 Eq. 2–4).

    With C^(0) the true class, C^(1) its parent in the tree view, …, C^(h) the root (h = the depth
    of the true class, so paths in unbalanced trees have their own lengths),

        L = − Σ_{l=0}^{h−1} λ(C^(l)) log p(C^(l) | C^(l+1)),
        p(C^(l) | C^(l+1)) = Σ_{A ∈ leaves(C^(l))} p(A) / Σ_{B ∈ leaves(C^(l+1))} p(B),

    p = softmax(logits). Each term weights the edge from C^(l) up to its parent by a weight of the
    lower node C^(l):

    * ``weighting="depth"`` (the default; Bertinetto et al.'s released code,
      ``get_exponential_weighting`` in ``fiveai/making-better-mistakes``, which produced their
      published results): λ(C) = exp(−α · depth(C)) / Z, depth counted in edges from the root and
      Z = Σ_{nodes v} exp(−α · depth(v)) over *every* node of the tree view, root and leaves
      included, as the released code sums over all tree positions. Weights fall with depth: fine
      decisions are discounted against coarse ones, and larger α lowers mistake severity. The edge
      weights sum to 1 − 1/Z, so the loss is roughly CE / (number of nodes) at α = 0: with SGD,
      raise the learning rate accordingly. Nodes with no class below them in the tree view
      (possible when a graph hierarchy is reduced to its tree) are not part of the tree.
    * ``weighting="height_literal"``: the course report's formula read literally,
      λ(C) = exp(−α · height(C)) with leaves at height 0, unnormalised. It weights the other way:
      the leaf-to-parent edge always has weight 1 and coarse edges are discounted. No published
      result used it.

    With α = 0 every ``height_literal`` weight is 1 and the conditionals telescope to −log p(C^(0)):
    plain cross-entropy (``depth`` gives the same divided by the number of nodes).

    Computation: log p(v) of every node v of the tree view is the log-sum-exp of its children's,
    computed level by level from the deepest (:func:`group_logsumexp`, each node shifted by the
    maximum of its own children, so a node whose probabilities are all far below float32's range
    stays finite), which costs O(N · number of nodes) in all. log p(root) = 0 exactly, and L is
    −Σ_v coef[y, v] · log p(v) over the path of y, with per-class path coefficients precomputed in
    ``__init__`` (coef = λ_0 on the leaf, λ_l − λ_{l−1} on the l-th ancestor), stored in float32
    like the soft targets of :class:`~hypbias.losses.SoftLabelCrossEntropy`.

    Parameters
    ----------
    hierarchy : Hierarchy
        Its tree view is used (first parent of every node).
    alpha : float >= 0
        Decay α of the weights.
    weighting : {"depth", "height_literal"}
    reduction : {"mean", "sum", "none"}

    Shapes: ``forward(logits (N, C), targets (N,))`` → scalar, or (N,) for ``reduction="none"``.
    """

    def __init__(self, hierarchy: Hierarchy, alpha: float, weighting: str = "depth",
                 reduction: str = "mean") -> None:
        super().__init__()
        owner = "HierarchicalCrossEntropy"
        h = check_hierarchy(hierarchy, owner)
        self.alpha = check_float(alpha, "alpha", owner, low=0.0)
        self.weighting = check_choice(weighting, "weighting", owner, WEIGHTINGS)
        self.reduction = check_choice(reduction, "reduction", owner, REDUCTIONS)
        self.num_classes = h.num_classes

        # paths[c] = [c, parent, ..., child of the root] as node indices (the root is left out)
        paths = [[c, *(h.index(a) for a in h.ancestors(c)[:-1])] for c in range(h.num_classes)]
        levels, column, parent_index = _levels(paths, h.num_classes)
        weights = self._node_weights(h)
        max_len = max(len(p) for p in paths)
        cols = np.zeros((h.num_classes, max_len), dtype=np.int64)
        coef = np.zeros((h.num_classes, max_len), dtype=np.float64)
        for c, path in enumerate(paths):
            w = weights[path]
            coef[c, : len(path)] = w - np.concatenate([[0.0], w[:-1]])
            cols[c, : len(path)] = [column[v] for v in path]
        classes_by_level = [v for level in levels for v in level if v < h.num_classes]
        self.register_buffer("classes_by_level", torch.as_tensor(classes_by_level),
                             persistent=False)
        self.register_buffer("parent_index", torch.as_tensor(parent_index, dtype=torch.int64),
                             persistent=False)
        self.register_buffer("path_columns", torch.as_tensor(cols), persistent=False)
        self.register_buffer("path_coef", torch.as_tensor(coef, dtype=torch.float32),
                             persistent=False)
        # (internal nodes, classes) at each depth, deepest first
        self._level_sizes = [(sum(v >= h.num_classes for v in level),
                              sum(v < h.num_classes for v in level)) for level in levels]

    def _node_weights(self, h: Hierarchy) -> np.ndarray:
        """λ of every node (index as in ``h.nodes``), shape (num_nodes,)."""
        if self.weighting == "height_literal":
            height = np.array([h.node_height(v) for v in range(len(h.nodes))], dtype=np.float64)
            return np.exp(-self.alpha * height)
        depth = np.array([h.depth(v) for v in range(len(h.nodes))], dtype=np.float64)
        in_tree = np.array([h.leaves(v).size > 0 for v in range(len(h.nodes))])
        raw = np.exp(-self.alpha * depth)
        return raw / raw[in_tree].sum()

    def node_log_probs(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log p(v) for the nodes v on each sample's path, leaf first, root left out.

        Returns a tensor of shape (N, max_depth); positions past a shallow leaf's path are padding
        (their coefficients are zero).
        """
        log_p = F.log_softmax(
            checked_logits(logits, self.num_classes, "HierarchicalCrossEntropy"), dim=1)
        leaves = log_p.index_select(1, self.classes_by_level)
        tables: list[torch.Tensor] = []
        done_leaves = done_children = 0
        for num_internal, num_leaves in self._level_sizes:
            parts = []
            if num_internal:  # the level below is complete: every node there has its parent here
                below = tables[-1]
                index = self.parent_index[done_children: done_children + below.shape[1]]
                parts.append(group_logsumexp(below, index, num_internal))
                done_children += below.shape[1]
            if num_leaves:
                parts.append(leaves[:, done_leaves: done_leaves + num_leaves])
                done_leaves += num_leaves
            tables.append(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])
        return torch.cat(tables, dim=1).gather(1, self.path_columns[targets])

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        node_logp = self.node_log_probs(logits, targets)
        loss = -(self.path_coef[targets].to(node_logp.dtype) * node_logp).sum(dim=1)
        return reduce(loss, self.reduction)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, weighting={self.weighting!r}, reduction={self.reduction!r}"


def _levels(paths: list[list[int]], num_classes: int
            ) -> tuple[list[list[int]], dict[int, int], list[int]]:
    """The non-root nodes of the tree view grouped by depth, for the bottom-up log-sum-exp.

    Returns ``levels`` (deepest first; in each, internal nodes then classes, by node index),
    ``column`` (node -> its column in the concatenation of the levels) and ``parent_index``: for
    every level but the shallowest, in order, the position of each node's parent in the next
    level (parents are internal, so they come first there).
    """
    depth = {v: len(p) - i for p in paths for i, v in enumerate(p)}
    parent = {p[i]: p[i + 1] for p in paths for i in range(len(p) - 1)}
    by_depth: dict[int, list[int]] = {}
    for v in sorted(depth, key=lambda v: (v < num_classes, v)):
        by_depth.setdefault(depth[v], []).append(v)
    levels = [by_depth[d] for d in sorted(by_depth, reverse=True)]
    position = {v: i for level in levels for i, v in enumerate(level)}
    column, offset = {}, 0
    for level in levels:
        column.update({v: offset + i for i, v in enumerate(level)})
        offset += len(level)
    parent_index = [position[parent[v]] for level in levels[:-1] for v in level]
    return levels, column, parent_index


SPEC = LossSpec(
    "hxe",
    lambda hierarchy, spaces, label_smoothing, options: HierarchicalCrossEntropy(hierarchy,
                                                                                 **options),
    {"alpha": Option("float", 0.1, "decay α of the edge weights", low=0.0),
     "weighting": Option("choice", "depth", "'depth': Bertinetto et al.'s released code; "
                         "'height_literal': the course report's formula", choices=WEIGHTINGS)},
)
