"""Every sentence hypbias states about a run: one place for the findings of the report and CLI.

Each function reads the long-format metrics table (or ``summary.json``) and returns sentences that
give the numbers they rest on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hypbias._validation import check_float
from hypbias.analysis.tables import default_split, layer_order, layer_rows, metric_rows
from hypbias.labelspace.spaceset import SpaceSet, is_random_space, space_order

CCC_LABELS = {
    "ccc_cover": "mutual-cover distance",
    "ccc_class_means": "class-mean distance",
    "ccc_direct": "example-pair distance",
}
"""What each CCC metric correlates with the hierarchy (App. C.3)."""


def _fmt(value: float | None) -> str:
    return "never" if value is None else f"{value:g}"


def _join(clauses: Sequence[str]) -> str:
    return clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]


def convergence_finding(summary: dict[str, Any], spaces: SpaceSet, split: str = "val") -> list[str]:
    """One sentence per hypernym space comparing τ_q of S with its random counterparts and H."""
    q = summary["q"]
    tau, sd = summary["tau"].get(split, {}), summary["tau_sd"].get(split, {})
    sentences = []
    for name in spaces.hypernyms:
        rname = spaces.random_name(name)
        if tau.get(name) is None or tau.get(rname) is None:
            continue
        verdict = "earlier than" if tau[name] < tau[rname] else "not earlier than"
        sentences.append(
            f"{name} reached {100 * q:.0f}% of its best {split} accuracy at epoch {tau[name]:g}, "
            f"its random counterparts {rname} at epoch {tau[rname]:.1f} ± {sd.get(rname, 0.0):.1f} "
            f"(mean ± sd over {summary['draws']} draws), and the fine space H at epoch "
            f"{_fmt(tau.get('H'))}: hypernyms converge {verdict} random groupings of the same sizes."
        )
    return sentences


def collapse_finding(metrics: pd.DataFrame, threshold: float,
                     split: str | None = None) -> str | None:
    """One sentence: the first epoch at which NC1 drops below ``threshold`` in each S space and H.

    Example: "NC1 on the train split first drops below 0.1 at epoch 4 in S4, at epoch 9 in S20 and
    at epoch 15 in H." A space that never does reads "not by epoch 30 in H" (its last epoch).
    Returns None when the table holds no ``nc1`` rows for H or a hypernym space.
    """
    threshold = check_float(threshold, "threshold", "collapse_finding", low=0.0, low_open=True)
    rows = metric_rows(metrics, "nc1")
    split = split or default_split(rows)
    rows = rows[rows.split == split]
    wide = rows.pivot_table(index="epoch", columns="space", values="value").sort_index()
    spaces = space_order([s for s in rows.space if s in wide], random=False)
    spaces = [*spaces[1:], spaces[0]] if spaces[:1] == ["H"] else spaces  # H last in the sentence
    if not spaces:
        return None
    clauses = []
    for name in spaces:
        curve = wide[name].dropna()
        below = curve.index[curve.to_numpy() < threshold]
        clauses.append(f"at epoch {below[0]} in {name}" if len(below)
                       else f"not by epoch {curve.index.max()} in {name}")
    return f"NC1 on the {split} split first drops below {threshold:g} {_join(clauses)}."


def manifold_finding(metrics: pd.DataFrame, metric: str = "ccc_cover",
                     layer: str | None = None) -> str:
    """One sentence with the CCC of ``layer`` (default the top one) before training, early, and best.

    "Early" is the measured epoch closest to a tenth of the last one (at least the first after 0).
    """
    sel = layer_rows(metrics, metric)
    layer = layer_order(sel)[-1] if layer is None else layer
    curve = sel[sel.layer == layer].groupby("epoch").value.mean().sort_index()
    if curve.empty:
        raise ValueError(f"The metrics table has no '{metric}' rows for layer {layer!r}.")
    epochs = curve.index.to_numpy()
    later = epochs[epochs > epochs[0]]
    early = later[np.argmin(np.abs(later - max(later[0], epochs[-1] / 10)))] if len(later) else None
    best = curve.idxmax()
    what = CCC_LABELS.get(metric, metric)
    text = (f"Cophenetic correlation between the hierarchy and the {what} of layer {layer}: "
            f"{curve.iloc[0]:.2f} at epoch {epochs[0]}")
    if early is not None and early != best:
        text += f", {curve[early]:.2f} at epoch {early}"
    if best != epochs[0]:
        text += f", best {curve[best]:.2f} at epoch {best}"
    return text + "."


def run_findings(metrics: pd.DataFrame, summary: dict[str, Any], spaces: SpaceSet, split: str,
                 nc_threshold: float) -> list[str]:
    """Every finding of one run, in report order: convergence, then NC and manifold when measured."""
    found: list[str | None] = [*convergence_finding(summary, spaces, split=split)]
    if metrics.metric.eq("nc1").any():
        found.append(collapse_finding(metrics, nc_threshold))
    if metrics.metric.eq("ccc_cover").any():
        found.append(manifold_finding(metrics))
    return [f for f in found if f]


def comparison_finding(base: tuple[str, dict[str, Any], dict[str, float]],
                       others: Sequence[tuple[str, dict[str, Any], dict[str, float]]],
                       split: str) -> str:
    """One sentence: how each run changes hypernym τ_q and mistake severity against the first.

    Each run is ``(name, summary, finals)`` with ``finals`` its last-epoch values
    ``{"mistake_severity": ..., "accuracy": ...}`` of the fine space (NaN when not measured).
    """
    base_name, base_summary, base_final = base
    q = float(base_summary.get("q", 0.95))
    base_tau = base_summary.get("tau", {}).get(split, {})
    hyper = [s for s in base_tau if s != "H" and not is_random_space(s)]
    clauses = []
    for name, summary, final in others:
        tau = summary.get("tau", {}).get(split, {})
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
        sev_b = base_final.get("mistake_severity", math.nan)
        sev_r = final.get("mistake_severity", math.nan)
        if math.isnan(sev_b) or math.isnan(sev_r):
            parts.append("mistake severity is not available for both runs")
        else:
            pct = 100 * (sev_r - sev_b) / sev_b if sev_b else math.nan
            parts.append(f"changes the final mistake severity by {sev_r - sev_b:+.3f} "
                         f"({sev_b:.3f} → {sev_r:.3f}, {pct:+.0f}%)")
        acc_b, acc_r = base_final.get("accuracy", math.nan), final.get("accuracy", math.nan)
        accuracy = "" if math.isnan(acc_b) or math.isnan(acc_r) else \
            f" at a fine accuracy of {acc_r:.1f}% (vs {acc_b:.1f}%)"
        clauses.append(f"'{name}' {' and '.join(parts)}{accuracy}")
    return f"Against '{base_name}' ({split} split), " + "; ".join(clauses) + "."


__all__ = ["CCC_LABELS", "collapse_finding", "comparison_finding", "convergence_finding",
           "manifold_finding", "run_findings"]


# -------------------------------------------------------------------------------------------------
# Findings of the sections on pictures, Table 6–7, mistake severity and blur (issue 14). Each takes
# the prepared table it speaks about and states a verdict with its numbers.

CCC_METHODS = {"direct comparison": "example pairs", "class means": "class means",
               "mutual cover": "mutual covers"}
"""Table 6's column headings and how a sentence names them."""


def ccc_table_finding(table: pd.DataFrame) -> str:
    """Table 6 in one sentence, at the last epoch of ``table`` (``analysis.layer_tables.ccc_table``):
    the CCC of each method averaged over layers, and the method whose distances align best."""
    epoch = max(table.columns.get_level_values(0))
    average = table.loc["average", epoch].dropna()
    per_layer = table.drop(index="average")[epoch]
    clauses = [f"{average[h]:.2f} from {CCC_METHODS.get(h, h)}" for h in average.index]
    best = average.idxmax()
    top_layer = per_layer[best].idxmax()
    return (f"At epoch {epoch}, averaged over the {len(per_layer)} layers, the cophenetic correlation "
            f"with the hierarchy is {_join(clauses)}: distances between {CCC_METHODS.get(best, best)} "
            f"align best, most in layer {top_layer} ({per_layer.loc[top_layer, best]:.2f}).")


def probe_training_finding(table: pd.DataFrame, scored: str, epoch: int) -> str | None:
    """Table 7 in one sentence: do probes trained in H score better in ``scored`` than probes
    trained in ``scored`` itself? ``table`` is ``analysis.layer_tables.probe_table``; None when it
    lacks either column."""
    own, fine = f"trained in {scored}", "trained in H"
    if own not in table or fine not in table:
        return None
    gap = (table[fine] - table[own]).dropna()
    if gap.empty:
        return None
    wins = int((gap > 0).sum())
    verdict = ("training in H gives better hypernym probes" if wins > len(gap) / 2 else
               "training in H does not give better hypernym probes")
    return (f"Scored in {scored} at epoch {epoch}, probes trained in H beat probes trained in {scored} "
            f"in {wins} of {len(gap)} layers (by {gap.mean():+.1f} points on average, "
            f"{gap.min():+.1f} to {gap.max():+.1f}): {verdict}.")


def picture_finding(layer: str, space: str, agreement: Mapping[int, tuple[float, float]]) -> str:
    """One sentence on the class-mean pictures (Fig. 13): per epoch, the share of classes whose
    nearest class mean in the picture shares their ``space`` group, against chance."""
    epochs = sorted(agreement)
    chance = float(np.nanmean([agreement[e][1] for e in epochs]))
    parts = [f"{100 * agreement[e][0]:.0f}% at epoch {e}" for e in epochs]
    last = agreement[epochs[-1]][0]
    verdict = ("the picture keeps the hypernym structure" if last > chance else
               "the picture does not keep the hypernym structure")
    return (f"In the 2-D UMAP of the class means of layer {layer}, the share of classes whose nearest "
            f"other class mean lies in their own {space} group is {_join(parts)} (chance "
            f"{100 * chance:.0f}%): at the last epoch {verdict}.")


def severity_finding(metrics: pd.DataFrame, split: str) -> str | None:
    """Mistake severity and the largest hierarchical top-k distance, first and last epoch, in H."""
    sev = metric_rows(metrics, "mistake_severity", split)
    sev = sev[sev.space == "H"].sort_values("epoch").dropna(subset=["value"])
    if sev.empty:
        return None
    first, last = sev.iloc[0], sev.iloc[-1]
    verdict = "fall" if last.value < first.value else "do not fall"
    text = (f"On the {split} split the mean LCA distance of top-1 mistakes goes from {first.value:.2f} "
            f"at epoch {first.epoch} to {last.value:.2f} at epoch {last.epoch}")
    ks = sorted(int(m.split("@")[1]) for m in metrics.metric.unique() if m.startswith("hier_dist@"))
    if ks:
        top = metric_rows(metrics, f"hier_dist@{ks[-1]}", split)
        top = top[top.space == "H"].sort_values("epoch").dropna(subset=["value"])
        if not top.empty:
            text += (f", the mean LCA distance of the top {ks[-1]} predictions from "
                     f"{top.value.iloc[0]:.2f} to {top.value.iloc[-1]:.2f}")
    return text + f": mistakes {verdict} closer in the hierarchy as training goes on."


def blur_finding(table: pd.DataFrame) -> str | None:
    """App. C.5 in one sentence from ``analysis.blur.blur_table``: at the strongest blur, the share of
    its unblurred accuracy the earliest and the latest checkpoint keep in each space, and whether
    the early one leans more on low frequencies (keeps more) in every space."""
    rel = table[table.metric == "blur_relative_accuracy"]
    if rel.empty or rel.epoch.nunique() < 2:
        return None
    sigma = rel.sigma.max()
    rel = rel[rel.sigma == sigma]
    early, late = rel.epoch.min(), rel.epoch.max()
    spaces = space_order(list(dict.fromkeys(s for s in rel.space if not is_random_space(s))))
    kept = {e: rel[rel.epoch == e].set_index("space").value for e in (early, late)}
    parts = [f"{100 * kept[early][s]:.0f}% vs {100 * kept[late][s]:.0f}% in {s}" for s in spaces]
    more = [s for s in spaces if kept[early][s] > kept[late][s]]
    verdict = ("the early checkpoint leans more on low frequencies in every space" if
               len(more) == len(spaces) else "the early checkpoint does not lean more on low "
               f"frequencies in every space (it keeps more in {len(more)} of {len(spaces)})")
    return (f"Blurred with σ = {sigma:g}, the epoch-{early} checkpoint keeps of its unblurred "
            f"accuracy, against the epoch-{late} checkpoint, {_join(parts)}: {verdict}.")


__all__ += ["CCC_METHODS", "blur_finding", "ccc_table_finding", "picture_finding",
            "probe_training_finding", "severity_finding"]
