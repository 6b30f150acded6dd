"""Hierarchical losses (DESIGN.md §2; report §3; Bertinetto et al. 2020, "Making Better Mistakes").

* :class:`HierarchicalCrossEntropy` (HXE): cross-entropy factorised along the tree-view path from
  the true class to the root, each conditional weighted by its node's height (or depth).
* :class:`SoftLabelCrossEntropy`: cross-entropy against soft targets that decay with the LCA height.
* :class:`MultiLevelCrossEntropy`: fine cross-entropy plus cross-entropy in chosen label spaces, on
  the summed probabilities of each superclass (YOLO9000-style).
* :func:`build_loss`: the factory for the config's ``loss:`` section.

Every loss takes logits of shape (N, C) and fine targets of shape (N,), works in log space (no
probability is ever exponentiated and summed without a shift), and reduces by ``"mean"`` (default),
``"sum"`` or ``"none"`` (a tensor of shape (N,)).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hypbias._validation import check_choice, check_float
from hypbias.errors import ConfigError
from hypbias.hierarchy.tree import Hierarchy
from hypbias.labelspace import LabelSpace

REDUCTIONS = ("mean", "sum", "none")
LOSSES = ("ce", "hxe", "soft", "multilevel")


def group_logsumexp(log_p: torch.Tensor, index: torch.Tensor, num_groups: int) -> torch.Tensor:
    """log Σ_{c : index[c] = g} exp(log_p[:, c]) for every group g, without underflow.

    Each group is shifted by its own maximum (detached: the log-sum-exp does not depend on the
    shift), so a group whose probabilities are all ~1e-30 still gets a finite log-probability and
    finite gradients.

    Parameters
    ----------
    log_p : tensor of shape (N, C)
        Log-probabilities (or any log-weights).
    index : long tensor of shape (C,)
        Group of each column, values in ``0 .. num_groups-1``; every group must be non-empty.
    num_groups : int

    Returns
    -------
    tensor of shape (N, num_groups)
    """
    idx = index.expand_as(log_p)
    shift = log_p.new_full((log_p.shape[0], num_groups), -torch.inf)
    shift = shift.scatter_reduce(1, idx, log_p.detach(), reduce="amax")
    scaled = torch.exp(log_p - shift.gather(1, idx))
    summed = log_p.new_zeros((log_p.shape[0], num_groups)).scatter_add(1, idx, scaled)
    return shift + torch.log(summed)


def _checked_logits(logits: torch.Tensor, num_classes: int, owner: str) -> torch.Tensor:
    """Logits of shape (N, C), half precision promoted to float32."""
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(
            f"The 'logits' parameter of {owner} must have shape (N, {num_classes}). "
            f"Got shape {tuple(logits.shape)} instead."
        )
    if logits.dtype in (torch.float16, torch.bfloat16):
        return logits.float()
    return logits


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_hierarchy(hierarchy: Any, owner: str) -> Hierarchy:
    if not isinstance(hierarchy, Hierarchy):
        raise TypeError(
            f"The 'hierarchy' parameter of {owner} must be a Hierarchy. "
            f"Got {type(hierarchy).__name__} instead."
        )
    if hierarchy.num_classes < 2:
        raise ValueError(
            f"The 'hierarchy' parameter of {owner} must have at least 2 classes. "
            f"Got {hierarchy.num_classes} instead."
        )
    return hierarchy


class HierarchicalCrossEntropy(nn.Module):
    """Hierarchical cross-entropy (HXE; report §3.1, Bertinetto et al. 2020 Eq. 2–4).

    With C^(0) the true class, C^(1) its parent in the tree view, …, C^(h) the root (h = the depth
    of the true class, so paths in unbalanced trees have their own lengths),

        L = − Σ_{l=0}^{h−1} λ(C^(l)) log p(C^(l) | C^(l+1)),
        p(C^(l) | C^(l+1)) = Σ_{A ∈ leaves(C^(l))} p(A) / Σ_{B ∈ leaves(C^(l+1))} p(B),

    p = softmax(logits). Each term weights the edge from C^(l) up to its parent by a weight of the
    lower node C^(l):

    * ``weighting="height"`` (the paper's definition): λ(C) = exp(−α · height(C)), leaves at height
      0, so the leaf-to-parent edge always has weight 1. With α = 0 every weight is 1 and the
      conditionals telescope to −log p(C^(0)): plain cross-entropy.
    * ``weighting="depth"`` (Bertinetto et al.'s released code, ``get_exponential_weighting``):
      λ(C) = exp(−α · depth(C)) / Z with depth counted in edges from the root and
      Z = Σ_{nodes v} exp(−α · depth(v)) over *every* node of the tree view — root and leaves
      included, as the released code sums over all tree positions. The edge weights therefore sum
      to 1 − 1/Z, not exactly 1. Nodes that have no class below them in the tree view (possible
      when a graph hierarchy is reduced to its tree) are not part of the tree and are not counted.

    Computation: log p(node) for every node is a log-sum-exp of ``log_softmax(logits)`` over its
    leaves (:func:`group_logsumexp`, one call per depth of the tree: the nodes at one depth,
    together with shallower leaves, partition the classes), then log p(root) = 0 exactly and L is
    −Σ_v coef[y, v] · log p(v) with per-class path coefficients precomputed in ``__init__``
    (coef = w_0 on the leaf, w_l − w_{l−1} on the l-th ancestor), stored in float32 like the
    soft targets of :class:`SoftLabelCrossEntropy`. Memory O(N · C) per depth.

    Parameters
    ----------
    hierarchy : Hierarchy
        Its tree view is used (first parent of every node).
    alpha : float >= 0
        Decay α of the weights.
    weighting : {"height", "depth"}
    reduction : {"mean", "sum", "none"}

    Shapes: ``forward(logits (N, C), targets (N,))`` → scalar, or (N,) for ``reduction="none"``.
    """

    def __init__(self, hierarchy: Hierarchy, alpha: float, weighting: str = "height",
                 reduction: str = "mean") -> None:
        super().__init__()
        owner = "HierarchicalCrossEntropy"
        h = _check_hierarchy(hierarchy, owner)
        self.alpha = check_float(alpha, "alpha", owner, low=0.0)
        self.weighting = check_choice(weighting, "weighting", owner, ("height", "depth"))
        self.reduction = check_choice(reduction, "reduction", owner, REDUCTIONS)
        self.num_classes = h.num_classes

        # paths[c] = [c, parent, ..., child of the root] as node indices (the root is left out)
        paths = [[c, *(h.index(a) for a in h.ancestors(c)[:-1])] for c in range(h.num_classes)]
        max_depth = max(len(p) for p in paths)
        # cuts[d - 1, c] = the ancestor-or-self of class c at depth min(d, depth(c))
        cuts = np.array([[p[max(len(p) - d, 0)] for p in paths]
                         for d in range(1, max_depth + 1)], dtype=np.int64)
        group_of: list[dict[int, int]] = []  # per depth: node index -> column of that depth's table
        offsets = [0]
        cut_index = np.empty_like(cuts)
        for d, cut in enumerate(cuts):
            nodes, cut_index[d] = np.unique(cut, return_inverse=True)
            group_of.append({int(n): offsets[-1] + g for g, n in enumerate(nodes)})
            offsets.append(offsets[-1] + len(nodes))

        weights = self._node_weights(h)
        cols = np.zeros((h.num_classes, max_depth), dtype=np.int64)
        coef = np.zeros((h.num_classes, max_depth), dtype=np.float64)
        for c, path in enumerate(paths):
            w = np.array([weights[v] for v in path])
            coef[c, : len(path)] = w - np.concatenate([[0.0], w[:-1]])
            cols[c, : len(path)] = [group_of[len(path) - 1 - i][v] for i, v in enumerate(path)]
        self.register_buffer("cut_index", torch.as_tensor(cut_index), persistent=False)
        self.register_buffer("path_columns", torch.as_tensor(cols), persistent=False)
        self.register_buffer("path_coef", torch.as_tensor(coef, dtype=torch.float32),
                             persistent=False)
        self._group_counts = [offsets[d + 1] - offsets[d] for d in range(max_depth)]

    def _node_weights(self, h: Hierarchy) -> np.ndarray:
        """λ of every node (index as in ``h.nodes``), shape (num_nodes,)."""
        if self.weighting == "height":
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
            _checked_logits(logits, self.num_classes, "HierarchicalCrossEntropy"), dim=1)
        tables = [group_logsumexp(log_p, self.cut_index[d], n)
                  for d, n in enumerate(self._group_counts)]
        return torch.cat(tables, dim=1).gather(1, self.path_columns[targets])

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        node_logp = self.node_log_probs(logits, targets)
        loss = -(self.path_coef[targets].to(node_logp.dtype) * node_logp).sum(dim=1)
        return _reduce(loss, self.reduction)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, weighting={self.weighting!r}, reduction={self.reduction!r}"


class SoftLabelCrossEntropy(nn.Module):
    """Cross-entropy against hierarchy-aware soft labels (report §3.2, Bertinetto et al. Eq. 5).

        L = − Σ_A y_A(C) log p(A),  y_A(C) = softmax_A(−β · d(A, C)),  d(A, C) = h(A, C) / height,

    with h(A, C) the LCA height in the tree view (:meth:`Hierarchy.lca_height_matrix`) and height
    the tree's height. Large β puts all mass on the true class (plain cross-entropy); small β
    spreads it over the classes nearest in the hierarchy.

    Parameters
    ----------
    hierarchy : Hierarchy
    beta : float > 0
    reduction : {"mean", "sum", "none"}

    Attributes
    ----------
    soft_targets : tensor of shape (C, C)
        Row c holds y(c), the target distribution of true class c (computed in float64).
    """

    def __init__(self, hierarchy: Hierarchy, beta: float, reduction: str = "mean") -> None:
        super().__init__()
        owner = "SoftLabelCrossEntropy"
        h = _check_hierarchy(hierarchy, owner)
        self.beta = check_float(beta, "beta", owner, low=0.0, low_open=True)
        self.reduction = check_choice(reduction, "reduction", owner, REDUCTIONS)
        self.num_classes = h.num_classes
        dist = h.lca_height_matrix() / h.height
        scores = np.exp(-self.beta * dist)  # the maximum, exp(0) on the diagonal, needs no shift
        targets = scores / scores.sum(axis=1, keepdims=True)
        self.register_buffer("soft_targets", torch.as_tensor(targets, dtype=torch.float32),
                             persistent=False)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(
            _checked_logits(logits, self.num_classes, "SoftLabelCrossEntropy"), dim=1)
        loss = -(self.soft_targets[targets].to(log_p.dtype) * log_p).sum(dim=1)
        return _reduce(loss, self.reduction)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, reduction={self.reduction!r}"


class MultiLevelCrossEntropy(nn.Module):
    """Fine cross-entropy plus cross-entropy in coarser label spaces (YOLO9000-style).

        L = w_H · CE(logits, y) − Σ_s w_s · log Σ_{c : t_s[c] = t_s[y]} p(c),

    the probability of a superclass being the sum of its classes' probabilities (computed as a
    log-sum-exp of log-probabilities, :func:`group_logsumexp`). The paper (§5) notes that such
    coarse terms matter mostly early in training, when the network learns superclasses first.

    Parameters
    ----------
    spaces : sequence of LabelSpace
        The coarse spaces, each over the same C classes.
    weights : float or sequence of float >= 0, optional
        w_s, one per space (a single float applies to all); default 1 each.
    fine_weight : float >= 0
        w_H, the weight of the fine cross-entropy.
    label_smoothing : float in [0, 1]
        Label smoothing of the fine term (as in ``torch.nn.CrossEntropyLoss``).
    reduction : {"mean", "sum", "none"}
    """

    def __init__(self, spaces: Sequence[LabelSpace], weights: float | Sequence[float] | None = None,
                 *, fine_weight: float = 1.0, label_smoothing: float = 0.0,
                 reduction: str = "mean") -> None:
        super().__init__()
        owner = "MultiLevelCrossEntropy"
        spaces = list(spaces)
        if not spaces or not all(isinstance(s, LabelSpace) for s in spaces):
            raise ValueError(f"The 'spaces' parameter of {owner} must be a non-empty list of "
                             f"LabelSpace. Got {spaces!r} instead.")
        sizes = {s.num_classes for s in spaces}
        if len(sizes) != 1:
            raise ValueError(f"The 'spaces' of {owner} must share one number of classes. "
                             f"Got {sorted(sizes)} instead.")
        if weights is None:
            weights = 1.0
        if isinstance(weights, int | float):
            weights = [weights] * len(spaces)
        weights = list(weights)
        if len(weights) != len(spaces):
            raise ValueError(f"The 'weights' parameter of {owner} must have {len(spaces)} entries "
                             f"(one per space). Got {len(weights)} instead.")
        self.weights = [check_float(w, "weights", owner, low=0.0) for w in weights]
        self.fine_weight = check_float(fine_weight, "fine_weight", owner, low=0.0)
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", owner,
                                           low=0.0, high=1.0)
        self.reduction = check_choice(reduction, "reduction", owner, REDUCTIONS)
        self.num_classes = sizes.pop()
        self.num_groups = [s.num_groups for s in spaces]
        self.register_buffer("assignments", torch.as_tensor(np.stack([s.t for s in spaces])),
                             persistent=False)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = _checked_logits(logits, self.num_classes, "MultiLevelCrossEntropy")
        loss = self.fine_weight * F.cross_entropy(logits, targets, reduction="none",
                                                  label_smoothing=self.label_smoothing)
        log_p = F.log_softmax(logits, dim=1)
        for t, n, w in zip(self.assignments, self.num_groups, self.weights, strict=True):
            group_logp = group_logsumexp(log_p, t, n)
            loss = loss - w * group_logp.gather(1, t[targets].unsqueeze(1)).squeeze(1)
        return _reduce(loss, self.reduction)

    def extra_repr(self) -> str:
        return (f"num_groups={self.num_groups}, weights={self.weights}, "
                f"fine_weight={self.fine_weight}, reduction={self.reduction!r}")


_OPTIONS = {
    "ce": set(),
    "hxe": {"alpha", "weighting"},
    "soft": {"beta"},
    "multilevel": {"spaces", "weights", "fine_weight"},
}


def build_loss(config_section: Mapping[str, Any] | None, hierarchy: Hierarchy,
               spaces: Mapping[str, LabelSpace] | None = None, *,
               label_smoothing: float = 0.0) -> nn.Module:
    """The loss described by a config's ``loss:`` section.

    ==============  ==================================================================
    ``name``        options (defaults)
    ==============  ==================================================================
    ``ce``          none; ``label_smoothing`` (``train.label_smoothing``) applies
    ``hxe``         ``alpha`` (0.1), ``weighting`` ("height" | "depth")
    ``soft``        ``beta`` (10.0)
    ``multilevel``  ``spaces`` (names among ``spaces``; default all of them), ``weights``
                    (1.0: one float, or one per space), ``fine_weight`` (1.0);
                    ``label_smoothing`` applies to the fine term
    ==============  ==================================================================

    The defaults α = 0.1 and β = 10 lie in the ranges Bertinetto et al. 2020 explored.

    Parameters
    ----------
    config_section : mapping or None
        The ``loss:`` section, e.g. ``{"name": "hxe", "alpha": 0.5}``; None means ``ce``.
    hierarchy : Hierarchy
        The dataset's hierarchy (used by ``hxe`` and ``soft``).
    spaces : mapping of str to LabelSpace, optional
        The run's hypernym spaces by name (``S4``, ``imagenet_s3``, ...), for ``multilevel``.
    label_smoothing : float
        ``train.label_smoothing``; ``hxe`` and ``soft`` reject a non-zero value.

    Raises
    ------
    ConfigError
        Naming the dotted key (``loss.alpha``, ...) for an unknown loss or option or a bad value.
    """
    cfg = dict(config_section or {})
    name = cfg.pop("name", "ce")
    _config_check(check_choice, name, "loss.name", "the config", LOSSES)
    for key in cfg:
        if key not in _OPTIONS[name]:
            allowed = ", ".join(sorted(_OPTIONS[name])) or "none"
            raise ConfigError(f"'loss.{key}' is not an option of the {name!r} loss "
                              f"(options: {allowed}).")
    smoothing = _config_check(check_float, label_smoothing, "train.label_smoothing",
                              "the config", low=0.0, high=1.0)
    if smoothing and name in ("hxe", "soft"):
        raise ConfigError(f"'train.label_smoothing' = {smoothing!r} does not apply to the "
                          f"{name!r} loss; set it to 0.")
    if name == "ce":
        return nn.CrossEntropyLoss(label_smoothing=smoothing)
    if name == "hxe":
        alpha = _config_check(check_float, cfg.get("alpha", 0.1), "loss.alpha", "the config",
                              low=0.0)
        weighting = _config_check(check_choice, cfg.get("weighting", "height"), "loss.weighting",
                                  "the config", ("height", "depth"))
        return HierarchicalCrossEntropy(hierarchy, alpha, weighting=weighting)
    if name == "soft":
        beta = _config_check(check_float, cfg.get("beta", 10.0), "loss.beta", "the config",
                             low=0.0, low_open=True)
        return SoftLabelCrossEntropy(hierarchy, beta)
    chosen = _multilevel_spaces(cfg.get("spaces"), spaces or {})
    weights = cfg.get("weights", 1.0)
    listed = weights if isinstance(weights, list | tuple) else [weights]
    if len(listed) not in (1, len(chosen)):
        raise ConfigError(f"The 'loss.weights' parameter of the config must be one number or "
                          f"{len(chosen)} (one per space). Got {weights!r} instead.")
    listed = [_config_check(check_float, w, "loss.weights", "the config", low=0.0)
              for w in listed]
    fine_weight = _config_check(check_float, cfg.get("fine_weight", 1.0), "loss.fine_weight",
                                "the config", low=0.0)
    return MultiLevelCrossEntropy(chosen, listed if len(listed) > 1 else listed[0],
                                  fine_weight=fine_weight, label_smoothing=smoothing)


def _config_check(check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a :mod:`hypbias._validation` check, raising its message as a :class:`ConfigError`."""
    try:
        return check(*args, **kwargs)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _multilevel_spaces(names: Any, spaces: Mapping[str, LabelSpace]) -> list[LabelSpace]:
    if not spaces:
        raise ConfigError("The 'multilevel' loss needs hypernym spaces ('spaces.hypernyms'); "
                          "none were given.")
    if names is None:
        return list(spaces.values())
    if not isinstance(names, list | tuple) or not names:
        raise ConfigError(f"The 'loss.spaces' parameter of the config must be a non-empty list "
                          f"of space names. Got {names!r} instead.")
    unknown = [n for n in names if n not in spaces]
    if unknown:
        raise ConfigError(f"'loss.spaces' names {unknown[0]!r}, which is not a space of this run "
                          f"(spaces: {', '.join(spaces)}).")
    return [spaces[n] for n in names]


__all__ = [
    "HierarchicalCrossEntropy",
    "MultiLevelCrossEntropy",
    "SoftLabelCrossEntropy",
    "build_loss",
    "group_logsumexp",
]
