"""Mistake severity and hierarchical top-k distances tracked per epoch (Bertinetto et al. 2020)."""

from __future__ import annotations

from typing import Any

import torch

from hypbias.hierarchy.tree import Hierarchy
from hypbias.metrics.hierarchical import HierarchicalMistakes
from hypbias.metrics.rows import MetricRow, metric_row
from hypbias.train.components import ComponentContext, register_component
from hypbias.train.tracker import TrackerComponent


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
            rows.extend(metric_row(epoch, split, "H", metric, value)
                        for metric, value in acc.compute().items())
            acc.reset()
        return rows


@register_component("mistakes", defaults={"enabled": True})
def build_mistakes_tracker(section: dict[str, Any], ctx: ComponentContext) -> MistakesTracker | None:
    """The ``mistakes:`` section: on when ``enabled`` is true (the default), on every tracked split."""
    enabled = section["enabled"]
    if not isinstance(enabled, bool):
        raise ctx.error("mistakes.enabled", f"must be true or false. Got {enabled!r} instead.")
    return MistakesTracker(ctx.bundle.hierarchy, ctx.splits) if enabled else None
