"""The interface of a tracker component: what :class:`~hypbias.train.tracker.Tracker` calls when.

Per epoch: :meth:`TrackerComponent.update` with every batch of the first evaluation pass over each
split it consumes; where :meth:`~TrackerComponent.wants_second_pass` says so,
:meth:`~TrackerComponent.before_second_pass` and :meth:`~TrackerComponent.update_second` for a
second pass; :meth:`~TrackerComponent.all_reduce` once; then :meth:`~TrackerComponent.end_epoch`,
which returns the epoch's metric rows. The implementations live in :mod:`hypbias.train.components`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hypbias.metrics.rows import MetricRow


class TrackerComponent:
    """Something the tracker feeds during evaluation passes and asks for rows at each epoch's end.

    Subclasses override what they need. ``splits`` names the splits whose batches they consume.
    """

    name = "component"
    splits: tuple[str, ...] = ()

    def bind(self, model: torch.nn.Module, head: torch.nn.Linear) -> None:
        """Called with the model being trained and its final linear layer, before evaluating."""

    def active(self, epoch: int) -> bool:
        """Whether the component measures at ``epoch`` (e.g. every k-th epoch)."""
        return True

    def update(self, split: str, logits: torch.Tensor, targets: torch.Tensor,
               features: torch.Tensor | None) -> None:
        """One evaluation batch: logits (N, C), targets (N,), penultimate features (N, D) or None."""

    def wants_second_pass(self, split: str) -> bool:
        """Whether a second pass over ``split`` is needed this epoch (e.g. NC4 needs final means)."""
        return False

    def before_second_pass(self, split: str) -> None:
        """Between the passes: e.g. sum the first pass's statistics over processes (once)."""

    def update_second(self, split: str, logits: torch.Tensor, targets: torch.Tensor,
                      features: torch.Tensor | None) -> None:
        """One batch of the second pass."""

    def end_epoch(self, epoch: int, model: torch.nn.Module | None) -> list[MetricRow]:
        """Finish the epoch: return its metric rows and reset per-epoch state."""
        return []

    def all_reduce(self) -> None:
        """Sum per-epoch state over ``torch.distributed`` processes before :meth:`end_epoch`.

        Called once per epoch after the last pass; state already summed in
        :meth:`before_second_pass` must not be summed again.
        """

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def artifacts(self) -> dict[str, np.ndarray]:
        """Arrays worth keeping with the run (written to ``<name>.npz``); empty for none."""
        return {}

    def settings(self) -> dict[str, Any]:
        """What determines the component's numbers beyond the config (recorded in environment.json)."""
        return {}
