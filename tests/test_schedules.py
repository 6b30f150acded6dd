"""Learning-rate schedules: values against hand computation, the LambdaLR builder, validation."""

from __future__ import annotations

import math
import re

import pytest
import torch

from hypbias.train.schedules import build_scheduler, lr_factor


def test_cosine_without_warmup():
    # T = 8: factor = (1 + cos(pi s / 8)) / 2
    expected = [1.0, 0.9619397662556434, 0.8535533905932737, 0.6913417161825449, 0.5,
                0.3086582838174551, 0.14644660940672627, 0.03806023374435663]
    got = [lr_factor(s, 8, "cosine") for s in range(8)]
    assert got == pytest.approx(expected, abs=1e-12)


def test_cosine_with_warmup():
    # W = 3 warmup steps: 1/4, 2/4, 3/4; then cosine over the remaining 7 steps.
    got = [lr_factor(s, 10, "cosine", warmup_steps=3) for s in range(10)]
    expected = [0.25, 0.5, 0.75] + [0.5 * (1 + math.cos(math.pi * k / 7)) for k in range(7)]
    assert got == pytest.approx(expected, abs=1e-12)
    assert got[3] == 1.0


def test_step_schedule_milestones_are_fractions_of_the_run():
    # T = 20, milestones 0.5 and 0.75 -> steps 10 and 15
    got = [lr_factor(s, 20, "step", milestones=[0.5, 0.75], gamma=0.1) for s in range(20)]
    assert got[:10] == [1.0] * 10
    assert got[10:15] == pytest.approx([0.1] * 5)
    assert got[15:] == pytest.approx([0.01] * 5)


def test_step_schedule_with_warmup_and_constant():
    assert [lr_factor(s, 6, "step", 2, [0.5], 0.5) for s in range(6)] == pytest.approx(
        [1 / 3, 2 / 3, 1.0, 0.5, 0.5, 0.5])
    assert [lr_factor(s, 5, "constant", 1) for s in range(5)] == [0.5, 1.0, 1.0, 1.0, 1.0]


def test_steps_past_the_end_keep_the_last_value():
    assert lr_factor(100, 8, "cosine") == lr_factor(7, 8, "cosine")


def test_scheduler_sets_the_optimizer_lr_and_resumes_from_its_state():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.2)
    sched = build_scheduler(opt, 10, "cosine", warmup_steps=2)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.2 * lr_factor(s, 10, "cosine", 2) for s in range(6)])

    opt2 = torch.optim.SGD([param], lr=0.2)
    sched2 = build_scheduler(opt2, 10, "cosine", warmup_steps=2)
    sched2.load_state_dict(sched.state_dict())
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.2 * lr_factor(6, 10, "cosine", 2))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"schedule": "linear"},
     "The 'schedule' parameter of lr_factor must be one of 'cosine', 'step', 'constant'. "
     "Got 'linear' instead."),
    ({"warmup_steps": 11},
     "The 'warmup_steps' parameter of lr_factor must be an int in [0, 10]. Got 11 instead."),
    ({"milestones": [1.5]},
     "The 'milestones' parameter of lr_factor must be a finite float in [0.0, 1.0]. "
     "Got 1.5 instead."),
    ({"gamma": 0.0}, "The 'gamma' parameter of lr_factor must be a finite float > 0.0. "
     "Got 0.0 instead."),
])
def test_bad_parameters_are_reported_when_building(kwargs, message):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        build_scheduler(opt, 10, **kwargs)
