"""Learning-rate schedules (App. B.1: cosine annealing, step decay, linear warmup).

:func:`lr_factor` is a pure function of the optimiser step giving the multiplier of the base
learning rate; :func:`build_scheduler` wraps it in a ``torch.optim.lr_scheduler.LambdaLR`` that is
stepped once per optimiser step. With ``W`` warmup steps and ``T`` total steps:

* warmup, ``s < W``: factor = (s + 1) / (W + 1), rising linearly towards 1;
* ``cosine``: factor = (1 + cos(π p)) / 2 with p = (s − W) / (T − W), the progress after warmup;
* ``step``: factor = γ^k, k = the number of milestones m (fractions of T) with s ≥ m · T;
* ``constant``: factor = 1.

>>> [round(lr_factor(s, 4, "cosine"), 3) for s in range(4)]
[1.0, 0.854, 0.5, 0.146]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch

from hypbias._validation import check_choice, check_float, check_int

SCHEDULES = ("cosine", "step", "constant")


def lr_factor(step: int, total_steps: int, schedule: str = "cosine", warmup_steps: int = 0,
              milestones: Sequence[float] = (), gamma: float = 0.1) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Parameters
    ----------
    step : int >= 0; steps past ``total_steps`` keep the last value of the schedule
    total_steps : int >= 1, T, optimiser steps of the whole run (warmup included)
    schedule : "cosine" | "step" | "constant"
    warmup_steps : int in [0, T], W, steps of linear warmup
    milestones : fractions of T in [0, 1] where the ``step`` schedule multiplies by ``gamma``
    gamma : float > 0, the ``step`` schedule's decay
    """
    owner = "lr_factor"
    check_int(step, "step", owner, low=0)
    check_int(total_steps, "total_steps", owner, low=1)
    check_choice(schedule, "schedule", owner, SCHEDULES)
    check_int(warmup_steps, "warmup_steps", owner, low=0, high=total_steps)
    for m in milestones:
        check_float(m, "milestones", owner, low=0.0, high=1.0)
    check_float(gamma, "gamma", owner, low=0.0, low_open=True)
    step = min(step, total_steps - 1)
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if schedule == "cosine":
        progress = (step - warmup_steps) / (total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":
        return gamma ** sum(step >= m * total_steps for m in milestones)
    return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, schedule: str = "cosine",
                    warmup_steps: int = 0, milestones: Sequence[float] = (),
                    gamma: float = 0.1) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`lr_factor`; ``scheduler.step()`` follows each optimiser step.

    The parameters are validated when the scheduler is built (its constructor evaluates step 0).
    Its ``state_dict`` holds the step count, which is all a resumed run needs.
    """
    factor = functools.partial(lr_factor, total_steps=total_steps, schedule=schedule,
                               warmup_steps=warmup_steps, milestones=tuple(milestones), gamma=gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
