"""What the experiment commands share: a run directory and its checked config, the context of the
tracker components, and the rewriting of a run's derived tables with new rows.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from hypbias.analysis.space_accuracy import DERIVED_METRICS
from hypbias.data.base import DatasetBundle
from hypbias.errors import DataError
from hypbias.labelspace import SpaceSet
from hypbias.metrics.rows import MetricRow
from hypbias.rundir import RunDir
from hypbias.train.components import ComponentContext
from hypbias.train.config import Config, parse_config
from hypbias.train.config.schema import Origins
from hypbias.train.run_files import analyse_run


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


def replace_rows(run: RunDir, config: Config, replaced: Callable[[str], bool],
                 rows: list[MetricRow]) -> None:
    """Rewrite ``metrics`` and ``summary.json`` with ``rows`` in place of the earlier rows whose
    metric name ``replaced`` accepts; the label-space metrics are derived again from
    ``confusion.npz`` and every other row is kept. Each file is replaced atomically."""
    old = run.metrics
    kept = old[~old.metric.isin(DERIVED_METRICS) & ~old.metric.map(replaced).astype(bool)]
    analyse_run(run, config, run.spaces, [*kept.to_dict("records"), *rows])
    run.reload()


__all__ = ["component_context", "open_run", "replace_rows"]
