"""The run directory written from a :class:`~hypbias.train.tracker.Tracker`: one writer for every loop.

``hypbias run``, a loop of one's own (:meth:`Tracker.save`), the Lightning and Hugging Face
callbacks and ``hypbias analyze-checkpoints`` all end here, so their run directories hold the same
files and ``hypbias report`` reads any of them (layout in :mod:`hypbias.rundir`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from hypbias.analysis.findings import run_findings
from hypbias.analysis.space_accuracy import convergence_summary, space_metrics
from hypbias.hierarchy.files import write_hierarchy
from hypbias.hierarchy.tree import Hierarchy
from hypbias.labelspace import SpaceSet
from hypbias.metrics.rows import MetricRow, rows_frame
from hypbias.rundir import RunDir, environment, main_split
from hypbias.train import distributed
from hypbias.train.component import TrackerComponent
from hypbias.train.head import model_device


class Tracked(Protocol):
    """What the writer reads of a :class:`~hypbias.train.tracker.Tracker`."""

    splits: tuple[str, ...]
    components: list[TrackerComponent]
    hierarchy: Hierarchy | None
    spaces: SpaceSet | None
    config: dict[str, Any]
    epochs: list[int]
    rows: list[MetricRow]
    log: list[dict[str, Any]]

    @property
    def model(self) -> Any: ...

    def confusion(self, split: str = "val") -> np.ndarray: ...

RUN_DEFAULTS: dict[str, Any] = {
    "seed": None,
    "data": {"name": "own loop"},
    "model": {"name": None},
    "train": {"epochs": None},
    "spaces": {"q": 0.95},
}
"""What ``config.yaml`` holds at least (what the report and the findings read); the tracker's own
options (:attr:`Tracker.config`) are written over it."""


def run_config(tracker: Tracked) -> dict[str, Any]:
    """``config.yaml`` for a tracker: :data:`RUN_DEFAULTS`, then the tracker's options, then what
    the tracker knows for sure (its splits, the bound model's class, the last epoch)."""
    config = copy.deepcopy(RUN_DEFAULTS)
    for key, value in tracker.config.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), dict):
            config[key].update(copy.deepcopy(dict(value)))
        else:
            config[key] = copy.deepcopy(value)
    config["track"] = {**config.get("track", {}), "splits": list(tracker.splits)}
    if config["model"]["name"] is None and tracker.model is not None:
        config["model"]["name"] = type(tracker.model).__name__
    if config["train"]["epochs"] is None and tracker.epochs:
        config["train"]["epochs"] = tracker.epochs[-1]
    return config


def write_run(run: RunDir, tracker: Tracked, *, config: Mapping[str, Any] | None = None,
              log: Sequence[Mapping[str, Any]] | None = None, epochs: Sequence[int] | None = None,
              model_state: Mapping[str, Any] | None = None,
              artifacts: Mapping[str, Mapping[str, np.ndarray]] | None = None,
              environment_extra: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Write every file of a run directory from a tracker; returns the metrics table.

    Parameters
    ----------
    run : the run directory (created when missing)
    tracker : a tracker with at least one closed epoch and a ``hierarchy``
    config : the resolved config; by default :func:`run_config` of the tracker
    log : rows of ``log.csv``, one per tracked epoch; by default ``tracker.log``
    epochs : the epoch each tracked position stands for (checkpoints saved every k epochs);
        by default the tracker's own epochs
    model_state : the final weights, written to ``model.pt``
    artifacts : ``<name>.npz`` files to write, name -> arrays; by default the components' own
    environment_extra : more entries for ``environment.json``

    Files: ``config.yaml``, ``environment.json``, ``hierarchy.json``, ``spaces.npz``/``.json``,
    ``confusion.npz`` (row i of ``log.csv`` gives the epoch of index i), ``log.csv``,
    ``metrics.csv``, ``summary.json``, ``<component>.npz`` and ``model.pt`` when given.
    """
    _require_hierarchy(tracker)
    if not tracker.epochs:
        raise ValueError("Tracker.save: no epoch recorded yet (call Tracker.end_epoch first)")
    config = dict(config) if config is not None else run_config(tracker)
    epochs = list(epochs) if epochs is not None else list(tracker.epochs)
    if len(epochs) != len(tracker.epochs):
        raise ValueError(f"The 'epochs' parameter of write_run must give {len(tracker.epochs)} "
                         f"epochs, one per tracked epoch. Got {len(epochs)} instead.")
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_yaml("config.yaml", config)
    spaces = write_tracked(run, tracker, log=log, epochs=epochs, model_state=model_state,
                           artifacts=artifacts, environment_extra=environment_extra)
    return analyse_run(run, config, spaces, tracker.rows, epochs=epochs)


def write_tracked(run: RunDir, tracker: Tracked, *, log: Sequence[Mapping[str, Any]] | None = None,
                  epochs: Sequence[int] | None = None, model_state: Mapping[str, Any] | None = None,
                  artifacts: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                  environment_extra: Mapping[str, Any] | None = None) -> SpaceSet:
    """Every file :func:`write_run` writes but ``config.yaml``, ``metrics`` and ``summary.json``
    (``hypbias run`` wrote its config first); returns the spaces written. Parameters as there."""
    _require_hierarchy(tracker)
    spaces = tracker.spaces if tracker.spaces is not None else SpaceSet()
    device = None if tracker.model is None else str(model_device(tracker.model))
    run.write_json("environment.json", {
        **environment(device),
        "world_size": distributed.world_size(),
        "components": {c.name: c.settings() for c in tracker.components if c.settings()},
        **dict(environment_extra or {}),
    })
    write_hierarchy(tracker.hierarchy, run.file("hierarchy.json"))
    run.write_spaces(spaces)
    run.write_npz("confusion.npz", {s: tracker.confusion(s) for s in tracker.splits})
    run.write_table("log", log_frame(log if log is not None else tracker.log,
                                     epochs if epochs is not None else tracker.epochs))
    if model_state is not None:
        run.write_torch("model.pt", dict(model_state))
    if artifacts is None:
        artifacts = {c.name: arrays for c in tracker.components if (arrays := c.artifacts())}
    for name, arrays in artifacts.items():
        run.write_npz(f"{name}.npz", dict(arrays))
    return spaces


def _require_hierarchy(tracker: Tracked) -> None:
    if tracker.hierarchy is None:
        raise ValueError("Tracker.save needs the class hierarchy: build the tracker with "
                         "Tracker.from_hierarchy(...) or pass Tracker(..., hierarchy=h)")


def log_frame(log: Sequence[Mapping[str, Any]], epochs: Sequence[int]) -> pd.DataFrame:
    """``log.csv``: the rows with their ``epoch`` set from ``epochs`` and a ``loss`` column (NaN
    where no loss was logged), which the report's training figure plots."""
    frame = pd.DataFrame([dict(row) for row in log])
    if len(frame) != len(epochs):
        raise ValueError(f"log.csv needs one row per tracked epoch ({len(epochs)}). "
                         f"Got {len(frame)} rows instead.")
    frame["epoch"] = list(epochs)
    if "loss" not in frame:
        frame.insert(1, "loss", np.nan)
    return frame


def analyse_run(run: RunDir, config: Mapping[str, Any], spaces: SpaceSet,
                extra_rows: Sequence[MetricRow], epochs: Sequence[int] | None = None,
                diverged: str | None = None) -> pd.DataFrame:
    """Derive every label-space metric from ``confusion.npz``; write ``metrics`` and ``summary.json``.

    ``extra_rows`` are the components' rows; ``epochs[i]`` is the epoch of confusion index i and of
    rows recorded at position i (default: i); ``diverged`` says why training stopped early.
    """
    frames = [space_metrics(m, spaces, split) for split, m in run.confusion().items()]
    if extra_rows:
        frames.append(rows_frame(extra_rows))
    metrics = pd.concat(frames, ignore_index=True)
    metrics["layer"] = metrics["layer"].fillna("").astype(str)
    if epochs is not None:
        metrics["epoch"] = np.asarray(epochs, dtype=np.int64)[metrics["epoch"].to_numpy()]
    run.write_table("metrics", metrics)
    summary = convergence_summary(metrics, spaces, q=float(config["spaces"]["q"]))
    final = metrics[(metrics.metric == "accuracy") & (metrics.layer == "")]
    last = final[final.epoch == final.epoch.max()]
    summary["final_accuracy"] = {
        split: dict(zip(frame.space, frame.value.round(4), strict=True))
        for split, frame in last[~last.space.str.contains("#")].groupby("split")
    }
    summary["findings"] = run_findings(metrics, summary, spaces,
                                       main_split(config["track"]["splits"]))
    if diverged is not None:
        summary["diverged"] = diverged
    run.write_json("summary.json", summary)
    return metrics


__all__ = ["RUN_DEFAULTS", "Tracked", "analyse_run", "log_frame", "run_config", "write_run",
           "write_tracked"]
