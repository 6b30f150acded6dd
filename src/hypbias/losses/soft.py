"""Cross-entropy against hierarchy-aware soft labels (report §3.2, Bertinetto et al. 2020 Eq. 5)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hypbias._validation import check_choice, check_float
from hypbias.hierarchy.tree import LCA_CONVENTIONS, Hierarchy
from hypbias.losses._common import REDUCTIONS, check_hierarchy, checked_logits, reduce
from hypbias.losses.options import LossSpec, Option


class SoftLabelCrossEntropy(nn.Module):
    """Cross-entropy against hierarchy-aware soft labels (report §3.2, Bertinetto et al. Eq. 5).

        L = − Σ_A y_A(C) log p(A),  y_A(C) = softmax_A(−β · d(A, C)),  d(A, C) = D(A, C) / max D,

    with D the LCA distance between classes in the tree view
    (:meth:`Hierarchy.lca_distance_matrix`) and max D the largest distance between two classes, so
    that d spans [0, 1] on every tree, as in the released code of Bertinetto et al.
    (``make_all_soft_labels``). Two conventions for D:

    * ``lca="depth"`` (default): H − depth(LCA), H the tree's height; the convention of the
      published mistake-severity numbers and of the distances the released code reads;
    * ``lca="height"``: the LCA's height above its deepest leaf.

    They agree on balanced trees. Large β puts all mass on the true class (plain cross-entropy);
    small β spreads it over the classes nearest in the hierarchy.

    Parameters
    ----------
    hierarchy : Hierarchy
    beta : float > 0
    lca : {"depth", "height"}
    reduction : {"mean", "sum", "none"}

    Attributes
    ----------
    soft_targets : tensor of shape (C, C)
        Row c holds y(c), the target distribution of true class c (computed in float64).
    """

    def __init__(self, hierarchy: Hierarchy, beta: float, lca: str = "depth",
                 reduction: str = "mean") -> None:
        super().__init__()
        owner = "SoftLabelCrossEntropy"
        h = check_hierarchy(hierarchy, owner)
        self.beta = check_float(beta, "beta", owner, low=0.0, low_open=True)
        distance = h.lca_distance_matrix(lca, name="lca", owner=owner).astype(np.float64)
        self.lca = lca
        self.reduction = check_choice(reduction, "reduction", owner, REDUCTIONS)
        self.num_classes = h.num_classes
        scores = np.exp(-self.beta * distance / distance.max())  # exp(0) on the diagonal: no shift
        targets = scores / scores.sum(axis=1, keepdims=True)
        self.register_buffer("soft_targets", torch.as_tensor(targets, dtype=torch.float32),
                             persistent=False)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(
            checked_logits(logits, self.num_classes, "SoftLabelCrossEntropy"), dim=1)
        loss = -(self.soft_targets[targets].to(log_p.dtype) * log_p).sum(dim=1)
        return reduce(loss, self.reduction)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, lca={self.lca!r}, reduction={self.reduction!r}"


SPEC = LossSpec(
    "soft",
    lambda hierarchy, spaces, label_smoothing, options: SoftLabelCrossEntropy(hierarchy,
                                                                              **options),
    {"beta": Option("float", 10.0, "hardness β of the soft targets", low=0.0, low_open=True),
     "lca": Option("choice", "depth", "LCA distance: 'depth' (H - depth(LCA), published "
                   "numbers) or 'height' (LCA height)", choices=LCA_CONVENTIONS)},
)
