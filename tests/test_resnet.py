"""CIFAR ResNet: architecture (parameter count, stage resolutions), interface, registry."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from hypbias.models import create
from hypbias.models.resnet_cifar import CifarResNet, cifar_resnet18, cifar_resnet34


def _count_by_hand(depths: tuple[int, ...], num_classes: int, in_channels: int = 3,
                   w: int = 64) -> int:
    """Parameters of the CIFAR ResNet from its description (conv: k·k·cin·cout, BN: 2·c)."""
    total = 9 * in_channels * w + 2 * w  # stem conv + bn
    cin = w
    for k, depth in enumerate(depths):
        c = w * 2**k
        for b in range(depth):
            first_in = cin if b == 0 else c
            total += 9 * first_in * c + 2 * c + 9 * c * c + 2 * c
            if b == 0 and (k > 0 or cin != c):
                total += first_in * c + 2 * c  # 1x1 projection + bn
        cin = c
    return total + cin * num_classes + num_classes


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet18_parameter_count_matches_the_standard_network():
    model = cifar_resnet18(10)
    # 11,173,962 is the widely reported size of the CIFAR-10 ResNet-18.
    assert _n_params(model) == 11_173_962 == _count_by_hand((2, 2, 2, 2), 10)


def test_resnet34_parameter_count():
    assert _n_params(cifar_resnet34(100)) == _count_by_hand((3, 4, 6, 3), 100)


def test_head_is_linear_512_and_features_are_pooled():
    model = cifar_resnet18(7).eval()
    assert isinstance(model.head, nn.Linear)
    assert (model.num_features, model.num_classes) == (512, 7)
    x = torch.randn(2, 3, 32, 32)
    logits, feats = model.forward_with_features(x)
    assert feats.shape == (2, 512)
    assert logits.shape == (2, 7)
    with torch.no_grad():
        trunk = model.layer4(model.layer3(model.layer2(model.layer1(model.stem(x)))))
    torch.testing.assert_close(feats, trunk.mean(dim=(2, 3)))
    torch.testing.assert_close(logits, feats @ model.head.weight.T + model.head.bias)
    torch.testing.assert_close(model(x), logits)


def test_stage_resolutions_and_module_names():
    model = CifarResNet(3, base_width=4).eval()
    names = {n for n, _ in model.named_children()}
    assert names == {"stem", "layer1", "layer2", "layer3", "layer4", "pool", "head"}
    shapes = {}
    for name in ("stem", "layer1", "layer2", "layer3", "layer4"):
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    assert shapes == {"stem": (1, 4, 32, 32), "layer1": (1, 4, 32, 32), "layer2": (1, 8, 16, 16),
                      "layer3": (1, 16, 8, 8), "layer4": (1, 32, 4, 4)}
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.stem.conv.kernel_size == (3, 3)
    assert model.stem.conv.stride == (1, 1)


def test_in_channels_and_registry():
    model = create("cifar_resnet18", 5, in_channels=1, base_width=8)
    assert model.stem.conv.in_channels == 1
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 5)
    assert isinstance(create("cifar_resnet34", 5, base_width=8), CifarResNet)


def test_channels_last_gives_the_same_output():
    torch.manual_seed(0)
    model = CifarResNet(4, base_width=8).eval()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        ref = model(x)
        out = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_gradients_reach_the_stem():
    model = CifarResNet(3, base_width=4)
    model(torch.randn(4, 3, 8, 8)).sum().backward()
    assert model.stem.conv.weight.grad is not None
    assert model.stem.conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_classes": 0},
     "The 'num_classes' parameter of CifarResNet must be an int >= 1. Got 0 instead."),
    ({"num_classes": 3, "in_channels": 0},
     "The 'in_channels' parameter of CifarResNet must be an int >= 1. Got 0 instead."),
    ({"num_classes": 3, "depths": (2, 2)},
     "The 'depths' parameter of CifarResNet must hold 4 ints >= 1. Got (2, 2) instead."),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        CifarResNet(**kwargs)
