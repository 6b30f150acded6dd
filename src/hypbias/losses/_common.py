"""What every loss shares: input checks, reductions and the grouped log-sum-exp."""

from __future__ import annotations

from typing import Any

import torch

from hypbias.hierarchy.tree import Hierarchy

REDUCTIONS = ("mean", "sum", "none")


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


def checked_logits(logits: torch.Tensor, num_classes: int | None, owner: str) -> torch.Tensor:
    """Logits of shape (N, C), half precision promoted to float32.

    ``num_classes``: the C required (None: any number of columns).
    """
    if logits.ndim != 2 or (num_classes is not None and logits.shape[1] != num_classes):
        columns = "C" if num_classes is None else num_classes
        raise ValueError(
            f"The 'logits' parameter of {owner} must have shape (N, {columns}). "
            f"Got shape {tuple(logits.shape)} instead."
        )
    if logits.dtype in (torch.float16, torch.bfloat16):
        return logits.float()
    return logits


def reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-sample losses of shape (N,) reduced by ``"mean"``, ``"sum"`` or ``"none"``."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def check_hierarchy(hierarchy: Any, owner: str) -> Hierarchy:
    """``hierarchy`` if it is a Hierarchy of at least 2 classes."""
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
