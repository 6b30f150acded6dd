"""Hugging Face ``Trainer``: ``HypbiasCallback`` measures every epoch of ``Trainer.train``
(``pip install 'hypbias[transformers]'``).

    tracker = hb.Tracker.from_hierarchy(hierarchy, splits=("val", "train"), nc=True)
    callback = HypbiasCallback(tracker, "runs/hf", {"val": val_loader, "train": train_eval})
    Trainer(model, args, train_dataset=train, callbacks=[callback]).train()

The loaders yield the batches the model takes: mappings of model inputs whose ``labels`` entry is
the target (what ``Trainer``'s collators produce), or ``(inputs, targets)`` pairs. The model's
output has a ``logits`` field (every ``*ForSequenceClassification`` model); the penultimate features
are the input of its last ``nn.Linear`` (BERT's pooled output, RoBERTa's classification-head
activations). Epoch 0 is measured when training begins, epoch k after the k-th epoch, and goes to the
loggers of ``log`` (:mod:`hypbias.train.loggers`) with the loss and learning rate the Trainer has
logged in that epoch so far: with ``logging_strategy="epoch"`` the Trainer logs only after the epoch
closes, so those loggers see no loss. When training ends, the run directory of ``hypbias run`` is
written with its report, ``log.csv`` holding the loss and learning rate the Trainer logged last in
each epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from hypbias.errors import missing_dependency
from hypbias.integrations._recording import EpochRecorder
from hypbias.train.tracker import Tracker

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError:
    raise missing_dependency("transformers", "transformers",
                             "hypbias.integrations.transformers") from None


class LabelledBatches:
    """Re-iterable ``(inputs, targets)`` view of a loader of mappings with a ``label_key`` entry."""

    def __init__(self, loader: Iterable[Any], label_key: str = "labels") -> None:
        self.loader = loader
        self.label_key = label_key

    def __iter__(self) -> Iterator[tuple[Any, torch.Tensor]]:
        for batch in self.loader:
            if not isinstance(batch, Mapping):
                yield batch
                continue
            inputs = {k: v for k, v in batch.items() if k != self.label_key}
            yield inputs, batch[self.label_key]


class HypbiasCallback(TrainerCallback):
    """Tracks every epoch of ``Trainer.train`` and writes its run directory at the end.

    Parameters
    ----------
    tracker : the tracker (e.g. ``Tracker.from_hierarchy(...)``)
    out : the run directory
    loaders : split name -> DataLoader, one per tracked split
    head : the classification layer's name in the model, or None for its last ``nn.Linear``
    label_key : the batch entry holding the targets
    report : write ``report.html``
    log : the ``log:`` section as a dict, e.g. ``{"tensorboard": True}`` (``out/tensorboard/``)

    Attributes
    ----------
    run : the written run directory, once training has ended
    """

    def __init__(self, tracker: Tracker, out: str | Path, loaders: Mapping[str, Iterable[Any]], *,
                 head: str | torch.nn.Module | None = None, label_key: str = "labels",
                 report: bool = True, log: Mapping[str, Any] | None = None) -> None:
        batches = {split: LabelledBatches(loader, label_key) for split, loader in loaders.items()}
        self.recorder = EpochRecorder(tracker, out, batches, head, report, "HypbiasCallback", log)
        self.run = None

    @property
    def tracker(self) -> Tracker:
        return self.recorder.tracker

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: torch.nn.Module | None = None, **kwargs: Any) -> None:
        self.recorder.start(model)

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     model: torch.nn.Module | None = None, **kwargs: Any) -> None:
        epoch = round(state.epoch)
        self.recorder.measure(model, epoch, trainer_log(state.log_history, epoch))

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     model: torch.nn.Module | None = None, **kwargs: Any) -> None:
        logged = {row["epoch"]: trainer_log(state.log_history, row["epoch"])
                  for row in self.tracker.log}
        self.tracker.log = [{**row, **logged[row["epoch"]]} for row in self.tracker.log]
        self.run = self.recorder.finish(model)


def trainer_log(history: list[dict[str, Any]], epoch: int) -> dict[str, float]:
    """The last ``loss`` and ``learning_rate`` the Trainer logged during ``epoch`` (0: none).

    The Trainer logs after ``on_epoch_end``, so the values are read once training has ended.
    """
    found = {"loss": float("nan")}
    for entry in history:
        if "loss" in entry and epoch - 1 < entry.get("epoch", -1) <= epoch + 1e-9:
            found = {"loss": float(entry["loss"])}
            if "learning_rate" in entry:
                found["lr"] = float(entry["learning_rate"])
    return found


__all__ = ["HypbiasCallback", "LabelledBatches", "trainer_log"]
