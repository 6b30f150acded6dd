"""Experiments: ``hypbias run`` (train, analyse, report) and ``hypbias analyze`` (saved checkpoints).

A run is checked and built in full (config, dataset, label spaces, components, model, optimiser)
before its directory is touched; the directory then becomes the run's (:meth:`RunDir.start`), an
earlier run in it replaced only with ``overwrite``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from hypbias.analysis.findings import run_findings
from hypbias.analysis.space_accuracy import DERIVED_METRICS, convergence_summary, space_metrics
from hypbias.data.base import DatasetBundle
from hypbias.errors import ConfigError, DataError, TrainingDiverged, TrainingInterrupted
from hypbias.hierarchy.files import write_hierarchy
from hypbias.labelspace import SpaceSet, build_spaces
from hypbias.metrics.rows import MetricRow, rows_frame
from hypbias.rundir import RunDir, environment, main_split
from hypbias.train import distributed
from hypbias.train.checkpoint import (
    check_config,
    checkpoints,
    load_evaluated_weights,
    read_checkpoint,
    resume_point,
)
from hypbias.train.components import ComponentContext, build_components
from hypbias.train.components.manifold import analyse_model, manifold_inputs, resolve_layers
from hypbias.train.config import (
    Config,
    apply_overrides,
    as_config,
    differing_keys,
    fingerprint,
    parse_config,
)
from hypbias.train.config.files import parse_override
from hypbias.train.config.schema import Origins
from hypbias.train.loop import (
    Training,
    TrainResult,
    build_bundle,
    build_model,
    prepare_training,
    run_training,
)

MANIFOLD_METRICS = ("ccc_cover", "ccc_class_means", "ccc_direct", "self_cover", "mutual_cover",
                    "probe_accuracy")
"""The rows ``hypbias analyze`` replaces."""

ANALYSIS_SECTIONS = ("manifold",)
"""The sections ``hypbias analyze --set`` may change: the only ones the analysis reads that do not
describe how the checkpoints were made."""


def experiment_spaces(config: Config, bundle: DatasetBundle) -> SpaceSet:
    """The configured hypernym spaces and random draws for a dataset; a ConfigError naming
    ``spaces.hypernyms`` when an entry does not fit the dataset's hierarchy."""
    sp, h = config.spaces, bundle.hierarchy
    for spec in sp.hypernyms:
        if isinstance(spec, int) and spec >= h.num_classes:
            raise config.error("spaces.hypernyms", f"entry {spec} must be below the {h.num_classes} "
                               "classes (a space of as many groups as classes is the fine space H)")
        if isinstance(spec, str) and spec.startswith("level:") and int(spec[6:]) >= h.height:
            raise config.error("spaces.hypernyms", f"entry {spec!r} is as deep as the tree or deeper "
                               f"(height {h.height}): levels 1 to {h.height - 1} cut hypernyms")
    try:
        return build_spaces(h, list(sp.hypernyms), sp.random_draws, sp.seed, named=bundle.spaces)
    except ValueError as err:
        raise config.error("spaces.hypernyms", f"does not fit the dataset: {err}") from None


def component_context(config: Config, bundle: DatasetBundle, spaces: SpaceSet,
                      progress: bool = False) -> ComponentContext:
    """What the tracker components read besides their own config sections."""
    return ComponentContext(bundle, spaces, config.track.splits, config.seed, config.train.epochs,
                            config.origins, progress and sys.stderr.isatty())


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
    training = prepare_training(config, bundle=bundle, components=components,
                                spaces=spaces.hypernyms)
    return PreparedRun(config, bundle, spaces, training)


def open_run(run_dir: str | Path) -> tuple[RunDir, Config]:
    """A run directory and its ``config.yaml`` checked against the schema (errors name the file)."""
    run = RunDir(Path(run_dir))
    if not run.path.is_dir():
        raise DataError(f"{run.path}: no such run directory")
    return run, parse_config(run.config, Origins(str(run.file("config.yaml"))))


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
                              restore=restore)
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
    tracker = result.tracker
    run.write_json("environment.json", {
        **environment(str(next(result.model.parameters()).device)),
        "world_size": distributed.world_size(),
        "components": {c.name: c.settings() for c in tracker.components if c.settings()},
    })
    write_hierarchy(prepared.bundle.hierarchy, run.file("hierarchy.json"))
    run.write_spaces(prepared.spaces)
    run.write_npz("confusion.npz", {s: tracker.confusion(s) for s in tracker.splits})
    run.write_table("log", pd.DataFrame(result.log))
    if result.diverged is None:  # the weights of a diverged run are not finite
        run.write_torch("model.pt", result.model.state_dict())
    for comp in tracker.components:
        if arrays := comp.artifacts():
            run.write_npz(f"{comp.name}.npz", arrays)
    analyse_run(run, prepared.config, prepared.spaces, tracker.rows,
                diverged=None if result.diverged is None else result.diverged.describe())
    run.write_json("timing.json", {"train_seconds": result.seconds,
                                   "total_seconds_before_report": seconds,
                                   "epochs": len(result.log) - 1})


def analyse_run(run: RunDir, config: Config, spaces: SpaceSet, extra_rows: list[MetricRow],
                diverged: str | None = None) -> pd.DataFrame:
    """Derive every label-space metric from ``confusion.npz``; write metrics and summary."""
    frames = [space_metrics(m, spaces, split) for split, m in run.confusion().items()]
    if extra_rows:
        frames.append(rows_frame(extra_rows))
    metrics = pd.concat(frames, ignore_index=True)
    metrics["layer"] = metrics["layer"].fillna("").astype(str)
    run.write_table("metrics", metrics)
    summary = convergence_summary(metrics, spaces, q=config.spaces.q)
    final = metrics[(metrics.metric == "accuracy") & (metrics.layer == "")]
    last = final[final.epoch == final.epoch.max()]
    summary["final_accuracy"] = {
        split: dict(zip(frame.space, frame.value.round(4), strict=True))
        for split, frame in last[~last.space.str.contains("#")].groupby("split")
    }
    summary["findings"] = run_findings(metrics, summary, spaces, main_split(config.track.splits),
                                       config.report.nc_threshold)
    if diverged is not None:
        summary["diverged"] = diverged
    run.write_json("summary.json", summary)
    return metrics


def analyze_checkpoints(run_dir: str | Path, overrides: Sequence[str] = (), *,
                        progress: bool = True, report: bool = True) -> RunDir:
    """Layer-wise manifold analysis of every saved checkpoint of a run (``hypbias analyze``).

    The samples are drawn from the run's seed exactly as the tracker draws them, so the rows agree
    with those tracked during training. ``overrides`` may change ``manifold.*`` only; a checkpoint
    made with another config than the run's is refused. Earlier manifold rows are replaced; the
    rest of ``metrics.csv`` is kept and the accuracy metrics are re-derived from ``confusion.npz``.
    """
    from tqdm.auto import tqdm

    for item in overrides:
        dotted, _ = parse_override(item)
        if dotted.split(".")[0] not in ANALYSIS_SECTIONS:
            raise ConfigError(f"--set {item}: analyze reads only the manifold.* settings; the others "
                              "describe how the checkpoints were made")
    run, config = open_run(run_dir)
    analysed = apply_overrides(config, overrides, source=str(run.file("config.yaml")))
    found = checkpoints(run.checkpoints)
    if not found:
        raise DataError(f"{run.checkpoints}: no epoch_XXX.pt checkpoints to analyse "
                        "(train the run with --set train.save_every=K)")
    old, spaces = run.metrics, run.spaces
    bundle = build_bundle(analysed)
    ctx = component_context(analysed, bundle, spaces, progress)
    mf = analysed.components["manifold"]
    inputs = manifold_inputs(mf, ctx)
    model = build_model(analysed.model, bundle, analysed.origins)
    layers = resolve_layers(mf, model, ctx)
    rows: list[MetricRow] = []
    for path in tqdm(found, desc="checkpoints", disable=not progress):
        payload = read_checkpoint(path)
        check_config(payload, path, config)
        epoch = load_evaluated_weights(payload, model)
        rows.extend(analyse_model(model, layers, inputs, epoch, progress=progress))
    kept = old[~old.metric.isin(DERIVED_METRICS) & ~old.metric.isin(MANIFOLD_METRICS)]
    analyse_run(run, config, spaces, [*kept.to_dict("records"), *rows])
    run.write_json("analysis.json", {"layers": layers, "checkpoints": [p.name for p in found],
                                     "settings": inputs.settings.as_dict(), "manifold": mf.as_dict()})
    run.reload()
    if report:
        from hypbias.report import write_report

        write_report(run)
    return run


__all__ = ["analyse_run", "analyze_checkpoints", "component_context", "config_text",
           "experiment_spaces", "open_run", "prepare_run", "run_experiment"]
