"""A series of checkpoints trained elsewhere, measured as if tracked during training.

Each checkpoint is evaluated on every tracked split as epoch 0 of one :class:`Tracker`, emptied
before each, so every component measures it (accuracy in every label space from the confusion
matrix, neural collapse, the layer-wise manifold analysis when configured) from inputs drawn once
per series. The rows are labelled with the checkpoint's
epoch and written as one run directory by :func:`~hypbias.train.run_files.write_run`.

Each measured checkpoint goes to the loggers of the config's ``log:`` section
(:mod:`hypbias.train.loggers`), its epoch as the step: ``log.csv`` grows as the series is measured.

Under ``torchrun`` the checkpoints are shared out, the i-th (in epoch order) to process
i mod world_size, each process on its own GPU evaluating whole splits; rank 0 gathers the results
(logging its own as it measures them, the others' once gathered) and writes the run. The process
group is joined only for that gathering, so no statistic is summed over processes.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from hypbias.analysis.umap_pictures import PREFIX, picture_arrays, read_pictures
from hypbias.data.base import DatasetBundle
from hypbias.labelspace.spaceset import SpaceSet
from hypbias.metrics.rows import MetricRow
from hypbias.rundir import RunDir
from hypbias.train import distributed
from hypbias.train.components import ComponentContext, build_components
from hypbias.train.config import Config, fingerprint, load_config
from hypbias.train.loggers import EpochLogger, build_loggers, dispatch, require_packages
from hypbias.train.loop import (
    DeviceMode,
    batches,
    build_bundle,
    build_model,
    experiment_spaces,
    resolve_device,
)
from hypbias.train.run_files import write_run
from hypbias.train.state_dicts import load_weights, order_by_epoch, read_checkpoint_weights
from hypbias.train.tracker import Tracker


@dataclass
class Measured:
    """What one checkpoint gave: its position in epoch order, where its weights were found, the
    per-split confusion matrices (C, C), metric rows, its row of ``log.csv``, the components'
    arrays and the seconds its evaluation took."""

    position: int
    source: str
    confusion: dict[str, np.ndarray]
    rows: list[MetricRow]
    log: dict[str, Any]
    artifacts: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    seconds: float = 0.0


class SplitBatches:
    """Re-iterable evaluation batches of one split on ``device``, as the training loop makes them
    and as ``mode`` runs the model (:class:`~hypbias.train.loop.DeviceMode`)."""

    def __init__(self, split: Any, batch_size: int, device: torch.device, num_workers: int,
                 mode: DeviceMode) -> None:
        self.split, self.batch_size, self.device, self.num_workers = split, batch_size, device, num_workers
        self.mode = mode

    def __iter__(self):
        for x, y in batches(self.split, self.batch_size, device=self.device,
                            num_workers=self.num_workers):
            yield self.mode.inputs(x), y


def series_config(config: str | Path | None, model: str, overrides: Sequence[str] = (),
                  data_dir: str | Path | None = None) -> Config:
    """The config a checkpoint series is measured with: ``config`` (a file or packaged name; None:
    the embedded default) with ``model.name = model``, ``data.root = data_dir`` and ``overrides``.

    Neural collapse is on (``nc.every = 1``, on the config's ``nc.split`` when it is tracked, else
    on the first tracked split) unless the overrides set ``nc.every`` or ``nc.split`` themselves.
    """
    given = [f"model.name={model}", *([f"data.root={data_dir}"] if data_dir is not None else []),
             *overrides]
    base = load_config(config, given)
    defaults = []
    if not any(o.startswith("nc.every=") for o in overrides):
        defaults.append("nc.every=1")
    nc_split = base.components["nc"].split
    if nc_split not in base.track.splits and not any(o.startswith("nc.split=") for o in overrides):
        defaults.append(f"nc.split={base.track.splits[0]}")
    return load_config(config, [*defaults, *given]) if defaults else base


def analyse_checkpoint_series(config: Config, checkpoints: Sequence[Path], out: str | Path, *,
                              epochs: Sequence[int] | None = None, ema: bool = True,
                              strip: Sequence[str] = (), progress: bool = False,
                              overwrite: bool = False) -> RunDir | None:
    """Evaluate every checkpoint and write the run directory ``out`` (rank 0; None elsewhere).

    ``out`` becomes the series' run directory (:meth:`~hypbias.rundir.RunDir.start`) once the data,
    model and components are built: one holding an earlier run is refused unless ``overwrite``,
    whose files are then removed (a bad config leaves them in place).

    Parameters
    ----------
    config : the experiment whose data, label spaces, model and components the checkpoints are
        measured with (``model.name`` must build the network they were saved from)
    checkpoints : the files
    epochs : their epochs, in the order of ``checkpoints``; by default from the file names
    ema : prefer the moving average of the weights when a file holds one
    strip : key prefixes to remove (see :func:`~hypbias.train.state_dicts.read_checkpoint_weights`)
    progress : show a progress bar
    overwrite : replace an earlier run in ``out``
    """
    series = order_by_epoch(list(checkpoints), epochs)
    require_packages(config.log)
    bundle = build_bundle(config)
    spaces = experiment_spaces(config, bundle)
    world, rank = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0))
    device = resolve_device(config.train.device, config.origins)
    model = build_model(config.model, bundle, config.origins).to(device)
    mode = DeviceMode.of(config.train, device)
    mode.prepare(model)
    tracker = _tracker(config, bundle, spaces, model)
    fresh = tracker.state_dict()
    plain = config.as_dict()
    plain["train"] = {**plain["train"], "epochs": series[-1][0]}
    if rank == 0:
        RunDir(Path(out)).start(yaml.safe_dump(plain, sort_keys=False), fingerprint(plain),
                                overwrite=overwrite, resumable=False)
    mine = list(range(rank, len(series), world))
    measured = []
    loggers = build_loggers(config.log, out, epochs=series[-1][0], config=config.as_dict(),
                            progress=progress) if rank == 0 else []
    logged: list[dict[str, Any]] = []
    from tqdm.auto import tqdm

    for position in tqdm(mine, desc="checkpoints", disable=not progress or rank != 0):
        epoch, path = series[position]
        start = time.perf_counter()
        state, source = read_checkpoint_weights(path, ema=ema, strip=strip)
        load_weights(model, state, path)
        measured.append(_measure(model, tracker, fresh, config, bundle, position, epoch, source,
                                 device, mode))
        measured[-1].seconds = time.perf_counter() - start
        _log(loggers, logged, measured[-1], spaces)
    if world > 1:
        measured = _gather(measured)
    run = None
    if rank == 0:
        measured.sort(key=lambda m: m.position)
        for m in measured:
            if m.position % world:  # measured by another process
                _log(loggers, logged, m, spaces)
        for logger in loggers:
            logger.close()
        run = _write(RunDir(Path(out)), tracker, plain, series, measured, logged, ema)
    distributed.teardown()
    return run


def _log(loggers: list[EpochLogger], logged: list[dict[str, Any]], m: Measured,
         spaces: SpaceSet) -> None:
    """``logged`` (the rows of ``log.csv`` so far) gains the row of one measured checkpoint,
    ``seconds`` the evaluation time so far; the loggers get the checkpoint, its rows labelled with
    its epoch."""
    logged.append({**m.log, "seconds": (logged[-1]["seconds"] if logged else 0.0) + m.seconds})
    if not loggers:
        return
    epoch = int(m.log["epoch"])
    dispatch(loggers, epoch, logged, m.confusion, spaces, [{**r, "epoch": epoch} for r in m.rows])


def _tracker(config: Config, bundle: DatasetBundle, spaces: SpaceSet,
             model: torch.nn.Module) -> Tracker:
    """The series' tracker, bound to ``model``, whose components all measure its epoch 0: every
    checkpoint is measured by every component switched on (``manifold.every`` of any non-zero
    value means every one). It is built once per series, so the manifold analysis's samples and
    graph distances are drawn once, from the config's seed."""
    sections = dict(config.components)
    manifold = sections.get("manifold")
    if manifold is not None and manifold.every:
        sections["manifold"] = dataclasses.replace(manifold, every=1)
    context = ComponentContext(bundle, spaces, config.track.splits, config.seed, 0, config.origins)
    tracker = Tracker(bundle.num_classes, config.track.splits, build_components(sections, context),
                      hierarchy=bundle.hierarchy, spaces=spaces)
    tracker.bind(model)
    return tracker


@torch.no_grad()
def _measure(model: torch.nn.Module, tracker: Tracker, fresh: dict[str, Any], config: Config,
             bundle: DatasetBundle, position: int, epoch: int, source: str,
             device: torch.device, mode: DeviceMode) -> Measured:
    """One checkpoint (its weights in ``model``) measured as epoch 0 of ``tracker``, emptied first
    to ``fresh`` (its state before any epoch: no confusion matrix, row or picture recorded), the
    model run as the training loop evaluates it (``mode``)."""
    tracker.load_state_dict(fresh)
    with mode.autocast():
        for split in tracker.splits:
            data = SplitBatches(bundle.split(split), config.track.eval_batch_size, device,
                                config.train.num_workers, mode)
            tracker.evaluate(model, data, split)
    tracker.end_epoch(0, model)
    rows = [{**row, "epoch": position} for row in tracker.rows]
    log = {"epoch": epoch, **{k: v for k, v in tracker.log[-1].items() if k not in ("epoch", "seconds")}}
    artifacts = {c.name: arrays for c in tracker.components if (arrays := c.artifacts())}
    return Measured(position, source, {s: tracker.confusion(s)[0] for s in tracker.splits}, rows,
                    log, artifacts)


def _series_artifacts(measured: list[Measured], epochs: list[int]) -> dict[str, dict[str, np.ndarray]]:
    """The last checkpoint's arrays, with the manifold pictures of every checkpoint, each labelled
    with the epoch it stands for (every checkpoint is measured as epoch 0 of a fresh tracker)."""
    out = {name: dict(arrays) for name, arrays in measured[-1].artifacts.items()}
    pictures = [dataclasses.replace(pic, epoch=epoch) for m, epoch in zip(measured, epochs, strict=True)
                for by_epoch in read_pictures(m.artifacts.get("manifold", {})).values()
                for pic in by_epoch.values()]
    if pictures:
        kept = {k: v for k, v in out["manifold"].items() if not k.startswith(f"{PREFIX}:")}
        out["manifold"] = {**kept, **picture_arrays(pictures)}
    return out


def _gather(measured: list[Measured]) -> list[Measured]:
    """Every process's results on rank 0 (the process group is joined for this only)."""
    import torch.distributed as dist

    distributed.setup()
    gathered: list[list[Measured]] | None = [None] * distributed.world_size() \
        if distributed.rank() == 0 else None  # type: ignore[list-item]
    dist.gather_object(measured, gathered, dst=0)
    return [m for part in gathered for m in part] if gathered is not None else []


def _write(run: RunDir, tracker: Tracker, config: dict[str, Any], series: list[tuple[int, Path]],
           measured: list[Measured], logged: list[dict[str, Any]], ema: bool) -> RunDir:
    """The run directory: the checkpoints' epochs label the rows; ``checkpoints.json`` says which
    file and which weights in it each epoch is. ``tracker`` is the series' bound tracker, whose
    components' settings and model's device ``environment.json`` records; ``config`` the plain
    config of ``config.yaml``; ``logged`` the rows of ``log.csv`` as the loggers got them
    (:func:`_log`)."""
    tracker.load_state_dict({
        "epochs": list(range(len(measured))),
        "history": {s: [m.confusion[s] for m in measured] for s in tracker.splits},
        "rows": [row for m in measured for row in m.rows],
        "log": sorted(logged, key=lambda row: row["epoch"]),
        "components": {},
    })
    write_run(run, tracker, config=config, epochs=[series[m.position][0] for m in measured],
              artifacts=_series_artifacts(measured, [series[m.position][0] for m in measured]),
              environment_extra={"world_size": int(os.environ.get("WORLD_SIZE", 1)),
                                 "command": sys.argv})
    run.write_json("checkpoints.json", {
        "ema_preferred": ema,
        "checkpoints": [{"epoch": series[m.position][0], "file": str(series[m.position][1]),
                         "weights": m.source} for m in measured],
    })
    return run


__all__ = ["Measured", "SplitBatches", "analyse_checkpoint_series", "series_config"]
