"""``hypbias compare RUN_DIR... [--out DIR] [--names ...]``: several runs side by side.

Writes, into ``--out`` (default: ``compare/`` beside the first run directory):

* ``comparison.csv``: one row per quantity (τ_q, final accuracy per label space, final mistake
  severity and hierarchical top-k distances, final NC metrics per space), one column per run, and
  one ``Δ <run>`` column per run against the first (the baseline);
* ``comparison.html``: the same table, the one-sentence finding and the overlaid curves, one
  self-contained page (figures embedded, also saved under ``figures/``).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypbias.errors import ConfigError, DataError

if TYPE_CHECKING:  # imported lazily: the command line must start fast
    import pandas as pd

    from hypbias.rundir import RunDir

COLUMNS = ("epoch", "split", "space", "metric", "value", "layer")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="compare several run directories in one table and one HTML page",
        description="Put several runs side by side: a table of τ_q, final accuracies, mistake "
                    "severity and NC metrics, and overlaid curves, in comparison.csv and "
                    "comparison.html. The first run is the baseline of the Δ columns.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (two or more)")
    p.add_argument("--out", "-o", default=None,
                   help="output folder (default: compare/ beside the first run directory)")
    p.add_argument("--names", nargs="+", default=None, metavar="NAME",
                   help="one label per run (default: the directory names)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    page = compare_runs(args.run_dirs, out=args.out, names=args.names)
    print(f"comparison: {page}", file=sys.stderr)
    print(page.with_suffix(".txt").read_text(encoding="utf-8").strip())
    return 0


@dataclass
class Run:
    """One run directory opened for comparison."""

    name: str
    run: RunDir
    metrics: pd.DataFrame
    summary: dict[str, Any]


def load_run(path: str | Path, name: str) -> Run:
    """Open a run directory; DataError naming the path when it or a required file is missing."""
    from hypbias.rundir import RunDir

    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such run directory")
    run = RunDir(path)
    metrics = run.metrics
    missing = [c for c in COLUMNS if c not in metrics.columns]
    if missing:
        raise DataError(f"{path / 'metrics.csv'}: missing column {missing[0]!r}")
    return Run(name, run, metrics, run.summary)


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
    from hypbias.io import atomic_write_text
    from hypbias.report import figures_compare as FC
    from hypbias.report.html import Section, render_page, write_page

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
    out = Path(out) if out is not None else Path(run_dirs[0]).parent / "compare"
    split = main_split(runs)
    q = float(runs[0].summary.get("q", 0.95))

    table = comparison_table(runs, split)
    sentence = finding(runs, split)
    atomic_write_text(out / "comparison.csv", table.round(6).to_csv(index=False))
    atomic_write_text(out / "comparison.txt", sentence + "\n")

    frames = {r.name: r.metrics for r in runs}
    taus = {r.name: r.summary.get("tau", {}).get(split, {}) for r in runs}
    overview = Section("Runs side by side", paragraphs=[
        sentence,
        f"Columns are runs; the Δ columns subtract the baseline '{runs[0].name}'. Final values "
        f"are those of each run's last epoch; τ_{q:g} is the first epoch whose accuracy reaches "
        f"{100 * q:.0f}% of the space's best (paper Fig. 4); random spaces R are means over "
        "their draws.",
    ])
    overview.tables.append(table.to_html(index=False, na_rep="—", float_format=_fmt))
    overview.figures = [
        (stem, fig, caption) for stem, fig, caption in [
            ("compare_accuracy", FC.plot_accuracy_overlay(frames, split),
             f"Greedy {split} accuracy per label space and epoch, one line per run."),
            ("compare_tau", FC.plot_tau_bars(taus, q, split),
             f"τ_{q:g} per label space, one bar per run."),
        ] if fig is not None
    ]
    sections = [overview]
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
    intro = [f"{r.name}: {r.run.path} (loss: {_loss(r.run)})" for r in runs]
    page = out / "comparison.html"
    write_page(page, render_page("hypbias comparison", intro, sections, out / "figures"))
    return page


def main_split(runs: Sequence[Run]) -> str:
    """``val`` when every run tracked it, else the first split that every run has."""
    common = set.intersection(*(set(r.metrics.split.unique()) for r in runs))
    if not common:
        raise DataError("the runs share no split: " +
                        "; ".join(f"{r.run.path}: {sorted(r.metrics.split.unique())}" for r in runs))
    first = [s for s in runs[0].metrics.split.unique() if s in common]
    return "val" if "val" in common else str(first[0])


def _final(run: Run, metric: str, split: str | None) -> dict[str, float]:
    from hypbias.report.figures_compare import curves

    wide = curves(run.metrics, metric, split)
    return {} if wide.empty else wide.ffill().iloc[-1].to_dict()


def comparison_table(runs: Sequence[Run], split: str) -> pd.DataFrame:
    """Quantities × runs: columns ``quantity, space, split``, one per run, then ``Δ <run>``."""
    import pandas as pd

    from hypbias.report.figures_compare import is_random_space, ordered_spaces

    q = float(runs[0].summary.get("q", 0.95))
    rows: dict[tuple[str, str, str], dict[str, float]] = {}

    def add(quantity: str, where: str, values: dict[str, Any], name: str) -> None:
        for space in ordered_spaces(list(values)):
            if "#" not in space:
                key = (quantity, space, where)
                value = values[space]
                rows.setdefault(key, {})[name] = math.nan if value is None else float(value)

    for r in runs:
        add(f"tau_{q:g} (epochs)", split, r.summary.get("tau", {}).get(split, {}), r.name)
        add("final accuracy (%)", split, _final(r, "accuracy", split), r.name)
        present = set(r.metrics.metric.unique())
        topk = sorted((m for m in present if m.startswith("hier_dist@")),
                      key=lambda m: int(m.split("@")[1]))
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
    """One sentence: how each run changes hypernym τ_q and mistake severity against the first."""
    from hypbias.report.figures_compare import is_random_space

    base = runs[0]
    q = float(base.summary.get("q", 0.95))
    base_tau = base.summary.get("tau", {}).get(split, {})
    hyper = [s for s in base_tau if s != "H" and not is_random_space(s)]
    clauses = []
    for r in runs[1:]:
        tau = r.summary.get("tau", {}).get(split, {})
        pairs = [(s, base_tau[s], tau[s]) for s in hyper
                 if base_tau.get(s) is not None and tau.get(s) is not None]
        if not pairs:
            parts = [f"leaves τ_{q:g} of the hypernym spaces not comparable (never reached)"]
        elif all(b == t for _, b, t in pairs):
            parts = [f"leaves hypernym convergence τ_{q:g} unchanged "
                     f"({', '.join(f'{s} {b:g}' for s, b, _ in pairs)})"]
        else:
            s, b, t = max(pairs, key=lambda p: abs(p[2] - p[1]))
            mean = sum(t - b for _, b, t in pairs) / len(pairs)
            parts = [f"shifts hypernym convergence τ_{q:g} by {mean:+.2g} epochs on average over "
                     f"{', '.join(p[0] for p in pairs)} (most in {s}: {b:g} → {t:g})"]
        sev_b = _final(base, "mistake_severity", split).get("H", math.nan)
        sev_r = _final(r, "mistake_severity", split).get("H", math.nan)
        if math.isnan(sev_b) or math.isnan(sev_r):
            parts.append("mistake severity is not available for both runs")
        else:
            pct = 100 * (sev_r - sev_b) / sev_b if sev_b else math.nan
            parts.append(f"changes the final mistake severity by {sev_r - sev_b:+.3f} "
                         f"({sev_b:.3f} → {sev_r:.3f}, {pct:+.0f}%)")
        acc_b = _final(base, "accuracy", split).get("H", math.nan)
        acc_r = _final(r, "accuracy", split).get("H", math.nan)
        accuracy = "" if math.isnan(acc_b) or math.isnan(acc_r) else \
            f" at a fine accuracy of {acc_r:.1f}% (vs {acc_b:.1f}%)"
        clauses.append(f"'{r.name}' {' and '.join(parts)}{accuracy}")
    return f"Against '{base.name}' ({split} split), " + "; ".join(clauses) + "."


def _loss(run: RunDir) -> str:
    if not run.file("config.yaml").exists():
        return "unknown"
    loss = run.config.get("loss") or {"name": "ce"}
    return ", ".join(f"{k}={v}" for k, v in loss.items())


def _fmt(value: float) -> str:
    return f"{value:.4g}"
