"""Several runs side by side: ``comparison.csv``, ``comparison.txt`` and ``comparison.html``.

Written into the output folder (default: ``compare/`` beside the first run directory):

* ``comparison.csv``: one row per quantity (τ_q, final accuracy per label space, final mistake
  severity and hierarchical top-k distances, final NC metrics per space), one column per run, and
  one ``Δ <run>`` column per run against the first (the baseline); a value a run measured as NaN
  (or did not measure) reads ``n/a``;
* ``comparison.txt``: the one-sentence finding;
* ``comparison.html``: the table, the finding and the overlaid curves, one self-contained page
  (figures embedded, also saved under ``figures/``), with the paper's cross-architecture items:
  Table 1 (final accuracy per space, one column per run), Fig. 1a (relative accuracy per space,
  one line per run) and Fig. 4 (τ_q against the number of superclasses, one line per run).

Runs are compared only when they classify the same classes (their ``hierarchy.json``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hypbias.analysis.findings import comparison_finding
from hypbias.analysis.metric_names import topk_ks
from hypbias.analysis.tables import space_curves
from hypbias.errors import ConfigError, DataError
from hypbias.io import atomic_write_text
from hypbias.labelspace.spaceset import is_random_space, space_order
from hypbias.metrics.hierarchical import topk_name
from hypbias.metrics.rows import COLUMNS
from hypbias.report import figures_compare as FC
from hypbias.report.html import Section, frame_table, render_page, write_page
from hypbias.rundir import RunDir, main_split

NA = "n/a"
"""How the table shows a value that is NaN or was not measured."""


@dataclass
class Run:
    """One run directory opened for comparison."""

    name: str
    run: RunDir
    metrics: pd.DataFrame
    summary: dict[str, Any]


def load_run(path: str | Path, name: str) -> Run:
    """Open a run directory; DataError naming the path when it or a required file is missing."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such run directory")
    run = RunDir(path)
    metrics = run.metrics
    missing = [c for c in COLUMNS if c not in metrics.columns]
    if missing:
        raise DataError(f"{path / 'metrics.csv'}: missing column {missing[0]!r}")
    return Run(name, run, metrics, run.summary)


def check_same_classes(runs: Sequence[Run]) -> None:
    """Refuse runs whose classes (``hierarchy.json``) differ from the first run's."""
    first = runs[0].run.hierarchy.classes
    for r in runs[1:]:
        classes = r.run.hierarchy.classes
        if classes != first:
            extra = sorted(set(classes) - set(first)) or sorted(set(first) - set(classes))
            what = (f"class {extra[0]!r} is in one run only" if extra
                    else "the classes are in another order")
            raise DataError(f"{r.run.file('hierarchy.json')}: its {len(classes)} classes differ from "
                            f"the {len(first)} of {runs[0].run.path} ({what}); compare runs of one "
                            "dataset")


def compare_runs(run_dirs: Sequence[str | Path], out: str | Path | None = None,
                 names: Sequence[str] | None = None) -> Path:
    """Write ``comparison.csv``, ``comparison.txt`` (the finding) and ``comparison.html``.

    Parameters
    ----------
    run_dirs : two or more run directories; the first is the baseline.
    out : output folder; default ``<parent of the first run>/compare``.
    names : one label per run; default the directory names (the paths if those repeat).

    Returns
    -------
    The path of ``comparison.html``.
    """
    runs = open_runs(run_dirs, names)
    out = Path(out) if out is not None else Path(run_dirs[0]).parent / "compare"
    split = common_split(runs)
    table = comparison_table(runs, split)
    sentence = finding(runs, split)
    atomic_write_text(out / "comparison.csv", table.round(6).to_csv(index=False, na_rep=NA))
    atomic_write_text(out / "comparison.txt", sentence + "\n")
    intro = [f"{r.name}: {r.run.path} (loss: {_loss(r.run)})" for r in runs]
    page = out / "comparison.html"
    write_page(page, render_page("hypbias comparison", intro, page_sections(runs, split, table, sentence),
                                 out / "figures"))
    return page


def open_runs(run_dirs: Sequence[str | Path], names: Sequence[str] | None) -> list[Run]:
    """The runs to compare, named (default: directory names, or paths when those repeat), checked
    to be two or more with the same classes."""
    if len(run_dirs) < 2:
        raise ConfigError(f"compare needs at least two run directories. Got {len(run_dirs)}.")
    if names is None:
        names = [Path(p).name for p in run_dirs]
        if len(set(names)) < len(names):
            names = [str(p) for p in run_dirs]
    if len(names) != len(run_dirs) or len(set(names)) != len(names):
        raise ConfigError(f"--names must give {len(run_dirs)} distinct names (one per run "
                          f"directory). Got {list(names)!r} instead.")
    runs = [load_run(p, n) for p, n in zip(run_dirs, names, strict=True)]
    check_same_classes(runs)
    return runs


def page_sections(runs: Sequence[Run], split: str, table: pd.DataFrame,
                  sentence: str) -> list[Section]:
    """The sections of ``comparison.html``: the table and overlays, severity and NC when measured."""
    q = float(runs[0].summary.get("q", 0.95))
    frames = {r.name: r.metrics for r in runs}
    taus = {r.name: r.summary.get("tau", {}).get(split, {}) for r in runs}
    overview = Section("Runs side by side", paragraphs=[
        sentence,
        f"Columns are runs; the Δ columns subtract the baseline '{runs[0].name}'. Final values "
        f"are those of each run's last epoch; τ_{q:g} is the first epoch whose accuracy reaches "
        f"{100 * q:.0f}% of the space's best (paper Fig. 4); random spaces R are means over "
        f"their draws; {NA} marks a value that is NaN or was not measured.",
    ])
    overview.tables.append(table.to_html(index=False, na_rep=NA, float_format=_fmt))
    overview.figures = [
        (stem, fig, caption) for stem, fig, caption in [
            ("compare_accuracy", FC.plot_accuracy_overlay(frames, split),
             f"Greedy {split} accuracy per label space and epoch, one line per run."),
            ("compare_tau", FC.plot_tau_bars(taus, q, split),
             f"τ_{q:g} per label space, one bar per run."),
        ] if fig is not None
    ]
    sections = [overview, across_runs(runs, split)]
    severity = FC.plot_severity_overlay(frames, split)
    if severity is not None:
        sections.append(Section("Mistake severity", paragraphs=[
            "Mean LCA height of the top-1 mistakes, and the mean LCA height between the truth and "
            "each of the k most likely classes (Bertinetto et al. 2020): lower is better."],
            figures=[("compare_severity", severity, f"Mistake severity per epoch ({split}).")]))
    collapse = FC.plot_nc_overlay(frames)
    if collapse is not None:
        sections.append(Section("Neural collapse per label space", paragraphs=[
            "NC metrics of the penultimate features in the fine space H and the hypernym spaces "
            "(color = run, line style = label space)."],
            figures=[("compare_nc", collapse, "Neural-collapse metrics per epoch.")]))
    return sections


def across_runs(runs: Sequence[Run], split: str) -> Section:
    """Table 1, Fig. 1a and Fig. 4 of the paper with one column or line per run (e.g. one per
    architecture); Fig. 4 for the runs whose label spaces (``spaces.json``) are there."""
    frames = {r.name: r.metrics for r in runs}
    with_spaces = {r.name: (r.summary, r.run.spaces) for r in runs
                   if r.run.file("spaces.json").exists()}
    q = float(runs[0].summary.get("q", 0.95))
    sec = Section("Hypernym bias across runs", paragraphs=[
        "The paper's cross-architecture view: the last epoch's accuracy in every label space "
        "(Table 1), the relative accuracy A_R = A / max A of each space per epoch (Fig. 1a; "
        "hypernym spaces reach their best long before the fine space H), and the epoch τ of "
        f"{100 * q:.0f}% convergence against the number of superclasses, hypernym spaces S_n "
        "against random spaces R_n of the same sizes (Fig. 4)."])
    sec.tables.append(frame_table(FC.accuracy_table(frames, split), digits=1, caption=(
        f"Table 1: {split} accuracy (%) at the last epoch per label space, one column per run "
        "(random spaces: mean over draws).")))
    sec.figures = [(stem, fig, caption) for stem, fig, caption in [
        ("compare_relative_accuracy", FC.plot_relative_accuracy_overlay(frames, split),
         f"Relative {split} accuracy per label space and epoch, one line per run (Fig. 1a)."),
        ("compare_tau_superclasses", FC.plot_tau_vs_superclasses(with_spaces, split) if with_spaces
         else None, f"τ_{q:g} against the number of superclasses, one colour per run (Fig. 4)."),
    ] if fig is not None]
    return sec


def common_split(runs: Sequence[Run]) -> str:
    """``val`` when every run tracked it, else the first split of the first run that all share."""
    common = set.intersection(*(set(r.metrics.split.unique()) for r in runs))
    if not common:
        raise DataError("the runs share no split: " +
                        "; ".join(f"{r.run.path}: {sorted(r.metrics.split.unique())}" for r in runs))
    return main_split(s for s in runs[0].metrics.split.unique() if s in common)


def _final(run: Run, metric: str, split: str | None) -> dict[str, float]:
    """Each space's value at the last epoch the metric was measured (NaN stays NaN)."""
    wide = space_curves(run.metrics, metric, split)
    return {} if wide.empty else wide.iloc[-1].to_dict()


def comparison_table(runs: Sequence[Run], split: str) -> pd.DataFrame:
    """Quantities × runs: columns ``quantity, space, split``, one per run, then ``Δ <run>``."""
    q = float(runs[0].summary.get("q", 0.95))
    rows: dict[tuple[str, str, str], dict[str, float]] = {}

    def add(quantity: str, where: str, values: dict[str, Any], name: str) -> None:
        for space in space_order(list(values)):
            if "#" not in space:
                key = (quantity, space, where)
                value = values[space]
                rows.setdefault(key, {})[name] = math.nan if value is None else float(value)

    for r in runs:
        add(f"tau_{q:g} (epochs)", split, r.summary.get("tau", {}).get(split, {}), r.name)
        add("final accuracy (%)", split, _final(r, "accuracy", split), r.name)
        present = set(r.metrics.metric.unique())
        topk = [topk_name(k) for k in topk_ks(present)]
        for metric in ["mistake_severity"] * ("mistake_severity" in present) + topk:
            add(f"final {metric}", split, _final(r, metric, split), r.name)
        nc = r.metrics[r.metrics.metric.str.startswith("nc")]
        for (metric, nc_split), _ in nc.groupby(["metric", "split"]):
            values = _final(r, metric, nc_split)
            add(f"final {metric}", nc_split,
                {s: v for s, v in values.items() if not is_random_space(s)}, r.name)
    table = pd.DataFrame([{"quantity": k[0], "space": k[1], "split": k[2], **v}
                          for k, v in rows.items()], columns=["quantity", "space", "split",
                                                              *(r.name for r in runs)])
    base = runs[0].name
    for r in runs[1:]:
        table[f"Δ {r.name}"] = table[r.name] - table[base]
    return table


def finding(runs: Sequence[Run], split: str) -> str:
    """The comparison's sentence (:func:`hypbias.analysis.findings.comparison_finding`)."""

    def entry(r: Run) -> tuple[str, dict[str, Any], dict[str, float]]:
        final = {metric: _final(r, metric, split).get("H", math.nan)
                 for metric in ("mistake_severity", "accuracy")}
        return r.name, r.summary, final

    return comparison_finding(entry(runs[0]), [entry(r) for r in runs[1:]], split)


def _loss(run: RunDir) -> str:
    if not run.file("config.yaml").exists():
        return "unknown"
    loss = run.config.get("loss") or {"name": "ce"}
    return ", ".join(f"{k}={v}" for k, v in loss.items())


def _fmt(value: float) -> str:
    return f"{value:.4g}"


__all__ = ["Run", "across_runs", "check_same_classes", "compare_runs", "comparison_table", "finding",
           "load_run", "open_runs", "page_sections"]
