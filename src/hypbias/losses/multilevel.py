"""Fine cross-entropy plus cross-entropy in coarser label spaces (YOLO9000-style)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hypbias._validation import check_choice, check_float
from hypbias.errors import ConfigError
from hypbias.hierarchy.tree import Hierarchy
from hypbias.labelspace import LabelSpace
from hypbias.losses._common import REDUCTIONS, checked_logits, group_logsumexp, reduce
from hypbias.losses.options import LossSpec, Option


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
    names : sequence of str, optional
        The spaces' names, which label their terms; default ``S<n>`` for n groups.

    Attributes
    ----------
    term_names : tuple of str
        ``("H", *names)``: the fine term, then one per space, the order of :meth:`terms`.
    last_terms : tensor of shape (1 + S,) or None
        The batch mean of each weighted term at the last call (detached); with
        ``reduction="mean"`` they sum to the loss.
    """

    def __init__(self, spaces: Sequence[LabelSpace], weights: float | Sequence[float] | None = None,
                 *, fine_weight: float = 1.0, label_smoothing: float = 0.0,
                 reduction: str = "mean", names: Sequence[str] | None = None) -> None:
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
        self.term_names = ("H", *_term_names(names, self.num_groups, owner))
        self.last_terms: torch.Tensor | None = None
        self.register_buffer("assignments", torch.as_tensor(np.stack([s.t for s in spaces])),
                             persistent=False)

    def terms(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The weighted terms per sample, shape (1 + S, N): w_H · CE(logits, y) first, then
        −w_s · log p(t_s[y]) for each space in the order of :attr:`term_names`."""
        logits = checked_logits(logits, self.num_classes, "MultiLevelCrossEntropy")
        fine = self.fine_weight * F.cross_entropy(logits, targets, reduction="none",
                                                  label_smoothing=self.label_smoothing)
        log_p = F.log_softmax(logits, dim=1)
        coarse = [-w * group_logsumexp(log_p, t, n).gather(1, t[targets].unsqueeze(1)).squeeze(1)
                  for t, n, w in zip(self.assignments, self.num_groups, self.weights, strict=True)]
        return torch.stack([fine, *coarse])

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        terms = self.terms(logits, targets)
        self.last_terms = terms.detach().mean(dim=1)
        return reduce(terms.sum(dim=0), self.reduction)

    def extra_repr(self) -> str:
        return (f"num_groups={self.num_groups}, weights={self.weights}, "
                f"fine_weight={self.fine_weight}, reduction={self.reduction!r}")


def _term_names(names: Sequence[str] | None, num_groups: list[int], owner: str) -> list[str]:
    """The given names (one per space, distinct), else ``S<n>`` (suffixed by position if repeated)."""
    if names is None:
        names = [f"S{n}" for n in num_groups]
        return names if len(set(names)) == len(names) else [f"{n}_{i}" for i, n in enumerate(names)]
    names = [str(n) for n in names]
    if len(names) != len(num_groups) or len(set(names)) < len(names) or "H" in names:
        raise ValueError(f"The 'names' parameter of {owner} must hold {len(num_groups)} distinct "
                         f"names other than 'H' (one per space). Got {names!r} instead.")
    return names


def _check_spaces(options: Mapping[str, Any], space_names: Sequence[str]) -> None:
    """The named spaces exist among the run's, and ``weights`` has one entry or one per space."""
    if not space_names:
        raise ConfigError("The 'multilevel' loss needs hypernym spaces ('spaces.hypernyms'); "
                          "none were given.")
    names = options["spaces"]
    unknown = [n for n in names or () if n not in space_names]
    if unknown:
        raise ConfigError(f"'loss.spaces' names {unknown[0]!r}, which is not a space of this run "
                          f"(spaces: {', '.join(space_names)}).")
    count = len(names or space_names)
    weights = options["weights"]
    if isinstance(weights, list) and len(weights) not in (1, count):
        raise ConfigError(f"The 'loss.weights' parameter of the config must be one number or "
                          f"{count} (one per space). Got {weights!r} instead.")


def _build(hierarchy: Hierarchy, spaces: Mapping[str, LabelSpace], label_smoothing: float,
           options: Mapping[str, Any]) -> MultiLevelCrossEntropy:
    chosen = list(options["spaces"] or spaces)
    weights = options["weights"]
    if isinstance(weights, list) and len(weights) == 1:
        weights = weights[0]
    return MultiLevelCrossEntropy([spaces[n] for n in chosen], weights,
                                  fine_weight=options["fine_weight"],
                                  label_smoothing=label_smoothing, names=chosen)


SPEC = LossSpec(
    "multilevel",
    _build,
    {"spaces": Option("names", None, "the run's hypernym spaces to add a term for (default: all)"),
     "weights": Option("floats", 1.0, "w_s: one number for every space, or one per space",
                       low=0.0),
     "fine_weight": Option("float", 1.0, "w_H, the weight of the fine cross-entropy", low=0.0)},
    label_smoothing=True,
    check_spaces=_check_spaces,
)
