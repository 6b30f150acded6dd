"""Hierarchical losses (DESIGN.md §2; report §3; Bertinetto et al. 2020, "Making Better Mistakes").

* :class:`HierarchicalCrossEntropy` (HXE): cross-entropy factorised along the tree-view path from
  the true class to the root, each conditional weighted by the depth of its node (the released
  code's convention) or, on request, by its height (the course report's formula read literally).
* :class:`SoftLabelCrossEntropy`: cross-entropy against soft targets that decay with the LCA
  distance, normalised by the largest distance between two classes.
* :class:`MultiLevelCrossEntropy`: fine cross-entropy plus cross-entropy in chosen label spaces, on
  the summed probabilities of each superclass (YOLO9000-style).
* :class:`JensenShannonCrossEntropy`: cross-entropy on the clean view plus the Jensen–Shannon
  consistency of augmented views (paper App. B.1; AugMix).
* :func:`build_loss` and :func:`validate_loss_options`: the config's ``loss:`` section, from the
  options each loss declares (:data:`LOSSES`).

Every loss takes logits of shape (N, C) and fine targets of shape (N,), works in log space (no
probability is ever exponentiated and summed without a shift), and reduces by ``"mean"`` (default),
``"sum"`` or ``"none"`` (a tensor of shape (N,)).
"""

from hypbias.losses._common import group_logsumexp
from hypbias.losses.factory import LOSSES, build_loss, validate_loss_options
from hypbias.losses.hxe import HierarchicalCrossEntropy
from hypbias.losses.jsd import JensenShannonCrossEntropy, jensen_shannon
from hypbias.losses.multilevel import MultiLevelCrossEntropy
from hypbias.losses.options import LossSpec, Option
from hypbias.losses.soft import SoftLabelCrossEntropy

__all__ = [
    "LOSSES",
    "HierarchicalCrossEntropy",
    "JensenShannonCrossEntropy",
    "LossSpec",
    "MultiLevelCrossEntropy",
    "Option",
    "SoftLabelCrossEntropy",
    "build_loss",
    "group_logsumexp",
    "jensen_shannon",
    "validate_loss_options",
]
