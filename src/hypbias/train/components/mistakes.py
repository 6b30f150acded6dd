"""Mistake severity and hierarchical top-k distances tracked per epoch (Bertinetto et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hypbias.hierarchy.tree import Hierarchy
from hypbias.metrics.hierarchical import HierarchicalMistakes
from hypbias.metrics.rows import MetricRow, metric_row
from hypbias.train.components import ComponentContext, register_component
from hypbias.train.config.schema import Bool, Section, key
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


@dataclass(frozen=True)
class MistakesSection(Section):
    """The ``mistakes:`` section."""

    SECTION = "mistakes"
    enabled: bool = key(True, Bool(), "mistake severity and hierarchical top-k distances on every "
                                      "tracked split")


@register_component(MistakesSection)
def build_mistakes_tracker(section: MistakesSection, ctx: ComponentContext) -> MistakesTracker | None:
    """On when ``enabled`` (the default), on every tracked split."""
    return MistakesTracker(ctx.hierarchy, ctx.splits) if section.enabled else None
