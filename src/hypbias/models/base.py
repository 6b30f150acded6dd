"""The interface every model honours, built-in or adapted.

A :class:`Classifier` splits into a feature extractor and a final linear layer, so that class
statistics (neural collapse), probes and layer features work on any model:

* ``features(x)``: penultimate features, shape (N, D);
* ``head``: an ``nn.Linear(D, C)`` whose ``weight`` (C, D) and ``bias`` (C,) are the W, b of App. A.2;
* ``forward(x)`` = ``head(features(x))``: logits, shape (N, C);
* ``forward_with_features(x)``: both at the cost of one forward pass.
"""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    """Base class: subclasses implement :meth:`features` and set ``self.head``."""

    head: nn.Linear

    @property
    def feature_layers(self) -> tuple[str, ...]:
        """Module names analysed layer by layer by default (bottom to top); empty when unknown."""
        return ()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of shape (N, D)."""
        raise NotImplementedError

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, C) and penultimate features (N, D) from one forward pass."""
        feats = self.features(x)
        return self.head(feats), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @property
    def num_features(self) -> int:
        """D, the width of the penultimate layer."""
        return self.head.in_features

    @property
    def num_classes(self) -> int:
        """C, the number of outputs."""
        return self.head.out_features
