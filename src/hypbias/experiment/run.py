"""``hypbias run``: train, analyse, report.

A run is checked and built in full (config, dataset, label spaces, components, model, optimiser)
before its directory is touched; the directory then becomes the run's (:meth:`RunDir.start`), an
earlier run in it replaced only with ``overwrite``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hypbias.data.base import DatasetBundle
from hypbias.errors import ConfigError, DataError, TrainingDiverged, TrainingInterrupted
from hypbias.experiment.base import component_context, open_run
from hypbias.labelspace import SpaceSet
from hypbias.rundir import RunDir
from hypbias.train import distributed
from hypbias.train.checkpoint import checkpoints, resume_point
from hypbias.train.components import build_components
from hypbias.train.config import Config, as_config, differing_keys, fingerprint
from hypbias.train.loop import (
    Training,
    TrainResult,
    build_bundle,
    experiment_spaces,
    prepare_training,
    run_training,
)
from hypbias.train.run_files import analyse_run, write_tracked


@dataclass
class PreparedRun:
    """A run built from its config, before anything is written."""

    config: Config
    bundle: DatasetBundle
    spaces: SpaceSet
    training: Training


def prepare_run(config: Config, progress: bool = True) -> PreparedRun:
    """Build the dataset, label spaces, tracker components and everything the loop needs; every
    bad value of the config is found here."""
    bundle = build_bundle(config)
    spaces = experiment_spaces(config, bundle)
    components = build_components(config.components,
                                  component_context(config, bundle, spaces, progress))
    training = prepare_training(config, bundle=bundle, components=components, spaces=spaces)
    return PreparedRun(config, bundle, spaces, training)


def run_experiment(config: Config | Mapping[str, Any], out: str | Path, *, progress: bool = True,
                   report: bool = True, resume: bool = False, overwrite: bool = False) -> RunDir:
    """Train, then write the run directory (and ``report.html`` unless ``report=False``).

    Parameters
    ----------
    config : a checked config (:func:`~hypbias.train.config.load_config`) or its plain form
    out : the run directory; one holding an earlier run is refused unless ``overwrite``
    resume : continue the unfinished run in ``out`` (whose ``config.yaml`` must be ``config``)
        from its newest checkpoint, or from the start when it has none

    Raises
    ------
    TrainingDiverged
        After writing what was measured before the epoch whose loss or outputs were not finite.
    TrainingInterrupted
        On Ctrl-C, saying how to continue.

    Under ``torchrun`` every process trains and only rank 0 writes files.
    """
    config = as_config(config)
    run = RunDir(Path(out))
    distributed.setup()
    restore, pending = _resume_state(run, config) if resume else (None, False)
    start = time.perf_counter()
    prepared = prepare_run(config, progress)
    if distributed.rank() == 0:
        if not resume:
            run.start(config_text(config), fingerprint(config), overwrite=overwrite)
        elif pending:
            run.finish_overwrite()
        else:
            run.drop_overwrite_marker()
    distributed.barrier()
    try:
        result = run_training(prepared.training, progress=progress, checkpoint_dir=run.checkpoints,
                              restore=restore, run_dir=run.path)
    except TrainingInterrupted as err:
        raise TrainingInterrupted(err.epoch, interrupted(run, config, err.epoch)) from None
    if distributed.rank() != 0:
        return run
    if result.tracker.epochs:
        write_outputs(run, prepared, result, time.perf_counter() - start)
        if report:
            from hypbias.report import write_report

            write_report(run)
    if result.diverged is not None:
        measured = result.tracker.epochs
        kept = ("nothing was measured" if not measured else f"epoch 0 is kept in {run.path}"
                if len(measured) == 1 else f"epochs 0-{measured[-1]} are kept in {run.path}")
        raise TrainingDiverged(f"{run.path}: {result.diverged.describe()}; {kept}")
    return run


def config_text(config: Config) -> str:
    """``config.yaml``: the resolved config."""
    return yaml.safe_dump(config.as_dict(), sort_keys=False)


def _resume_state(run: RunDir, config: Config) -> tuple[dict[str, Any] | None, bool]:
    """(checkpoint payload to continue from or None, whether a killed ``--overwrite`` is pending)."""
    _, saved = open_run(run.path)
    if fingerprint(saved) != fingerprint(config):
        raise ConfigError(f"{run.file('config.yaml')}: the run was made with another config "
                          f"({'; '.join(differing_keys(saved, config))})")
    if run.is_complete:
        raise DataError(f"{run.path}: the run is complete, there is nothing to resume "
                        f"('hypbias report {run.path}' redraws its report)")
    pending = run.pending_overwrite(fingerprint(config))
    return (None if pending else resume_point(run.checkpoints, config)), pending


def interrupted(run: RunDir, config: Config, epoch: int) -> str:
    """The one line printed on Ctrl-C."""
    if config.train.save_every > 0 or checkpoints(run.checkpoints):
        return f"interrupted at epoch {epoch}; continue with: hypbias run --resume {run.path}"
    return (f"interrupted at epoch {epoch}; no checkpoint was saved (train.save_every is 0): "
            f"'hypbias run --resume {run.path}' trains again from epoch 0")


def write_outputs(run: RunDir, prepared: PreparedRun, result: TrainResult, seconds: float) -> None:
    """Every file of the run directory but the report, from a finished (or diverged) training."""
    diverged = None if result.diverged is None else result.diverged.describe()
    # the weights of a diverged run are not finite: no model.pt then
    write_tracked(run, result.tracker, log=result.log,
                  model_state=result.model.state_dict() if diverged is None else None)
    analyse_run(run, prepared.config, prepared.spaces, result.tracker.rows, diverged=diverged)
    run.write_json("timing.json", {"train_seconds": result.seconds,
                                   "total_seconds_before_report": seconds,
                                   "epochs": len(result.log) - 1})


__all__ = ["PreparedRun", "config_text", "prepare_run", "run_experiment", "write_outputs"]
