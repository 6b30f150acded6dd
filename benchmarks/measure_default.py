"""The embedded default's findings (DESIGN.md §6), measured from finished run directories.

Reads only ``metrics.csv`` and ``summary.json`` of each RUN_DIR (with pandas), so it works on any
run of ``synthetic.yaml`` or ``synthetic_nc.yaml`` whatever the code that wrote it. Prints per run:

* τ₀.₉₅ per hypernym space S_n against its random draws R_n (mean ± sd, and how many draws S_n
  beats) and against H, on the val split (train when val was not tracked);
* the cophenetic correlation (``ccc_cover`` and ``ccc_class_means``) of every analysed layer at
  epoch 0, at the end of the first quarter of training (the last measured epoch <= ⌈E/4⌉) and at
  the last measured epoch;
* for NC1, NC3 and NC4 in every space: the value at epoch 0 and at the end, and the epochs at
  which the metric has made half and 90% of its total change (see :func:`change_epoch`);
* the largest gap between the measured accuracy of R_n (mean over draws) and Eq. 22 from epoch 3 on.

Several RUN_DIRs (e.g. one per seed) end with one line per run of the headline numbers.

Usage: python benchmarks/measure_default.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import pandas as pd

NC_METRICS = ("nc1", "nc3", "nc4")
CCC_METRICS = ("ccc_cover", "ccc_class_means")


def change_epoch(series: pd.Series, share: float) -> float:
    """First epoch at which a metric has made ``share`` of its total change from epoch 0 to the end.

    ``series`` is indexed by epoch. With m(e) its value, the result is the first e with
    (m(e) − m(0)) / (m(E) − m(0)) >= share, E the last epoch; NaN when the metric did not change.
    The 90% epoch is what the report calls the *plateau* epoch, the 50% epoch the *half-change* one.
    """
    series = series.sort_index()
    total = series.iloc[-1] - series.iloc[0]
    if total == 0 or not math.isfinite(total):
        return math.nan
    made = (series - series.iloc[0]) / total
    return float(made.index[made >= share][0])


def hypernym_sizes(metrics: pd.DataFrame) -> list[int]:
    """The n of every hypernym space S_n in the run, ascending."""
    return sorted(int(m.group(1)) for s in metrics.space.unique() if (m := re.fullmatch(r"S(\d+)", s)))


def tau_lines(summary: dict, sizes: list[int]) -> tuple[list[str], dict[int, tuple[float, float]]]:
    """τ₀.₉₅ of S_n, R_n (mean ± sd, draws beaten) and H; also {n: (τ(S_n), mean τ(R_n))}."""
    split = "val" if "val" in summary["tau"] else next(iter(summary["tau"]))
    tau = summary["tau"][split]
    lines = [f"tau_{summary['q']} on {split}: H {tau['H']:.1f}"]
    pairs = {}
    for n in sizes:
        draws = pd.Series({k: v for k, v in tau.items() if k.startswith(f"R{n}#")}, dtype=float)
        s = tau[f"S{n}"]
        lines.append(f"  S{n} {s:5.1f}   R{n} {draws.mean():5.2f} ± {draws.std(ddof=1):.2f} "
                     f"({len(draws)} draws; S{n} earlier than {(draws > s).sum()}, "
                     f"tied with {(draws == s).sum()})")
        pairs[n] = (s, float(draws.mean()))
    return lines, pairs


def ccc_lines(metrics: pd.DataFrame) -> tuple[list[str], dict[str, float]]:
    """CCC per layer at epoch 0, the first quarter and the end; headline numbers of ``ccc_cover``."""
    rows = metrics[metrics.metric.isin(CCC_METRICS) & metrics.layer.notna()]
    if rows.empty:
        return ["CCC: not measured"], {}
    last_epoch = int(metrics.epoch.max())
    measured = sorted(rows.epoch.unique())
    quarter = max(e for e in measured if e <= math.ceil(last_epoch / 4))
    picked = [measured[0], quarter, measured[-1]]
    lines, head = [], {}
    for metric in CCC_METRICS:
        wide = rows[rows.metric == metric].pivot_table(index="layer", columns="epoch", values="value")
        layers = list(dict.fromkeys(rows.layer))  # the order of the run: bottom to top
        wide = wide.loc[layers]
        lines.append(f"{metric} at epochs {picked[0]} / {picked[1]} (quarter) / {picked[2]}; "
                     f"all measured: {[int(e) for e in measured]}")
        for layer in layers:
            values = " / ".join(f"{wide.loc[layer, e]:.2f}" for e in picked)
            lines.append(f"  {layer:12s} {values}")
        if metric == "ccc_cover":
            top, bottom = wide.loc[layers[-1]], wide.loc[layers[0]]
            head = {"top_0": top[picked[0]], "top_q": top[picked[1]], "top_end": top[picked[2]],
                    "bottom_end": bottom[picked[2]]}
            above = (top > bottom).sum()
            lines.append(f"  top above bottom at {above} of {len(top)} measured epochs")
    return lines, head


def nc_lines(metrics: pd.DataFrame, sizes: list[int]) -> tuple[list[str], dict[str, float]]:
    """NC1/NC3/NC4 per space: start, end, and the epochs of 50% and 90% of the total change."""
    rows = metrics[metrics.metric.isin(NC_METRICS) & metrics.layer.isna()]
    if rows.empty:
        return ["NC: not measured"], {}
    spaces = ["H", *[f"{p}{n}" for n in sizes for p in ("S", "R")]]
    lines = [f"NC on {rows.split.iloc[0]} (epochs of 50% / 90% of the change from epoch 0 to the end)"]
    head = {}
    for metric in NC_METRICS:
        wide = rows[rows.metric == metric].pivot_table(index="epoch", columns="space", values="value")
        lines.append(f"  {metric}")
        for space in [s for s in spaces if s in wide]:
            col = wide[space]
            half, plateau = change_epoch(col, 0.5), change_epoch(col, 0.9)
            head[f"{metric}_{space}_50"], head[f"{metric}_{space}_90"] = half, plateau
            lines.append(f"    {space:4s} {col.iloc[0]:8.3f} -> {col.iloc[-1]:8.3f}   "
                         f"50% at {half:5.0f}   90% at {plateau:5.0f}")
    return lines, head


def eq22_lines(metrics: pd.DataFrame, sizes: list[int]) -> list[str]:
    """Largest |mean over draws of A(R_n#k) − Eq. 22| from epoch 3 on, per n, on the main split."""
    split = "val" if metrics.split.eq("val").any() else metrics.split.iloc[0]
    parts = []
    for n in sizes:
        sel = metrics[(metrics.split == split) & metrics.space.str.startswith(f"R{n}#")
                      & metrics.metric.isin(["accuracy", "theoretical_accuracy"]) & (metrics.epoch >= 3)]
        wide = sel.pivot_table(index=["epoch", "space"], columns="metric", values="value")
        gap = (wide["accuracy"] - wide["theoretical_accuracy"]).groupby("epoch").mean()
        parts.append(f"R{n} {gap.abs().max():.2f}")
    return [f"Eq. 22: max |A(R) - P_R| from epoch 3 on ({split}, mean over draws, points): "
            + ", ".join(parts)]


def measure(run_dir: Path) -> dict[str, float]:
    """Print the findings of one run; return its headline numbers."""
    metrics = pd.read_csv(run_dir / "metrics.csv")
    summary = json.loads((run_dir / "summary.json").read_text())
    sizes = hypernym_sizes(metrics)
    final = summary["final_accuracy"]
    split = "val" if "val" in final else next(iter(final))
    print(f"== {run_dir} (epochs {int(metrics.epoch.max())})")
    print(f"final {split} accuracy: " + ", ".join(f"{k} {v:.1f}" for k, v in final[split].items()))
    tau, pairs = tau_lines(summary, sizes)
    ccc, ccc_head = ccc_lines(metrics)
    nc, nc_head = nc_lines(metrics, sizes)
    for line in [*tau, *ccc, *nc, *eq22_lines(metrics, sizes)]:
        print(line)
    print()
    head = {f"tauS{n}-R{n}": s - r for n, (s, r) in pairs.items()}
    return {**head, **ccc_head, **nc_head}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    args = parser.parse_args()
    heads = {str(run): measure(run) for run in args.runs}
    if len(heads) > 1:
        table = pd.DataFrame(heads).T
        keys = [c for c in table.columns if c.startswith(("tau", "top", "bottom"))
                or re.fullmatch(r"nc[134]_(H|S\d+)_(50|90)", c)]
        with pd.option_context("display.width", 250, "display.max_columns", 60,
                               "display.float_format", "{:.2f}".format):
            print("Headline numbers per run (tau: S_n minus mean R_n; top/bottom: ccc_cover; "
                  "nc*_X_50/90: epochs of 50%/90% change)")
            print(table[keys].T.to_string())


if __name__ == "__main__":
    main()
