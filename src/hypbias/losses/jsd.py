"""Cross-entropy plus Jensen–Shannon consistency across augmented views (paper App. B.1; AugMix).

The paper trains its ResNets "with Jensen–Shannon divergence" (App. B.1), the consistency loss of
AugMix (Hendrycks et al. 2020, Eq. 1): each image is seen in ``views`` versions, the first clean and
the others independently augmented, and

    L = CE(p_clean, y) + λ · JS(p_clean, p_aug1, ..., p_aug{V-1}),
    JS(p_1, ..., p_V) = (1/V) Σ_i KL(p_i ‖ M),   M = (1/V) Σ_i p_i.

AugMix uses V = 3 and λ = 12. The loss takes the logits of all views in one batch, view-major, which
is what one forward pass over ``torch.cat([x_clean, x_aug1, x_aug2])`` produces.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hypbias._validation import check_choice, check_float, check_int
from hypbias.losses._common import REDUCTIONS, checked_logits, reduce
from hypbias.losses.options import LossSpec, Option


def jensen_shannon(log_probs: torch.Tensor) -> torch.Tensor:
    """Generalised Jensen–Shannon divergence of V distributions per sample.

    JS = (1/V) Σ_i KL(p_i ‖ M) with M = (1/V) Σ_i p_i, in nats. log M is a log-sum-exp of the
    log-probabilities (exact where AugMix clamps M at 1e-7 before taking its log).

    Parameters
    ----------
    log_probs : tensor of shape (V, N, C)
        log p_i for each view i, normalised over the last axis.

    Returns
    -------
    tensor of shape (N,)
    """
    log_m = torch.logsumexp(log_probs, dim=0) - math.log(log_probs.shape[0])
    return (log_probs.exp() * (log_probs - log_m)).sum(dim=2).mean(dim=0)


class JensenShannonCrossEntropy(nn.Module):
    """CE on the clean view plus λ times the Jensen–Shannon divergence across all views.

    Parameters
    ----------
    views : int >= 2
        V, the number of versions of each image in a batch (the first is the clean one).
    weight : float >= 0
        λ (AugMix: 12).
    label_smoothing : float in [0, 1]
        Label smoothing of the cross-entropy term.
    reduction : {"mean", "sum", "none"}
        Over the N images (not the V·N rows).

    Shapes: ``forward(logits (V·N, C), targets (N,) or (V·N,))`` → scalar, or (N,) for
    ``reduction="none"``. Rows ``i·N .. (i+1)·N − 1`` of ``logits`` are view i of the N images
    (view 0 clean); with targets of shape (V·N,) (the labels repeated per view) the first N are
    used.
    """

    def __init__(self, views: int = 3, weight: float = 12.0, *, label_smoothing: float = 0.0,
                 reduction: str = "mean") -> None:
        super().__init__()
        owner = "JensenShannonCrossEntropy"
        self.views = check_int(views, "views", owner, low=2)
        self.weight = check_float(weight, "weight", owner, low=0.0)
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", owner,
                                           low=0.0, high=1.0)
        self.reduction = check_choice(reduction, "reduction", owner, REDUCTIONS)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n = logits.shape[0] // self.views if logits.ndim == 2 else 0
        if n * self.views != logits.shape[0] or len(targets) not in (n, logits.shape[0]) or not n:
            raise ValueError(
                f"The 'logits' parameter of JensenShannonCrossEntropy must have shape "
                f"({self.views}·N, C) with targets of shape (N,) or ({self.views}·N,). Got shapes "
                f"{tuple(logits.shape)} and {tuple(targets.shape)} instead.")
        logits = checked_logits(logits, None, "JensenShannonCrossEntropy")
        log_p = F.log_softmax(logits, dim=1).view(self.views, n, -1)
        ce = F.cross_entropy(logits[:n], targets[:n], reduction="none",
                             label_smoothing=self.label_smoothing)
        return reduce(ce + self.weight * jensen_shannon(log_p), self.reduction)

    def extra_repr(self) -> str:
        return (f"views={self.views}, weight={self.weight}, "
                f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}")


SPEC = LossSpec(
    "jsd",
    lambda hierarchy, spaces, label_smoothing, options: JensenShannonCrossEntropy(
        **options, label_smoothing=label_smoothing),
    {"views": Option("int", 3, "versions of each image per batch, the first clean", low=2),
     "weight": Option("float", 12.0, "λ, the weight of the Jensen–Shannon term", low=0.0)},
    label_smoothing=True,
)
