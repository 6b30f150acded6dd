"""What the training-framework callbacks share: measure each epoch, log it, then write the run
directory."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from hypbias.rundir import RunDir
from hypbias.train import distributed
from hypbias.train.config.schema import Origins
from hypbias.train.config.sections import LogSection
from hypbias.train.loggers import build_loggers, require_packages
from hypbias.train.run_files import run_config
from hypbias.train.tracker import Tracker


class EpochRecorder:
    """Evaluates the model on every tracked split at the end of each epoch and writes the run.

    Parameters
    ----------
    tracker : the tracker (e.g. ``Tracker.from_hierarchy(...)``)
    out : the run directory to write when training ends
    loaders : split name -> re-iterable of ``(inputs, targets)`` batches, one per tracked split.
        Under ``torchrun`` every process iterates them in full and evaluates its share of the
        batches; the statistics are summed over processes.
    head : the classification layer (see :meth:`Tracker.bind`); None: the model's last ``nn.Linear``
    report : write ``report.html`` with the run directory
    owner : the callback, named in errors
    log : the ``log:`` section as a dict (``{"tensorboard": True}``; keys of
        :class:`~hypbias.train.config.sections.LogSection`); ``out/log.csv`` is rewritten after
        every epoch either way
    """

    def __init__(self, tracker: Tracker, out: str | Path, loaders: Mapping[str, Iterable[Any]],
                 head: str | torch.nn.Module | None, report: bool, owner: str,
                 log: Mapping[str, Any] | None = None) -> None:
        missing = [s for s in tracker.splits if s not in loaders]
        if missing:
            raise ValueError(f"The 'loaders' parameter of {owner} must hold a loader for every "
                             f"tracked split {list(tracker.splits)}. Got none for {missing}.")
        self.tracker = tracker
        self.out = Path(out)
        self.loaders = dict(loaders)
        self.head = head
        self.report = report
        self.log = LogSection.parse(log, Origins(owner))
        require_packages(self.log)

    def start(self, model: torch.nn.Module) -> None:
        """Bind the model, attach the loggers and measure epoch 0, unless a restored tracker has
        epochs already."""
        self.tracker.bind(model, self.head)
        self.tracker.loggers.extend(build_loggers(self.log, self.out,
                                                  first_epoch=self.tracker.next_epoch,
                                                  config=run_config(self.tracker)))
        if not self.tracker.epochs:
            self.measure(model, 0, {})

    def measure(self, model: torch.nn.Module, epoch: int, log: Mapping[str, float]) -> dict[str, float]:
        """Evaluate every tracked split and close ``epoch``; returns the fine accuracy per split."""
        for split in self.tracker.splits:
            self.tracker.evaluate(model, self.loaders[split], split, shard=True)
        return self.tracker.end_epoch(epoch, model, log)

    def finish(self, model: torch.nn.Module) -> RunDir:
        """Close the loggers, write the run directory (and its report) from process 0."""
        self.tracker.close_loggers()
        run = self.tracker.save(self.out, model=model)
        if self.report and distributed.rank() == 0:
            from hypbias.report import write_report

            write_report(run)
        return run


def scalars(values: Mapping[str, Any]) -> dict[str, float]:
    """The entries of ``values`` that are numbers or one-element tensors, as floats."""
    out = {}
    for name, value in values.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[name] = float(value.detach().cpu())
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out
