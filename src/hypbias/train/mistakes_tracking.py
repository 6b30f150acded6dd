"""Mistake severity and hierarchical top-k distances tracked per epoch (Bertinetto et al. 2020)."""

from __future__ import annotations

from typing import Any

import torch

from hypbias.analysis.label_spaces import SpaceSet
from hypbias.data.base import DatasetBundle
from hypbias.hierarchy.tree import Hierarchy
from hypbias.metrics.hierarchical import HierarchicalMistakes
from hypbias.train.components import register_component
from hypbias.train.tracker import MetricRow, TrackerComponent


class MistakesTracker(TrackerComponent):
    """One :class:`HierarchicalMistakes` accumulator per tracked split, fed by every evaluation batch.

    Rows: ``mistake_severity`` (mean LCA height of top-1 mistakes) and ``hier_dist@k`` in space H.
    """

    name = "mistakes"

    def __init__(self, hierarchy: Hierarchy, splits: tuple[str, ...]) -> None:
        self.splits = splits
        self.acc = {s: HierarchicalMistakes(hierarchy) for s in splits}

    def update(self, split: str, logits: torch.Tensor, targets: torch.Tensor,
               features: torch.Tensor | None) -> None:
        self.acc[split].update(logits, targets)

    def all_reduce(self) -> None:
        for acc in self.acc.values():
            acc.all_reduce()

    def end_epoch(self, epoch: int, model: torch.nn.Module | None) -> list[MetricRow]:
        rows: list[MetricRow] = []
        for split, acc in self.acc.items():
            rows.extend({"epoch": epoch, "split": split, "space": "H", "metric": metric,
                         "value": float(value), "layer": ""} for metric, value in acc.compute().items())
            acc.reset()
        return rows


@register_component("mistakes")
def build_mistakes_tracker(config: dict[str, Any], bundle: DatasetBundle,
                           spaces: SpaceSet) -> MistakesTracker | None:
    """On when ``track.mistakes`` is true (the default)."""
    if not config["track"]["mistakes"]:
        return None
    return MistakesTracker(bundle.hierarchy, tuple(config["track"]["splits"]))
