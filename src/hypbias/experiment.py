"""Experiments: ``hypbias run`` (train, analyse, report) and ``hypbias analyze`` (saved checkpoints)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from hypbias.analysis.findings import run_findings
from hypbias.analysis.space_accuracy import DERIVED_METRICS, convergence_summary, space_metrics
from hypbias.data.base import DatasetBundle
from hypbias.errors import ConfigError, DataError
from hypbias.hierarchy.files import write_hierarchy
from hypbias.labelspace import SpaceSet, build_spaces
from hypbias.metrics.rows import MetricRow, rows_frame
from hypbias.rundir import RunDir, environment, main_split
from hypbias.train import distributed
from hypbias.train.checkpoint import checkpoints, load_evaluated_weights
from hypbias.train.components import ComponentContext, build_components
from hypbias.train.components.manifold import analyse_model, manifold_inputs, resolve_layers
from hypbias.train.config import apply_overrides
from hypbias.train.loop import build_bundle, build_model, train

MANIFOLD_METRICS = ("ccc_cover", "ccc_class_means", "ccc_direct", "self_cover", "mutual_cover",
                    "probe_accuracy")
"""The rows ``hypbias analyze`` replaces."""


def experiment_spaces(config: dict[str, Any], bundle: DatasetBundle) -> SpaceSet:
    """The configured hypernym spaces and random draws for a dataset."""
    sp = config["spaces"]
    try:
        return build_spaces(bundle.hierarchy, sp["hypernyms"], int(sp["random_draws"]),
                            int(sp["seed"]), named=bundle.spaces)
    except ValueError as err:
        raise ConfigError(f"{config.get('config_file')}: {err}") from None


def component_context(config: dict[str, Any], bundle: DatasetBundle, spaces: SpaceSet,
                      progress: bool = False) -> ComponentContext:
    """What the tracker components read besides their own config sections."""
    return ComponentContext(bundle, spaces, tuple(config["track"]["splits"]), int(config["seed"]),
                            int(config["train"]["epochs"]), str(config.get("config_file")),
                            progress and sys.stderr.isatty())


def analyse_run(run: RunDir, config: dict[str, Any], spaces: SpaceSet,
                extra_rows: list[MetricRow]) -> pd.DataFrame:
    """Derive every label-space metric from ``confusion.npz``; write metrics and summary."""
    frames = [space_metrics(m, spaces, split) for split, m in run.confusion().items()]
    if extra_rows:
        frames.append(rows_frame(extra_rows))
    metrics = pd.concat(frames, ignore_index=True)
    metrics["layer"] = metrics["layer"].fillna("").astype(str)
    run.write_table("metrics", metrics)
    summary = convergence_summary(metrics, spaces, q=float(config["spaces"]["q"]))
    final = metrics[(metrics.metric == "accuracy") & (metrics.layer == "")]
    last = final[final.epoch == final.epoch.max()]
    summary["final_accuracy"] = {
        split: dict(zip(frame.space, frame.value.round(4), strict=True))
        for split, frame in last[~last.space.str.contains("#")].groupby("split")
    }
    summary["findings"] = run_findings(metrics, summary, spaces,
                                       main_split(config["track"]["splits"]),
                                       float(config["report"]["nc_threshold"]))
    run.write_json("summary.json", summary)
    return metrics


def run_experiment(config: dict[str, Any], out: str | Path, *, progress: bool = True,
                   report: bool = True, resume: bool = False) -> RunDir:
    """Train, then write the run directory (and ``report.html`` unless ``report=False``).

    With ``resume=True`` training continues from the newest checkpoint under ``out/checkpoints``.
    Under ``torchrun`` every process trains and only rank 0 writes files.
    """
    run = RunDir(Path(out))
    distributed.setup()
    if distributed.rank() == 0:
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_yaml("config.yaml", config)
    start = time.perf_counter()
    bundle = build_bundle(config)
    spaces = experiment_spaces(config, bundle)
    components = build_components(config, component_context(config, bundle, spaces, progress))
    result = train(config, bundle=bundle, components=components, progress=progress,
                   checkpoint_dir=run.checkpoints, resume=resume, spaces=spaces.hypernyms)
    if distributed.rank() != 0:
        return run
    run.write_json("environment.json", {
        **environment(str(next(result.model.parameters()).device)),
        "world_size": distributed.world_size(),
        "components": {c.name: c.settings() for c in result.tracker.components if c.settings()},
    })
    write_hierarchy(bundle.hierarchy, run.file("hierarchy.json"))
    run.write_spaces(spaces)
    run.write_npz("confusion.npz", {s: result.tracker.confusion(s) for s in result.tracker.splits})
    run.write_table("log", pd.DataFrame(result.log))
    run.write_torch("model.pt", result.model.state_dict())
    for comp in result.tracker.components:
        if arrays := comp.artifacts():
            run.write_npz(f"{comp.name}.npz", arrays)
    analyse_run(run, config, spaces, result.tracker.rows)
    run.write_json("timing.json", {"train_seconds": result.seconds,
                                   "total_seconds_before_report": time.perf_counter() - start,
                                   "epochs": len(result.log) - 1})
    if report:
        from hypbias.report import write_report

        write_report(run)
    return run


def analyze_checkpoints(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
                        progress: bool = True, report: bool = True) -> RunDir:
    """Layer-wise manifold analysis of every saved checkpoint of a run (``hypbias analyze``).

    The samples are drawn from the run's seed exactly as the tracker draws them, so the rows agree
    with those tracked during training. Earlier manifold rows are replaced; the rest of
    ``metrics.csv`` is kept and the accuracy metrics are re-derived from ``confusion.npz``.
    """
    from tqdm.auto import tqdm

    run = RunDir(Path(run_dir))
    config = apply_overrides(run.config, overrides)
    found = checkpoints(run.checkpoints)
    if not found:
        raise DataError(f"{run.checkpoints}: no epoch_XXX.pt checkpoints to analyse "
                        "(train the run with --set train.save_every=K)")
    bundle = build_bundle(config)
    ctx = component_context(config, bundle, run.spaces, progress)
    inputs = manifold_inputs(config["manifold"], ctx)
    model = build_model(dict(config["model"]), bundle)
    layers = resolve_layers(config["manifold"], model, ctx)
    rows: list[MetricRow] = []
    for path in tqdm(found, desc="checkpoints", disable=not progress):
        epoch = load_evaluated_weights(path, model)
        rows.extend(analyse_model(model, layers, inputs, epoch, progress=progress))
    old = run.metrics
    kept = old[~old.metric.isin(DERIVED_METRICS) & ~old.metric.isin(MANIFOLD_METRICS)]
    analyse_run(run, config, run.spaces, [*kept.to_dict("records"), *rows])
    run.write_json("analysis.json", {"layers": layers, "checkpoints": [p.name for p in found],
                                     "settings": inputs.settings.as_dict(), "manifold": config["manifold"]})
    run.reload()
    if report:
        from hypbias.report import write_report

        write_report(run)
    return run


__all__ = ["analyse_run", "analyze_checkpoints", "component_context", "experiment_spaces",
           "run_experiment"]
