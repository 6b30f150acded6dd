"""PyTorch Lightning: ``HypbiasCallback`` measures every epoch of ``Trainer.fit`` (``pip install
'hypbias[lightning]'``).

    tracker = hb.Tracker.from_hierarchy(hierarchy, splits=("val", "train"), nc=True)
    callback = HypbiasCallback(tracker, "runs/lightning", {"val": val_loader, "train": train_eval})
    lightning.Trainer(max_epochs=30, callbacks=[callback]).fit(module, train_loader)

Epoch 0 is measured when training starts, before the first update; epoch k after the k-th training
epoch. Each epoch goes to the loggers of ``log`` (:mod:`hypbias.train.loggers`: ``log.csv`` rewritten,
TensorBoard, W&B, MLflow, a console line), with every scalar the module logged. The
LightningModule's forward must return the logits; the penultimate features are the input of its
last ``nn.Linear`` (or of ``head``). When ``fit`` ends, the run directory of ``hypbias run`` is
written with its report. The tracker travels in Lightning's checkpoints, so a resumed ``fit``
continues the same run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hypbias.errors import missing_dependency
from hypbias.integrations._recording import EpochRecorder, scalars
from hypbias.train.tracker import Tracker

try:
    from lightning.pytorch import Callback, LightningModule, Trainer
except ImportError:
    try:
        from pytorch_lightning import Callback, LightningModule, Trainer
    except ImportError:
        raise missing_dependency("lightning", "lightning", "hypbias.integrations.lightning") from None


class HypbiasCallback(Callback):
    """Tracks every epoch of a Lightning ``fit`` and writes its run directory at the end.

    Parameters
    ----------
    tracker : the tracker (e.g. ``Tracker.from_hierarchy(...)``)
    out : the run directory
    loaders : split name -> DataLoader, one per tracked split (for neural collapse, an unshuffled
        loader of the training data without augmentation)
    head : the classification layer's name in the module, or None for its last ``nn.Linear``
    loss_key : the logged metric written as ``loss`` in ``log.csv`` (every other scalar that the
        module logs is written under its own name)
    report : write ``report.html``
    log : the ``log:`` section as a dict, e.g. ``{"tensorboard": True}`` (``out/tensorboard/``)

    Attributes
    ----------
    run : the written run directory, once ``fit`` has ended
    """

    def __init__(self, tracker: Tracker, out: str | Path, loaders: Mapping[str, Iterable[Any]], *,
                 head: str | torch.nn.Module | None = None, loss_key: str = "train_loss",
                 report: bool = True, log: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.recorder = EpochRecorder(tracker, out, loaders, head, report, "HypbiasCallback", log)
        self.loss_key = loss_key
        self.run = None

    @property
    def tracker(self) -> Tracker:
        return self.recorder.tracker

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.recorder.start(pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log = scalars(trainer.callback_metrics)
        if self.loss_key in log:
            log["loss"] = log.pop(self.loss_key)
        if trainer.optimizers:
            log["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.recorder.measure(pl_module, trainer.current_epoch + 1, log)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.run = self.recorder.finish(pl_module)

    def state_dict(self) -> dict[str, Any]:
        """The tracker's state, its NumPy arrays as tensors (Lightning reads checkpoints with
        ``weights_only``)."""
        return {"tracker": _tensors(self.tracker.state_dict())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = _arrays(state_dict["tracker"])
        state["history"] = {s: list(stack) for s, stack in state["history"].items()}
        self.tracker.load_state_dict(state)


_ARRAY = "__ndarray__"


def _tensors(value: Any) -> Any:
    """``value`` with every NumPy array replaced by ``{"__ndarray__": tensor}``."""
    if isinstance(value, np.ndarray):
        return {_ARRAY: torch.from_numpy(np.ascontiguousarray(value))}
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_tensors(v) for v in value)
    return value


def _arrays(value: Any) -> Any:
    """The inverse of :func:`_tensors`."""
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            return value[_ARRAY].numpy()
        return {k: _arrays(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_arrays(v) for v in value)
    return value


__all__ = ["HypbiasCallback"]
