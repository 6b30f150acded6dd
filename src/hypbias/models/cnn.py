"""A small convolutional network for images of shape (channels, H, W)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hypbias._validation import check_int
from hypbias.models.base import Classifier
from hypbias.models.registry import register_model


class SmallCNN(Classifier):
    """Blocks of conv3x3–BN–ReLU–maxpool (``block1 .. blockK``), global average pool, linear head.

    Penultimate features: the pooled output of the last block, shape (N, widths[-1]).
    """

    def __init__(self, num_classes: int, in_channels: int = 3,
                 widths: Sequence[int] = (32, 64, 128)) -> None:
        super().__init__()
        check_int(num_classes, "num_classes", "SmallCNN", low=1)
        chans = [check_int(in_channels, "in_channels", "SmallCNN", low=1), *widths]
        self.blocks = nn.Sequential()
        for k in range(1, len(chans)):
            self.blocks.add_module(f"block{k}", nn.Sequential(
                nn.Conv2d(chans[k - 1], chans[k], 3, padding=1, bias=False),
                nn.BatchNorm2d(chans[k]),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(chans[-1], num_classes)

    @property
    def feature_layers(self) -> tuple[str, ...]:
        return (*(f"blocks.{name}" for name, _ in self.blocks.named_children()), "head")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(x)).flatten(1)


@register_model("small_cnn")
def small_cnn(num_classes: int, in_channels: int = 3, widths: Sequence[int] = (32, 64, 128)) -> SmallCNN:
    return SmallCNN(num_classes, in_channels, widths)
