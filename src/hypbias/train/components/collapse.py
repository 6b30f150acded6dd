"""Neural collapse tracked per epoch in every label space from two passes over one split (§3.3).

Pass 1 accumulates the fine class statistics (counts, means, centred scatter) from the penultimate
features of the tracker's evaluation pass; every label space's NC1–NC3 follow from them. Pass 2
counts, for every space at once, the samples whose classifier decision differs from the nearest
class mean (NC4). The paper needs 2 + M passes for M extra label spaces; this needs two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hypbias.labelspace import LabelSpace, SpaceSet
from hypbias.metrics._inputs import float_matrix
from hypbias.metrics.collapse import ClassStatistics, NearestMeanMismatch, neural_collapse_in_spaces
from hypbias.metrics.rows import MetricRow, metric_row
from hypbias.train.components import ComponentContext, register_component
from hypbias.train.config.schema import AnyOf, Choice, Int, ListOf, Section, Text, key
from hypbias.train.tracker import TrackerComponent


class CollapseTracker(TrackerComponent):
    """NC1–NC4 of ``split`` every ``every`` epochs for each space of ``spaces``.

    Parameters
    ----------
    num_classes : C.
    spaces : name -> LabelSpace, or None for the fine space ``H``.
    split : the split measured (the paper uses the training set).
    every : measure at epochs divisible by ``every``.
    """

    name = "nc"

    def __init__(self, num_classes: int, spaces: dict[str, LabelSpace | None],
                 split: str = "train", every: int = 1) -> None:
        self.splits = (split,)
        self.split = split
        self.every = every
        self.spaces = spaces
        self.num_classes = num_classes
        self.stats: ClassStatistics | None = None
        self.final: dict[str, np.ndarray] = {}
        self.head: torch.nn.Linear | None = None
        self.nc4: NearestMeanMismatch | None = None

    def bind(self, model: torch.nn.Module, head: torch.nn.Linear) -> None:
        """Read W and b from ``head`` (whatever weights are swapped in when measuring)."""
        self.head = head
        self.stats = ClassStatistics(self.num_classes, head.in_features)

    def active(self, epoch: int) -> bool:
        return epoch % self.every == 0

    def update(self, split: str, logits: torch.Tensor, targets: torch.Tensor,
               features: torch.Tensor | None) -> None:
        if features is None:
            raise ValueError("CollapseTracker needs penultimate features: pass features= to Tracker.update")
        # the tracker validated the batch (features finite, one row per target) but not D
        self.stats._add(float_matrix(features, "features", "Tracker.update", self.stats.dim), targets)

    def wants_second_pass(self, split: str) -> bool:
        return True

    def before_second_pass(self, split: str) -> None:
        self.stats.all_reduce()
        self.nc4 = NearestMeanMismatch(self.stats, self.head.weight, self.head.bias, self.spaces)

    def update_second(self, split: str, logits: torch.Tensor, targets: torch.Tensor,
                      features: torch.Tensor | None) -> None:
        self.nc4.update(features)

    def all_reduce(self) -> None:
        if self.nc4 is not None:
            self.nc4.all_reduce()

    def end_epoch(self, epoch: int, model: torch.nn.Module | None) -> list[MetricRow]:
        rows: list[MetricRow] = []
        weight = self.head.weight.detach()
        bias = self.head.bias.detach() if self.head.bias is not None else torch.zeros_like(weight[:, 0])
        mismatch = self.nc4.compute() if self.nc4 is not None else {}
        for name, values in neural_collapse_in_spaces(self.stats, weight, bias, self.spaces).items():
            if name in mismatch:
                values["nc4"] = mismatch[name]
            rows.extend(metric_row(epoch, self.split, name, metric, value)
                        for metric, value in values.items())
        rows.extend(_draw_means(rows))
        self.final = {"epoch": np.array(epoch), "weight": weight.cpu().numpy(),
                      "bias": bias.cpu().numpy(),
                      **{k: v.numpy() for k, v in self.stats.state_dict().items()}}
        self.stats.reset()
        self.nc4 = None
        return rows

    def state_dict(self) -> dict[str, Any]:
        """The last measured epoch's arrays (:meth:`artifacts`): a run resumed from its last
        checkpoint writes them too."""
        return {"final": dict(self.final)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.final = {k: np.asarray(v) for k, v in state.get("final", {}).items()}

    def artifacts(self) -> dict[str, np.ndarray]:
        """The class statistics and classifier of the last measured epoch, from which NC follows in
        any label space: ``counts`` (C,), ``means`` (C, D), ``scatter`` (D, D) (the within-class
        scatter, N Σ_W), ``weight``, ``bias``, ``epoch``."""
        return self.final


def _draw_means(rows: list[MetricRow]) -> list[MetricRow]:
    """``R<n>`` rows: the mean over the draws ``R<n>#k`` of every metric (as for accuracy)."""
    groups: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        if "#" in row["space"]:
            groups.setdefault((row["space"].split("#")[0], row["metric"]), []).append(row["value"])
    if not rows:
        return []
    epoch, split = rows[0]["epoch"], rows[0]["split"]
    return [metric_row(epoch, split, space, metric, float(np.mean(values)))
            for (space, metric), values in groups.items()]


def collapse_spaces(selection: str | tuple[str, ...], spaces: SpaceSet) -> dict[str, LabelSpace | None]:
    """``nc.spaces``: ``"all"`` (H, every S and every random draw), or a list of names from those."""
    available: dict[str, LabelSpace | None] = {"H": None, **spaces.all()}
    if selection == "all":
        return available
    if isinstance(selection, str) or not all(name in available for name in selection):
        shown = selection if isinstance(selection, str) else list(selection)
        raise ValueError(f"must be 'all' or a list of space names among {', '.join(available)}. "
                         f"Got {shown!r} instead.")
    return {name: available[name] for name in selection}


@dataclass(frozen=True)
class CollapseSection(Section):
    """The ``nc:`` section."""

    SECTION = "nc"
    every: int = key(0, Int(low=0), "measure every k-th epoch (0 = off)")
    split: str = key("train", Choice("train", "val"), "the split measured (one of track.splits)")
    spaces: str | tuple[str, ...] = key("all", AnyOf(Choice("all"), ListOf(Text(), min_len=1)),
                                        "'all' (H, every S and every random draw) or a list of "
                                        "space names")


@register_component(CollapseSection)
def build_collapse_tracker(section: CollapseSection, ctx: ComponentContext) -> CollapseTracker | None:
    """Off when ``every`` is 0; ``split`` must be tracked and ``spaces`` among the run's."""
    if section.every == 0:
        return None
    if section.split not in ctx.splits:
        raise ctx.error("nc.split", f"= {section.split!r} must be one of track.splits "
                        f"{list(ctx.splits)}")
    try:
        chosen = collapse_spaces(section.spaces, ctx.spaces)
    except ValueError as err:
        raise ctx.error("nc.spaces", str(err)) from None
    return CollapseTracker(ctx.num_classes, chosen, split=section.split, every=section.every)
