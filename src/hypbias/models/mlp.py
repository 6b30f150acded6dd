"""Multi-layer perceptron: the embedded default's model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hypbias._validation import check_int
from hypbias.models.base import Classifier
from hypbias.models.registry import register_model


class MLP(Classifier):
    """Fully connected ReLU network; inputs of any shape are flattened.

    Modules are named ``fc1, fc2, ...`` (linear) and ``act1, act2, ...`` so layers can be hooked by
    name; the penultimate features are the output of the last activation, shape (N, hidden[-1]).
    """

    def __init__(self, num_classes: int, in_features: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        check_int(num_classes, "num_classes", "MLP", low=1)
        check_int(in_features, "in_features", "MLP", low=1)
        widths = [in_features, *[check_int(h, "hidden", "MLP", low=1) for h in hidden]]
        self.body = nn.Sequential()
        for k in range(1, len(widths)):
            self.body.add_module(f"fc{k}", nn.Linear(widths[k - 1], widths[k]))
            self.body.add_module(f"act{k}", nn.ReLU())
        self.head = nn.Linear(widths[-1], num_classes)

    @property
    def feature_layers(self) -> tuple[str, ...]:
        acts = [f"body.{name}" for name, _ in self.body.named_children() if name.startswith("act")]
        return (*acts, "head")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))


@register_model("mlp")
def mlp(num_classes: int, in_features: int, hidden: Sequence[int] = (256, 256)) -> MLP:
    return MLP(num_classes, in_features, hidden)
