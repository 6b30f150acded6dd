"""Every sentence hypbias states about a run: one place for the findings of the report and CLI.

Each function reads the long-format metrics table (or ``summary.json``) and returns sentences that
give the numbers they rest on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
