"""EMA of weights: the recursion by hand, BatchNorm buffers, swapping in, checkpoint round trip,
resumption without a trace, and torch's AveragedModel underneath."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from hypbias.train.ema import ModelEMA


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 4, generator=gen)
    loss = model(x).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_average_follows_the_recursion_for_parameters_and_bn_statistics():
    model = _net().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    decay = 0.8
    ema = ModelEMA(model, decay)
    expected = {k: v.detach().double().clone() for k, v in model.state_dict().items()}
    for step in range(4):
        _train_step(model, opt, step)
        ema.update(model)
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                expected[key] = decay * expected[key] + (1 - decay) * value.double()
            else:
                expected[key] = value.double().clone()
    assert ema.num_updates == 4
    for key, avg in ema.shadow.items():
        torch.testing.assert_close(avg.double(), expected[key], rtol=1e-6, atol=1e-6)
    # the running statistics moved and were averaged, the counter was copied
    assert not torch.equal(ema.shadow["1.running_mean"], torch.zeros(6))
    assert int(ema.shadow["1.num_batches_tracked"]) == 4


def test_decay_zero_tracks_the_model_exactly():
    model = _net()
    ema = ModelEMA(model, 0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    _train_step(model, opt, 0)
    ema.update(model)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(ema.shadow[key], value, rtol=0, atol=0)


def test_swapped_evaluates_the_average_and_restores_the_model():
    model = _net()
    ema = ModelEMA(model, 0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(3):
        _train_step(model, opt, step)
        ema.update(model)
    before = copy.deepcopy(model.state_dict())
    reference = _net()
    reference.load_state_dict(ema.shadow)
    reference.eval()
    model.eval()
    x = torch.randn(5, 4)
    with torch.no_grad(), ema.swapped(model) as swapped:
        torch.testing.assert_close(swapped(x), reference(x))
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_copy_to_and_state_dict_round_trip():
    model = _net()
    ema = ModelEMA(model, 0.9)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    _train_step(model, opt, 0)
    ema.update(model)
    restored = ModelEMA(_net(), 0.3)
    restored.load_state_dict(ema.state_dict())
    assert restored.decay == 0.9
    assert restored.num_updates == 1
    target = _net()
    restored.copy_to(target)
    for key, value in target.state_dict().items():
        assert torch.equal(value, ema.shadow[key])


def test_state_dict_survives_torch_save(tmp_path):
    model = _net()
    ema = ModelEMA(model, 0.9)
    torch.save(ema.state_dict(), tmp_path / "ema.pt")
    other = ModelEMA(_net(), 0.9)
    other.load_state_dict(torch.load(tmp_path / "ema.pt", weights_only=True))
    for key, value in other.shadow.items():
        assert torch.equal(value, ema.shadow[key])


def test_average_is_independent_of_later_model_changes():
    model = _net()
    ema = ModelEMA(model, 0.9)
    saved = {k: v.clone() for k, v in ema.shadow.items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    for key, value in ema.shadow.items():
        assert torch.equal(value, saved[key])


@pytest.mark.parametrize("decay", [1.0, -0.1, float("nan"), True])
def test_bad_decay(decay):
    message = f"The 'decay' parameter of ModelEMA must be a float in [0, 1). Got {decay!r} instead."
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        ModelEMA(_net(), decay)


def test_mismatched_model_is_reported():
    ema = ModelEMA(_net(), 0.9)
    with pytest.raises(ValueError, match="state_dict keys differ"):
        ema.update(nn.Linear(4, 3))


def test_another_module_with_the_same_names_is_folded_in_when_passed():
    """The tensors are paired once per module: a second module (same names) passed to update is
    what gets averaged in, not the one the average was made from."""
    model = _net()
    ema = ModelEMA(model, 0.5)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    ema.update(other)
    for key, value in other.state_dict().items():
        expected = torch.lerp(start[key], value, 0.5) if value.is_floating_point() else value
        assert torch.equal(ema.shadow[key], expected), key
    ema.update(model)  # back to the first module: its unchanged weights
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            expected = torch.lerp(torch.lerp(start[key], other.state_dict()[key], 0.5), value, 0.5)
            assert torch.equal(ema.shadow[key], expected), key


def test_float32_recursion_is_reproduced_bit_for_bit():
    """The same float32 arithmetic as a per-tensor lerp (what the hand-written EMA computed)."""
    model = _net().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ema = ModelEMA(model, 0.7)
    assert isinstance(ema.averaged, AveragedModel)
    expected = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for step in range(5):
        _train_step(model, opt, step)
        ema.update(model)
        for key, value in model.state_dict().items():
            expected[key] = (torch.lerp(expected[key], value, 0.3) if value.is_floating_point()
                             else value.clone())
    for key, avg in ema.shadow.items():
        assert torch.equal(avg, expected[key]), key


def test_resuming_from_a_state_dict_continues_exactly():
    def run(split_at: int | None) -> dict[str, torch.Tensor]:
        model = _net().train()
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        ema = ModelEMA(model, 0.6)
        for step in range(6):
            if step == split_at:  # a restart: a fresh average loaded from the saved state
                saved = torch.load(_save(ema.state_dict()), weights_only=True)
                ema = ModelEMA(model, 0.1)
                ema.load_state_dict(saved)
            _train_step(model, opt, step)
            ema.update(model)
        assert ema.num_updates == 6
        return ema.shadow

    whole, resumed = run(None), run(3)
    for key, value in whole.items():
        assert torch.equal(value, resumed[key]), key


def _save(state):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_update_equals_the_averaged_models_own_update_parameters():
    """The host-side driver gives what AveragedModel.update_parameters gives, counter included."""
    model = _net().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ours, torchs = ModelEMA(model, 0.75), ModelEMA(model, 0.75)
    for step in range(4):
        _train_step(model, opt, step)
        ours.update(model)
        torchs.averaged.update_parameters(model)
    assert ours.num_updates == torchs.num_updates == 4
    for key, value in torchs.shadow.items():
        assert torch.equal(ours.shadow[key], value), key
