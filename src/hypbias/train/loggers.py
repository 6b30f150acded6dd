"""Each epoch's numbers while a run trains: one hook shared by every loop.

:meth:`Tracker.end_epoch <hypbias.train.tracker.Tracker.end_epoch>` hands every logger attached to
the tracker an :class:`EpochRecord`, so ``hypbias run``, a loop of one's own
(``tracker.log_to(run_dir, tensorboard=True)``), the Lightning and Hugging Face callbacks and
``hypbias analyze-checkpoints`` log the same way. A logger is any object with
``log_epoch(record)`` and ``close()``:

* :class:`CsvLog` rewrites ``<run>/log.csv`` atomically after every epoch, from every row so far
  (a resumed run's file keeps its earlier epochs);
* :class:`ConsoleLog` prints one line per epoch on stdout (epoch, loss, accuracy per split,
  images/s, elapsed), for runs whose stdout is a file (nohup, SLURM);
* :class:`TensorBoardLog`, :class:`WandbLog` and :class:`MlflowLog` record every scalar of the
  record (:meth:`EpochRecord.scalars`) with the epoch as the step.

:func:`build_loggers` makes the ones a ``log:`` section asks for; under ``torchrun`` only rank 0 gets
any. Relative accuracy, relative gain and the residual relative error depend on every epoch of the
run (Eq. 8, 9, 35), so they are left to ``metrics.csv``; each epoch logs the accuracy of every
split in H, in each hypernym space and averaged over its random draws (with Eq. 22's prediction),
and every row the tracker's components measured.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import numpy as np

from hypbias.analysis.space_accuracy import space_metrics
from hypbias.errors import missing_dependency
from hypbias.io import atomic_write_text
from hypbias.labelspace.spaceset import SpaceSet
from hypbias.metrics.rows import MetricRow, metric_row
from hypbias.rundir import RunDir
from hypbias.train import distributed
from hypbias.train.run_files import log_frame

if TYPE_CHECKING:  # the config package imports the data and models, which a tracker does without
    from hypbias.train.config.sections import LogSection

EPOCH_METRICS = ("accuracy", "theoretical_accuracy")
"""The label-space metrics known at the epoch they describe (the others need the whole run)."""


@dataclass(frozen=True)
class EpochRecord:
    """One closed epoch, as the loggers receive it.

    Attributes
    ----------
    epoch : the epoch (0 = before training; a checkpoint's epoch in ``analyze-checkpoints``)
    row : its row of ``log.csv``: ``epoch``, ``loss``, ``lr``, ``acc_<split>``, ``images_per_s``,
        ``seconds`` and whatever else the loop logged
    measured : the metric rows measured this epoch: the components' and the loop's own
        (``loss_term`` per space of a multi-level loss)
    log : every row of ``log.csv`` so far, this one last
    confusion : split -> this epoch's confusion matrix (C, C), from which :attr:`metrics` derives
        the label spaces' accuracies
    spaces : the label spaces they are derived in (None: H only)
    """

    epoch: int
    row: Mapping[str, Any]
    measured: Sequence[MetricRow]
    log: Sequence[Mapping[str, Any]]
    confusion: Mapping[str, np.ndarray] = field(default_factory=dict)
    spaces: SpaceSet | None = None

    @cached_property
    def metrics(self) -> list[MetricRow]:
        """:func:`space_accuracy_rows` of :attr:`confusion`, then :attr:`measured`; computed when
        a logger first reads it (the scalar loggers do; ``log.csv`` and the console line do not)."""
        return space_accuracy_rows(self.epoch, self.confusion, self.spaces) + list(self.measured)

    def scalars(self) -> dict[str, float]:
        """Tag -> finite value: ``<split>/<space>/<metric>[/<layer>]`` for each metric row and
        ``log/<column>`` for each number of the row (``log/loss``, ``log/lr``, ...) but the
        epoch and the ``acc_<split>`` columns (they are ``<split>/H/accuracy``)."""
        out = {}
        for r in self.metrics:
            tag = f"{r['split']}/{r['space']}/{r['metric']}" + (f"/{r['layer']}" if r["layer"] else "")
            out[tag] = r["value"]
        for name, value in self.row.items():
            if name != "epoch" and not name.startswith("acc_") and isinstance(value, int | float):
                out[f"log/{name}"] = value
        return {tag: float(v) for tag, v in out.items() if math.isfinite(v)}


class EpochLogger(Protocol):
    """What :meth:`Tracker.end_epoch <hypbias.train.tracker.Tracker.end_epoch>` calls."""

    def log_epoch(self, record: EpochRecord) -> None: ...

    def close(self) -> None: ...


def space_accuracy_rows(epoch: int, confusion: Mapping[str, np.ndarray],
                        spaces: SpaceSet | None) -> list[MetricRow]:
    """Accuracy of each split in H, each hypernym space and each random family (the mean of its
    draws, with Eq. 22's ``theoretical_accuracy``), from this epoch's confusion matrices.

    ``confusion``: split -> array of shape (C, C). Single draws are left out (``metrics.csv``
    holds them).
    """
    rows = []
    for split, m in confusion.items():
        frame = space_metrics(m[None], spaces or SpaceSet(), split)
        frame = frame[frame.metric.isin(EPOCH_METRICS) & ~frame.space.str.contains("#")]
        rows += [metric_row(epoch, split, s, metric, v)
                 for s, metric, v in zip(frame.space, frame.metric, frame.value, strict=True)]
    return rows


def dispatch(loggers: Sequence[EpochLogger], epoch: int, log: Sequence[Mapping[str, Any]],
             confusion: Mapping[str, np.ndarray], spaces: SpaceSet | None,
             metrics: Sequence[MetricRow]) -> None:
    """Hand one closed epoch to every logger.

    ``log``: the rows of ``log.csv`` so far, this epoch's last; ``confusion``: split -> this
    epoch's matrix (C, C), from which :func:`space_accuracy_rows` derives the label spaces'
    accuracies when a logger reads :attr:`EpochRecord.metrics`; ``metrics``: the epoch's other rows
    (components, loss terms).
    """
    record = EpochRecord(epoch, log[-1], list(metrics), log, confusion, spaces)
    for logger in loggers:
        logger.log_epoch(record)


# ---------------------------------------------------------------------------- the loggers
class CsvLog:
    """``log.csv`` (and ``log.parquet`` with pyarrow) rewritten atomically after every epoch."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run = RunDir(Path(run_dir))
        self.run.path.mkdir(parents=True, exist_ok=True)

    def log_epoch(self, record: EpochRecord) -> None:
        rows = sorted(record.log, key=lambda r: r["epoch"])
        self.run.write_table("log", log_frame(rows, [r["epoch"] for r in rows]))

    def close(self) -> None:
        pass


class ConsoleLog:
    """One line per epoch: ``epoch 3/30  loss 0.412  lr 0.0095  acc val 71.2% train 80.1%
    12,345 img/s  0:01:23`` (the total epochs when known; what the row lacks is left out)."""

    def __init__(self, epochs: int | None = None, stream: TextIO | None = None) -> None:
        self.epochs = epochs
        self.stream = stream

    def log_epoch(self, record: EpochRecord) -> None:
        row = record.row
        parts = [f"epoch {record.epoch}" + (f"/{self.epochs}" if self.epochs else "")]
        loss = row.get("loss", math.nan)
        parts.append(f"loss {loss:.4g}" if math.isfinite(loss) else "loss -")
        if "lr" in row:
            parts.append(f"lr {row['lr']:.3g}")
        accs = [f"{k[4:]} {v:.2f}%" for k, v in row.items() if k.startswith("acc_")]
        parts.append("acc " + " ".join(accs))
        speed = row.get("images_per_s", math.nan)
        if math.isfinite(speed):
            parts.append(f"{speed:,.0f} img/s")
        if "seconds" in row:
            parts.append(str(datetime.timedelta(seconds=round(row["seconds"]))))
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)

    def close(self) -> None:
        pass


class TensorBoardLog:
    """Every scalar of each record under ``directory``, the epoch as the step.

    ``first_epoch`` > 0 (a resumed run) purges the events an earlier session wrote from that epoch
    on, so the epochs it measured again appear once.
    """

    def __init__(self, directory: str | Path, first_epoch: int = 0) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise missing_dependency("tensorboard", "tensorboard", "log.tensorboard") from None
        self.writer = SummaryWriter(str(directory), purge_step=first_epoch or None)

    def log_epoch(self, record: EpochRecord) -> None:
        for tag, value in record.scalars().items():
            self.writer.add_scalar(tag, value, record.epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLog:
    """A Weights & Biases run named after the run directory, holding its config; a resumed run
    continues the same W&B run (its id is kept in ``<run>/wandb/hypbias-run-id``). Where the
    records go is W&B's own setting: ``WANDB_MODE=offline`` keeps them under ``<run>/wandb/``."""

    def __init__(self, run_dir: str | Path, project: str, config: Mapping[str, Any],
                 resume: bool) -> None:
        try:
            import wandb
        except ImportError:
            raise missing_dependency("wandb", "wandb", "log.wandb") from None
        run_dir = Path(run_dir)
        id_file = run_dir / "wandb" / "hypbias-run-id"
        run_id = _kept_id(id_file, resume) or uuid.uuid4().hex[:12]
        _keep_id(id_file, run_id)
        self.run = wandb.init(project=project, dir=str(run_dir), id=run_id, resume="allow",
                              name=run_dir.name, config=dict(config))

    def log_epoch(self, record: EpochRecord) -> None:
        self.run.log(record.scalars(), step=record.epoch, commit=True)

    def close(self) -> None:
        self.run.finish()


class MlflowLog:
    """An MLflow run named after the run directory, its config flattened into parameters, every
    scalar a metric (characters MLflow refuses become ``_``). The tracking store is
    ``MLFLOW_TRACKING_URI`` when set, else a SQLite file ``<run>/mlruns/mlflow.db`` (``mlflow ui
    --backend-store-uri sqlite:///<run>/mlruns/mlflow.db``); a resumed run continues the same
    MLflow run (its id is kept in ``<run>/mlruns/hypbias-run-id``)."""

    BATCH = 1000
    """MLflow's limit of metrics per ``log_batch`` call."""

    def __init__(self, run_dir: str | Path, experiment: str, config: Mapping[str, Any],
                 resume: bool) -> None:
        try:
            from mlflow import MlflowClient
            from mlflow.entities import Metric, Param
        except ImportError:
            raise missing_dependency("mlflow", "mlflow", "log.mlflow") from None
        from hypbias.train.config.schema import flatten
        run_dir = Path(run_dir).resolve()
        store = run_dir / "mlruns"
        store.mkdir(parents=True, exist_ok=True)
        given = os.environ.get("MLFLOW_TRACKING_URI")
        self.metric = Metric
        self.client = MlflowClient(tracking_uri=given or f"sqlite:///{store / 'mlflow.db'}")
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(
            experiment, artifact_location=None if given else (store / "artifacts").as_uri())
        id_file = store / "hypbias-run-id"
        kept = _kept_id(id_file, resume)
        self.run_id = kept or self.client.create_run(experiment_id, run_name=run_dir.name).info.run_id
        if not kept:
            _keep_id(id_file, self.run_id)
            params = [Param(_mlflow_key(k), str(v)[:6000]) for k, v in flatten(config).items()]
            for start in range(0, len(params), 100):
                self.client.log_batch(self.run_id, params=params[start:start + 100])

    def log_epoch(self, record: EpochRecord) -> None:
        stamp = int(time.time() * 1000)
        metrics = [self.metric(_mlflow_key(tag), value, stamp, record.epoch)
                   for tag, value in record.scalars().items()]
        for start in range(0, len(metrics), self.BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[start:start + self.BATCH])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def _kept_id(path: Path, resume: bool) -> str | None:
    """The tracking service's run id kept in ``path`` by an earlier session, when resuming."""
    return (path.read_text().strip() or None) if resume and path.is_file() else None


def _keep_id(path: Path, run_id: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, run_id)


def _mlflow_key(tag: str) -> str:
    """``tag`` with the characters MLflow refuses in names replaced by ``_``."""
    return re.sub(r"[^\w\-. :/]", "_", tag)


# ---------------------------------------------------------------------------- building
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
"""``log:`` key -> the package it needs (each the extra of the same name)."""


def require_packages(section: LogSection) -> None:
    """Raise the install hint for a package the section needs and this environment lacks (before
    a run writes anything)."""
    for name, package in PACKAGES.items():
        if getattr(section, name) and find_spec(package) is None:
            raise missing_dependency(package, package, f"log.{name}")


def console_wanted(console: str, progress: bool) -> bool:
    """``always``; ``never``; ``auto``: when progress is shown and stdout is not a terminal."""
    if console == "auto":
        return progress and not sys.stdout.isatty()
    return console == "always"


def build_loggers(section: LogSection, run_dir: str | Path | None, *, first_epoch: int = 0,
                  epochs: int | None = None, config: Mapping[str, Any] | None = None,
                  progress: bool = True) -> list[EpochLogger]:
    """The loggers ``section`` asks for (none on ranks other than 0 under ``torchrun``).

    Parameters
    ----------
    section : the ``log:`` section
    run_dir : the run directory; None: the console line only (no file is written)
    first_epoch : the first epoch these loggers will see (> 0 when a run resumes)
    epochs : the last epoch, shown in the console line
    config : the run's config, recorded by W&B and MLflow
    progress : whether progress is shown (``console: auto`` prints only then)
    """
    if distributed.rank() != 0:
        return []
    loggers: list[EpochLogger] = []
    if console_wanted(section.console, progress):
        loggers.append(ConsoleLog(epochs))
    if run_dir is None:
        return loggers
    run_dir = Path(run_dir)
    loggers.append(CsvLog(run_dir))
    resume = first_epoch > 0
    if section.tensorboard:
        loggers.append(TensorBoardLog(run_dir / "tensorboard", first_epoch))
    if section.wandb:
        loggers.append(WandbLog(run_dir, section.project, config or {}, resume))
    if section.mlflow:
        loggers.append(MlflowLog(run_dir, section.project, config or {}, resume))
    return loggers


__all__ = ["EPOCH_METRICS", "ConsoleLog", "CsvLog", "EpochLogger", "EpochRecord", "MlflowLog",
           "TensorBoardLog", "WandbLog", "build_loggers", "console_wanted", "dispatch",
           "require_packages", "space_accuracy_rows"]
