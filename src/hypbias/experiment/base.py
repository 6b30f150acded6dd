"""What the experiment commands share: a run directory's config and label spaces, the context of
the tracker components, and the derived tables (``metrics``, ``summary.json``) of a run directory.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from hypbias.analysis.findings import run_findings
from hypbias.analysis.space_accuracy import DERIVED_METRICS, convergence_summary, space_metrics
from hypbias.data.base import DatasetBundle
from hypbias.errors import DataError
from hypbias.labelspace import SpaceSet, build_spaces
from hypbias.metrics.rows import MetricRow, rows_frame
from hypbias.rundir import RunDir, main_split
from hypbias.train.components import ComponentContext
from hypbias.train.config import Config, parse_config
from hypbias.train.config.schema import Origins


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


def open_run(run_dir: str | Path) -> tuple[RunDir, Config]:
    """A run directory and its ``config.yaml`` checked against the schema (errors name the file)."""
    run = RunDir(Path(run_dir))
    if not run.path.is_dir():
        raise DataError(f"{run.path}: no such run directory")
    return run, parse_config(run.config, Origins(str(run.file("config.yaml"))))


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


def replace_rows(run: RunDir, config: Config, replaced: Callable[[str], bool],
                 rows: list[MetricRow]) -> None:
    """Rewrite ``metrics`` and ``summary.json`` with ``rows`` in place of the earlier rows whose
    metric name ``replaced`` accepts; the label-space metrics are derived again from
    ``confusion.npz`` and every other row is kept. Each file is replaced atomically."""
    old = run.metrics
    kept = old[~old.metric.isin(DERIVED_METRICS) & ~old.metric.map(replaced).astype(bool)]
    analyse_run(run, config, run.spaces, [*kept.to_dict("records"), *rows])
    run.reload()


__all__ = ["analyse_run", "component_context", "experiment_spaces", "open_run", "replace_rows"]
