"""``hypbias run``: train a configured experiment and write its run directory and report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from hypbias.analysis.label_spaces import (
    COLUMNS,
    DERIVED_METRICS,
    SpaceSet,
    build_spaces,
    convergence_finding,
    convergence_summary,
    space_metrics,
)
from hypbias.data.base import DatasetBundle
from hypbias.errors import ConfigError
from hypbias.hierarchy.files import write_hierarchy
from hypbias.rundir import RunDir, environment
from hypbias.train import distributed
from hypbias.train.components import build_components
from hypbias.train.loop import build_bundle, train


def experiment_spaces(config: dict[str, Any], bundle: DatasetBundle) -> SpaceSet:
    """The configured hypernym spaces and random draws for a dataset."""
    sp = config["spaces"]
    try:
        return build_spaces(bundle.hierarchy, sp["hypernyms"], int(sp["random_draws"]),
                            int(sp["seed"]), named=bundle.spaces)
    except ValueError as err:
        raise ConfigError(f"{config.get('config_file')}: {err}") from None


def analyse_run(run: RunDir, config: dict[str, Any], spaces: SpaceSet,
                extra_rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Derive every label-space metric from ``confusion.npz``; write metrics and summary."""
    frames = [space_metrics(m, spaces, split) for split, m in run.confusion().items()]
    if extra_rows:
        frames.append(pd.DataFrame(extra_rows, columns=COLUMNS))
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
    summary["findings"] = [*convergence_finding(summary, spaces, split=_main_split(config)),
                           *component_findings(metrics, config)]
    run.write_json("summary.json", summary)
    return metrics


def component_findings(metrics: pd.DataFrame, config: dict[str, Any]) -> list[str]:
    """Sentences on neural collapse and manifold alignment, when the run measured them."""
    from hypbias.report.figures_collapse import collapse_finding
    from hypbias.report.figures_manifold import manifold_finding

    found = []
    if metrics.metric.eq("nc1").any():
        found.append(collapse_finding(metrics, float(config["report"]["nc_threshold"])))
    if metrics.metric.eq("ccc_cover").any():
        found.append(manifold_finding(metrics))
    return [f for f in found if f]


def _main_split(config: dict[str, Any]) -> str:
    splits = list(config["track"]["splits"])
    return "val" if "val" in splits else splits[0]


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
    components = build_components(config, bundle, spaces)
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
    run.write_npz("spaces.npz", spaces.to_arrays())
    run.write_json("spaces.json", spaces.layout())
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


def load_spaces(run: RunDir) -> SpaceSet:
    """The SpaceSet a run was analysed with."""
    import json

    layout = json.loads(run.require("spaces.json").read_text(encoding="utf-8"))
    return SpaceSet.from_arrays(run.space_arrays(), layout)


__all__ = ["analyse_run", "experiment_spaces", "load_spaces", "run_experiment"]


MANIFOLD_METRICS = ("ccc_cover", "ccc_class_means", "ccc_direct", "self_cover", "mutual_cover",
                    "probe_accuracy")


def analyze_checkpoints(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
                        progress: bool = True, report: bool = True) -> RunDir:
    """Layer-wise manifold analysis of every saved checkpoint of a run (``hypbias analyze``).

    The samples are drawn from the run's seed exactly as the tracker draws them, so the rows agree
    with those tracked during training. Earlier manifold rows are replaced; the rest of
    ``metrics.csv`` is kept and the accuracy metrics are re-derived from ``confusion.npz``.
    """
    import torch
    from tqdm.auto import tqdm

    from hypbias.errors import DataError
    from hypbias.train.checkpoint import checkpoints
    from hypbias.train.config import apply_overrides
    from hypbias.train.ema import ModelEMA
    from hypbias.train.loop import build_model
    from hypbias.train.manifold_tracking import analyse_model, manifold_inputs, resolve_layers

    run = RunDir(Path(run_dir))
    config = apply_overrides(run.config, overrides)
    found = checkpoints(run.checkpoints)
    if not found:
        raise DataError(f"{run.checkpoints}: no epoch_XXX.pt checkpoints to analyse "
                        "(train the run with --set train.save_every=K)")
    bundle = build_bundle(config)
    spaces = load_spaces(run)
    inputs = manifold_inputs(config, bundle, spaces)
    model = build_model(dict(config["model"]), bundle)
    layers = resolve_layers(config, model)
    rows: list[dict[str, Any]] = []
    for path in tqdm(found, desc="checkpoints", disable=not progress):
        payload = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(payload["model"])
        if payload.get("ema") is not None:  # what the tracker evaluated
            ema = ModelEMA(model, float(config["train"]["ema"]))
            ema.load_state_dict(payload["ema"])
            ema.copy_to(model)
        rows.extend(analyse_model(model, layers, inputs, int(payload["epoch"]), progress=progress))
    old = run.metrics
    kept = old[~old.metric.isin(DERIVED_METRICS) & ~old.metric.isin(MANIFOLD_METRICS)]
    analyse_run(run, config, spaces, [*kept.to_dict("records"), *rows])
    run.write_json("analysis.json", {"layers": layers, "checkpoints": [p.name for p in found],
                                     "settings": inputs.settings.as_dict(), "manifold": config["manifold"]})
    run.reload()
    if report:
        from hypbias.report import write_report

        write_report(run)
    return run
