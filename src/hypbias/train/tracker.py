"""The :class:`Tracker`: per-epoch sufficient statistics, usable inside any training loop.

    tracker = hb.Tracker(num_classes=100, splits=("val",))
    tracker.bind(model)               # components that read the model (neural collapse, layers)
    evaluate(model, tracker)          # calls tracker.update(logits, targets, split="val")
    tracker.end_epoch(0)              # epoch 0: before any parameter update
    for epoch in range(1, epochs + 1):
        train_one_epoch(model)
        evaluate(model, tracker)
        tracker.end_epoch(epoch)
    tracker.confusion("val")          # (epochs + 1, C, C), every label space follows from it

Components (neural-collapse statistics, hierarchical metrics, manifold analysis) plug in through
:class:`TrackerComponent`; they see the same evaluation batches, so no label space costs another
pass over the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from hypbias._validation import check_int
from hypbias.metrics.confusion import ConfusionMatrix
from hypbias.metrics.rows import MetricRow


class TrackerComponent:
    """Something the tracker feeds during evaluation passes and asks for rows at each epoch's end.

    Subclasses override what they need. ``splits`` names the splits whose batches they consume.
    """

    name = "component"
    splits: tuple[str, ...] = ()

    def bind(self, model: torch.nn.Module) -> None:
        """Called once with the model being trained, before the first evaluation."""

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


class Tracker:
    """Records the fine confusion matrix of each split at every epoch, plus component metrics.

    Parameters
    ----------
    num_classes : int
        C.
    splits : sequence of str
        Splits to record, e.g. ``("val",)`` or ``("val", "train")``.
    components : iterable of TrackerComponent
        Extra statistics fed from the same evaluation batches.

    Attributes
    ----------
    epochs : list of int
        The epochs recorded so far (0 = before training).
    rows : list of dict
        Long-format metric rows produced by the components.
    """

    def __init__(self, num_classes: int, splits: Sequence[str] = ("val",),
                 components: Iterable[TrackerComponent] = ()) -> None:
        self.num_classes = check_int(num_classes, "num_classes", "Tracker", low=1)
        if isinstance(splits, str) or not splits:
            raise ValueError(
                f"The 'splits' parameter of Tracker must be a non-empty list. Got {splits!r} instead."
            )
        self.splits = tuple(splits)
        self.components = list(components)
        self._current = {s: ConfusionMatrix(num_classes) for s in self.splits}
        self._history: dict[str, list[np.ndarray]] = {s: [] for s in self.splits}
        self.epochs: list[int] = []
        self.rows: list[MetricRow] = []

    def bind(self, model: torch.nn.Module) -> None:
        """Give the components the model (its head, its layers) before the first evaluation."""
        for comp in self.components:
            comp.bind(model)

    @property
    def next_epoch(self) -> int:
        """The epoch that the next :meth:`end_epoch` is expected to close."""
        return self.epochs[-1] + 1 if self.epochs else 0

    def _split(self, split: str) -> str:
        if split not in self._current:
            raise ValueError(
                f"The 'split' parameter of Tracker.update must be one of {list(self.splits)}. "
                f"Got {split!r} instead."
            )
        return split

    def components_for(self, split: str) -> list[TrackerComponent]:
        """Components that consume ``split``'s batches at the current epoch."""
        return [c for c in self.components if split in c.splits and c.active(self.next_epoch)]

    def wants_features(self, split: str) -> bool:
        """Whether an evaluation pass over ``split`` should pass penultimate features."""
        return bool(self.components_for(split))

    @torch.no_grad()
    def update(self, logits: torch.Tensor, targets: torch.Tensor, split: str = "val",
               features: torch.Tensor | None = None) -> None:
        """Add one evaluation batch: logits (N, C), targets (N,), optional features (N, D)."""
        self._current[self._split(split)].update(logits, targets)
        for comp in self.components_for(split):
            comp.update(split, logits, targets, features)

    def wants_second_pass(self, split: str) -> bool:
        """Whether a component needs a second evaluation pass over ``split`` this epoch."""
        return any(c.wants_second_pass(split) for c in self.components_for(split))

    def before_second_pass(self, split: str) -> None:
        """Call between the two passes over ``split`` (see :meth:`wants_second_pass`)."""
        for comp in self.components_for(self._split(split)):
            if comp.wants_second_pass(split):
                comp.before_second_pass(split)

    @torch.no_grad()
    def update_second(self, logits: torch.Tensor, targets: torch.Tensor, split: str = "train",
                      features: torch.Tensor | None = None) -> None:
        """Add one batch of the second pass (see :meth:`wants_second_pass`)."""
        for comp in self.components_for(self._split(split)):
            if comp.wants_second_pass(split):
                comp.update_second(split, logits, targets, features)

    def all_reduce(self) -> None:
        """Sum this epoch's statistics over ``torch.distributed`` processes (no-op otherwise).

        Call once per epoch, after the last evaluation pass and before :meth:`end_epoch`.
        """
        for split in self.splits:
            self._current[split].all_reduce()
        for comp in self.components:
            if comp.active(self.next_epoch):
                comp.all_reduce()

    def end_epoch(self, epoch: int, model: torch.nn.Module | None = None) -> dict[str, float]:
        """Close ``epoch``: store each split's confusion matrix, collect component rows, reset.

        Epochs must be consecutive from 0, where epoch 0 is measured before any parameter update.
        ``model`` is passed to components that analyse the model itself (layer features).

        Returns
        -------
        dict split -> fine accuracy (percent) at this epoch.
        """
        if epoch != self.next_epoch:
            raise ValueError(
                f"Tracker.end_epoch: expected epoch {self.next_epoch} (epochs are consecutive from 0, "
                f"0 = before training). Got {epoch!r} instead."
            )
        out = {}
        for split in self.splits:
            m = self._current[split].compute()
            self._history[split].append(m)
            self._current[split].reset()
            total = m.sum()
            out[split] = float(100.0 * np.trace(m) / total) if total else float("nan")
        for comp in self.components:
            if comp.active(epoch):
                self.rows.extend(comp.end_epoch(epoch, model))
        self.epochs.append(epoch)
        return out

    def confusion(self, split: str = "val") -> np.ndarray:
        """Stacked confusion matrices of ``split``, array of shape (epochs, C, C), int64."""
        hist = self._history[self._split(split)]
        if not hist:
            return np.zeros((0, self.num_classes, self.num_classes), dtype=np.int64)
        return np.stack(hist)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue tracking after a restart."""
        return {
            "epochs": list(self.epochs),
            "history": {s: self.confusion(s) for s in self.splits},
            "rows": list(self.rows),
            "components": {c.name: c.state_dict() for c in self.components},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs = list(state["epochs"])
        self._history = {s: list(state["history"][s]) for s in self.splits}
        self.rows = list(state["rows"])
        for comp in self.components:
            comp.load_state_dict(state["components"].get(comp.name, {}))
