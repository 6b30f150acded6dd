"""Mistake severity and hierarchical top-k distances tracked per epoch (Bertinetto et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from hypbias.hierarchy.tree import LCA_CONVENTIONS, Hierarchy
from hypbias.metrics._inputs import float_matrix
from hypbias.metrics.hierarchical import HierarchicalMistakes
from hypbias.metrics.rows import MetricRow, metric_row
from hypbias.train.components import ComponentContext, register_component
from hypbias.train.config.schema import Bool, Choice, Section, key
from hypbias.train.tracker import TrackerComponent


class MistakesTracker(TrackerComponent):
    """One :class:`HierarchicalMistakes` accumulator per tracked split, fed by every evaluation batch.

    Rows: ``mistake_severity`` (mean LCA distance of top-1 mistakes) and ``hier_dist@k`` in space
    H, with LCA distances in convention ``lca`` (:mod:`hypbias.metrics.hierarchical`).
    """

    name = "mistakes"

    def __init__(self, hierarchy: Hierarchy, splits: tuple[str, ...], lca: str = "depth") -> None:
        self.splits = splits
        self.lca = lca
        self.acc = {s: HierarchicalMistakes(hierarchy, lca=lca) for s in splits}

    def settings(self) -> dict[str, Any]:
        """The LCA convention of the rows (the published numbers use ``depth``)."""
        return {"lca": self.lca}

    def update(self, split: str, logits: torch.Tensor, targets: torch.Tensor,
               features: torch.Tensor | None) -> None:
        acc = self.acc[split]  # validated by the tracker, which also takes integer predictions
        acc._add(float_matrix(logits, "logits", "Tracker.update", acc.num_classes), targets)

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
    lca: str = key("depth", Choice(*LCA_CONVENTIONS), "LCA distance: depth = H − depth(LCA), the "
                   "convention of published mistake severities; height = the LCA's height")


@register_component(MistakesSection)
def build_mistakes_tracker(section: MistakesSection, ctx: ComponentContext) -> MistakesTracker | None:
    """On when ``enabled`` (the default), on every tracked split."""
    return MistakesTracker(ctx.hierarchy, ctx.splits, section.lca) if section.enabled else None
