"""ResNet for small images (CIFAR): a 3×3 stem without max-pool, then four stages of BasicBlocks.

The ImageNet ResNet's 7×7 stride-2 stem and max-pool shrink a 32×32 image to 8×8 before the first
stage; the CIFAR variant (He et al. 2016, as used for CIFAR-100 in App. B of the paper) keeps the
full resolution, so the stages see 32, 16, 8 and 4 pixels.

Modules are named for layer hooks: ``stem`` (conv, bn, relu), ``layer1 .. layer4`` (each a
``Sequential`` of :class:`BasicBlock`), ``pool`` and ``head``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hypbias._validation import check_int
from hypbias.models.base import Classifier
from hypbias.models.registry import register_model


class BasicBlock(nn.Module):
    """Two 3×3 conv–BN layers with an identity (or 1×1 conv–BN projection) shortcut.

    Input (N, in_planes, H, W) → output (N, planes, H / stride, W / stride).
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(Classifier):
    """ResNet with a 3×3 stride-1 stem and stages of widths w, 2w, 4w, 8w at strides 1, 2, 2, 2.

    Parameters
    ----------
    num_classes : int, C
    depths : blocks per stage, (2, 2, 2, 2) for ResNet-18, (3, 4, 6, 3) for ResNet-34
    in_channels : channels of the input images
    base_width : w, the width of the stem and of ``layer1`` (64 in the standard network)

    Penultimate features: the global average of ``layer4``'s output, shape (N, 8 w).
    """

    def __init__(self, num_classes: int, depths: Sequence[int] = (2, 2, 2, 2),
                 in_channels: int = 3, base_width: int = 64) -> None:
        super().__init__()
        check_int(num_classes, "num_classes", "CifarResNet", low=1)
        check_int(in_channels, "in_channels", "CifarResNet", low=1)
        width = check_int(base_width, "base_width", "CifarResNet", low=1)
        if len(depths) != 4:
            raise ValueError("The 'depths' parameter of CifarResNet must hold 4 ints >= 1. "
                             f"Got {depths!r} instead.")
        depths = [check_int(d, "depths", "CifarResNet", low=1) for d in depths]
        self.stem = nn.Sequential()
        self.stem.add_module("conv", nn.Conv2d(in_channels, width, 3, padding=1, bias=False))
        self.stem.add_module("bn", nn.BatchNorm2d(width))
        self.stem.add_module("relu", nn.ReLU(inplace=True))
        planes_in = width
        for k, (depth, stride) in enumerate(zip(depths, (1, 2, 2, 2), strict=True), start=1):
            planes = width * 2 ** (k - 1)
            blocks = [BasicBlock(planes_in, planes, stride)]
            blocks += [BasicBlock(planes, planes) for _ in range(depth - 1)]
            self.add_module(f"layer{k}", nn.Sequential(*blocks))
            planes_in = planes
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(planes_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def feature_layers(self) -> tuple[str, ...]:
        return ("stem", "layer1", "layer2", "layer3", "layer4", "head")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.pool(x).flatten(1)


@register_model("cifar_resnet18")
def cifar_resnet18(num_classes: int, in_channels: int = 3, base_width: int = 64) -> CifarResNet:
    """CIFAR ResNet-18: stages of 2 BasicBlocks, head ``nn.Linear(512, C)`` at the default width."""
    return CifarResNet(num_classes, (2, 2, 2, 2), in_channels, base_width)


@register_model("cifar_resnet34")
def cifar_resnet34(num_classes: int, in_channels: int = 3, base_width: int = 64) -> CifarResNet:
    """CIFAR ResNet-34: stages of 3, 4, 6, 3 BasicBlocks, head ``nn.Linear(512, C)``."""
    return CifarResNet(num_classes, (3, 4, 6, 3), in_channels, base_width)
