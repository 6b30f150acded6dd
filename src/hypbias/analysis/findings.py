"""Every sentence hypbias states about a run: one verdict per report section on the paper's claim.

Each finding names a claim of the paper (or, where the paper makes none, what hypernym bias leads
one to expect), says whether *this run* supports it, and gives the numbers it rests on::

    This run <verdict> <the claim> (<where in the paper>): <numbers>.

The verdict (:func:`verdict`) is ``supports`` when every comparison behind it holds, ``does not
support`` when none holds, and ``gives mixed support to`` otherwise. Every comparison is relative —
one space against another, one epoch against another, a value against its chance level — never
a fixed absolute level, which can hold before the first update (an NC1 "below 5" at epoch 0).

Measures (each function's docstring says which it uses):

* **τ_q** (§4.2, Fig. 4): the first epoch whose accuracy reaches q of the space's best (Eq. 8's
  relative accuracy reaching q); R_n as the mean ± sd over its random draws, and the number of
  draws whose τ_q is later than S_n's.
* **Drop epoch** (:func:`drop_epoch`): for a metric that falls with training (NC1, NC3, NC4), the
  first epoch at which it has made a given share of its total drop from the first measured epoch
  to the last. Half the drop is the *half-drop* epoch, 90% the *plateau* epoch
  (``benchmarks/measure_default.py`` prints the same).
* **Rise by the first quarter**: for the CCC of a layer (Eq. 18), the share of its rise from the
  first measured epoch to its best that it has made by the end of the first quarter of training
  (the last measured epoch at or before ⌈E/4⌉, E the last one).
* **Chance levels**: the share of classes whose nearest class mean shares their group when means
  are placed at random (Fig. 13), and the mistake severity of a uniformly random wrong class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hypbias._validation import check_float
from hypbias.analysis.learned_hierarchy import LearnedFrom, bias_comparison, bias_gap
from hypbias.analysis.metric_names import param_metric, topk_ks
from hypbias.analysis.tables import default_split, layer_order, layer_rows, metric_rows, space_curves
from hypbias.labelspace.spaceset import FINE, SpaceSet, is_random_space, space_order
from hypbias.metrics.hierarchical import topk_name

CCC_LABELS = {
    "ccc_cover": "mutual-cover distance",
    "ccc_class_means": "class-mean distance",
    "ccc_direct": "example-pair distance",
}
"""What each CCC metric correlates with the hierarchy (App. C.3)."""

CCC_METHODS = {"direct comparison": "example pairs", "class means": "class means",
               "mutual cover": "mutual covers"}
"""Table 6's column headings and how a sentence names them."""

SUPPORTS, MIXED, NOT_SUPPORTED = "supports", "gives mixed support to", "does not support"
"""The three verdicts, as they read in a sentence ("This run supports the paper's claim ...")."""

Outcome = bool | None
"""One comparison behind a verdict: True holds, False fails, None holds in part."""


# ----------------------------------------------------------------------------------------- helpers
def verdict(outcomes: Sequence[Outcome]) -> str:
    """:data:`SUPPORTS` when every outcome is True, :data:`NOT_SUPPORTED` when every one is False,
    :data:`MIXED` otherwise (some hold, or some hold in part)."""
    if not outcomes:
        raise ValueError("The 'outcomes' parameter of verdict must hold at least one comparison.")
    if all(o is True for o in outcomes):
        return SUPPORTS
    if all(o is False for o in outcomes):
        return NOT_SUPPORTED
    return MIXED


def _sentence(outcomes: Sequence[Outcome], claim: str, numbers: str) -> str:
    return f"This run {verdict(outcomes)} {claim}: {numbers}."


def _fmt(value: float | None) -> str:
    return "never" if value is None else f"{value:g}"


def _join(clauses: Sequence[str]) -> str:
    return clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]


def drop_epoch(curve: pd.Series, share: float) -> int | None:
    """First epoch at which a falling metric has made ``share`` of its total drop.

    ``curve`` holds the metric m per epoch (its index; NaN values are left out). With e₀ the first
    and E the last epoch, the total drop is D = m(e₀) − m(E); the result is the first epoch e with
    m(e₀) − m(e) ≥ share · D, or None when the metric does not fall (D ≤ 0 or not finite). At e₀
    the share made is 0, so for ``share`` > 0 the answer is never the first epoch of a metric that
    falls: unlike a fixed level, it cannot be met before training.
    """
    share = check_float(share, "share", "drop_epoch", low=0.0, high=1.0, low_open=True)
    curve = curve.dropna().sort_index()
    if len(curve) < 2:
        return None
    start = curve.iloc[0]
    drop = start - curve.iloc[-1]
    if not (math.isfinite(drop) and drop > 0):
        return None
    made = (start - curve) >= share * drop
    return int(curve.index[made.to_numpy()][0])


def _earlier(epoch: int | None, reference: int | None) -> bool:
    """Whether ``epoch`` comes strictly before ``reference`` (None: never)."""
    return epoch is not None and (reference is None or epoch < reference)


# ------------------------------------------------------------------------------- label spaces (§4)
def convergence_finding(summary: Mapping[str, Any], spaces: SpaceSet,
                        split: str = "val") -> str | None:
    """Hypernym bias (§4.2, Fig. 1a and 4): is every S_n learned before its random draws R_n?

    Per hypernym space, τ_q(S_n) against each draw's τ_q(R_n#k): the comparison holds when S_n is
    earlier than every draw, holds in part when it is earlier than their mean only, and fails
    otherwise. ``summary`` is ``summary.json`` (``q``, ``tau``, ``tau_sd`` with every draw's τ_q).
    None when the split holds no hypernym space with random draws.
    """
    q = float(summary["q"])
    tau, sd = summary["tau"].get(split, {}), summary["tau_sd"].get(split, {})
    outcomes: list[Outcome] = []
    parts = []
    for name in spaces.hypernyms:
        draws = [tau.get(r) for r, _ in spaces.randoms.get(name, [])]
        if not draws or name not in tau:
            continue
        s, rname = tau[name], spaces.random_name(name)
        mean = tau.get(rname)
        later = sum(_earlier(s, d) for d in draws)
        outcomes.append(True if later == len(draws) else None if _earlier(s, mean) else False)
        spread = "" if mean is None else f" ± {sd.get(rname, 0.0):.1f}"
        parts.append(f"{_fmt(s)} in {name} against {'never' if mean is None else f'{mean:.1f}'}"
                     f"{spread} in {rname} ({name} earlier than {later} of {len(draws)} draws)")
    if not outcomes:
        return None
    return _sentence(
        outcomes, "the paper's claim that hypernyms are learned before random groupings of the "
        "same sizes (hypernym bias, §4.2, Fig. 1a and 4)",
        f"on the {split} split, τ_{q:g}, the first epoch at {100 * q:.0f}% of the best accuracy, is "
        f"{_join(parts)}; the fine space H reaches it at epoch {_fmt(tau.get(FINE))}")


NC_MEASURES = (("nc1", 0.5), ("nc1", 0.9), ("nc3", 0.9), ("nc4", 0.9))
"""The comparisons of :func:`collapse_finding`: (metric, share of its drop)."""


def collapse_finding(metrics: pd.DataFrame, split: str | None = None) -> str | None:
    """Neural collapse (§3.3, Fig. 5): does collapse show earlier in hypernym spaces than in H?

    For NC1 (tr(Σ_W Σ_B†)/K, App. A.2, Eq. 25–26; superclass statistics Eq. 33–34), the half-drop
    and plateau epochs (:func:`drop_epoch` at 50% and 90%); for NC3 (self-duality, Eq. 31) and NC4
    (mismatch with the nearest class mean, Eq. 32), the plateau epoch. Each hypernym space's epoch
    is compared with H's: strictly earlier holds, the same epoch or later fails. Random spaces are
    left out (the claim is about hypernyms against H). ``split`` defaults to ``train`` when
    measured there. None without NC1 rows for H and a hypernym space.
    """
    rows = metric_rows(metrics, "nc1")
    split = split or default_split(rows)
    if split is None:
        return None
    curves = {m: space_curves(metrics, m, split) for m in dict.fromkeys(m for m, _ in NC_MEASURES)}
    nc1 = curves["nc1"]
    hyper = [s for s in nc1.columns if s != FINE and not is_random_space(s)]
    if FINE not in nc1 or not hyper:
        return None
    first, last = int(nc1.index.min()), int(nc1.index.max())
    labels = {("nc1", 0.5): f"NC1 (App. A.2) has made half of its drop from epoch {first} to "
                            f"epoch {last}",
              ("nc1", 0.9): "90% of it", ("nc3", 0.9): "NC3 (Eq. 31) 90% of its drop",
              ("nc4", 0.9): "NC4 (Eq. 32) 90% of its drop"}
    outcomes: list[Outcome] = []
    parts, exceptions = [], []
    for metric, share in NC_MEASURES:
        wide = curves[metric]
        if FINE not in wide or not all(s in wide for s in hyper):
            continue
        at = {s: drop_epoch(wide[s], share) for s in [*hyper, FINE]}
        show = {s: "no drop" if e is None else str(e) for s, e in at.items()}
        if not parts:
            epochs = _join([f"{show[s]} in {s}" for s in hyper])
            parts.append(f"{labels[metric, share]} at epoch {epochs} against {show[FINE]} in H")
        else:
            parts.append(f"{labels[metric, share]} at {', '.join(show[s] for s in hyper)} "
                         f"against {show[FINE]}")
        for s in hyper:
            outcomes.append(_earlier(at[s], at[FINE]))
            if not outcomes[-1]:
                exceptions.append(f"{s} {metric.upper()} {100 * share:.0f}%: {show[s]} vs "
                                  f"{show[FINE]}")
    held = sum(bool(o) for o in outcomes)
    tally = f"hypernym spaces are earlier than H in {held} of {len(outcomes)} comparisons"
    if exceptions:
        tally += f" (not earlier: {'; '.join(exceptions)})"
    return _sentence(outcomes, "the paper's claim that neural collapse shows earlier in hypernym "
                     "label spaces than in H (§3.3, Fig. 5)",
                     f"on the {split} split, {'; '.join(parts)}; {tally}")


# -------------------------------------------------------------------------------- manifold (§4.3)
def manifold_finding(metrics: pd.DataFrame, metric: str = "ccc_cover") -> str | None:
    """Layer-wise alignment (§4.3, Fig. 6a): does the CCC (Eq. 18) of the top analysed layer rise
    early, and end above the bottom layer's?

    Two comparisons: the top layer has made at least half of its rise from the first measured
    epoch to its best by the end of the first quarter of training (the last measured epoch at or
    before e₀ + ⌈(E − e₀)/4⌉), and it ends above the bottom layer (skipped with one layer). Raises
    ``ValueError`` without per-layer ``metric`` rows; None with fewer than two measured epochs.
    """
    sel = layer_rows(metrics, metric)
    layers = layer_order(sel)
    wide = sel.pivot_table(index="epoch", columns="layer", values="value").sort_index()
    top, bottom = layers[-1], layers[0]
    curve = wide[top].dropna()
    if len(curve) < 2:
        return None
    epochs = curve.index.to_numpy()
    first, last = int(epochs[0]), int(epochs[-1])
    quarter = int(epochs[epochs <= first + math.ceil((last - first) / 4)].max())
    best = int(curve.idxmax())
    rise = curve[best] - curve[first]
    made = (curve[quarter] - curve[first]) / rise if rise > 0 else math.nan
    outcomes: list[Outcome] = [bool(made >= 0.5)]
    text = (f"the CCC of the {CCC_LABELS.get(metric, metric)} in the top layer {top} is "
            f"{curve[first]:.2f} at epoch {first}, {curve[quarter]:.2f} at epoch {quarter}, the end of "
            f"the first quarter of training (")
    text += (f"{100 * made:.0f}% of its rise to its best, {curve[best]:.2f} at epoch {best}"
             if rise > 0 else "it never rises above its first value")
    text += f"), and {curve[last]:.2f} at epoch {last}"
    if bottom != top and math.isfinite(wide.loc[last, bottom]):
        outcomes.append(bool(curve[last] > wide.loc[last, bottom]))
        both = wide[[top, bottom]].dropna()
        above = int((both[top] > both[bottom]).sum())
        text += (f"; the bottom layer {bottom} ends at {wide.loc[last, bottom]:.2f} (the top layer "
                 f"above it at {above} of {len(both)} measured epochs)")
    return _sentence(outcomes, "the paper's claim that the feature manifold aligns with the "
                     "hierarchy early in training, most in the top layers (§4.3, Fig. 6a)", text)


def cover_spaces_finding(metrics: pd.DataFrame) -> str | None:
    """Fig. 2a vs 2b (§3.2): self-covers pull away from mutual covers in the UMAP embedding, not in
    the raw feature space.

    For the top analysed layer, the gap between the mean self-cover and the mean mutual cover
    (Eq. 14) at the first and the last measured epoch, in the embedding and in the raw features
    (``@space=raw`` rows of ``manifold.space: both``). Comparisons: the embedding's gap grows; the
    raw gap does not. None without raw rows.
    """
    raw_self = param_metric("self_cover", space="raw")
    if not metrics.metric.eq(raw_self).any():
        return None
    layer = layer_order(layer_rows(metrics, "self_cover"))[-1]
    gaps = {}
    for where, (own, mutual) in {"UMAP embedding": ("self_cover", "mutual_cover"),
                                 "raw feature space": (raw_self, param_metric("mutual_cover",
                                                                              space="raw"))}.items():
        sel = pd.concat([layer_rows(metrics, own), layer_rows(metrics, mutual)])
        wide = sel[sel.layer == layer].pivot_table(index="epoch", columns="metric", values="value")
        gap = (wide[own] - wide[mutual]).dropna().sort_index()
        if len(gap) < 2:
            return None
        gaps[where] = gap
    umap, raw = gaps["UMAP embedding"], gaps["raw feature space"]
    outcomes = [bool(umap.iloc[-1] > umap.iloc[0]), bool(raw.iloc[-1] <= raw.iloc[0])]
    parts = [f"from {g.iloc[0]:.2f} at epoch {g.index[0]} to {g.iloc[-1]:.2f} at epoch "
             f"{g.index[-1]} in the {where}" for where, g in gaps.items()]
    return _sentence(outcomes, "the paper's observation that self-covers pull away from mutual "
                     "covers in the UMAP embedding but not in the raw feature space (§3.2, Fig. 2)",
                     f"in the top layer {layer}, self-cover minus mutual cover goes {_join(parts)}")


def ccc_table_finding(table: pd.DataFrame) -> str:
    """Table 6 (App. C.3) at the last epoch of ``table`` (``analysis.layer_tables.ccc_table``).

    The paper's reading: mutual-cover CCCs grow from the bottom layer to the top, lie above the
    class-mean CCCs in the bottom layer and below them in the top layer. Comparisons: mutual cover
    rising at every step between consecutive layers (in part when the top only beats the bottom),
    mutual cover > class means in the bottom layer, class means > mutual cover in the top layer.
    """
    epoch = max(table.columns.get_level_values(0))
    average = table.loc["average", epoch].dropna()
    per_layer = table.drop(index="average")[epoch]
    layers = list(per_layer.index)
    bottom, top = layers[0], layers[-1]
    outcomes: list[Outcome] = []
    parts = []
    cover = per_layer.get("mutual cover")
    if cover is not None and len(layers) > 1:
        steps = np.diff(cover.to_numpy())
        rising = int((steps > 0).sum())
        outcomes.append(True if rising == len(steps) else None if cover[top] > cover[bottom] else False)
        parts.append(f"the mutual-cover CCC goes {', '.join(f'{v:.2f}' for v in cover)} from the "
                     f"bottom layer to the top (rising at {rising} of {len(steps)} steps)")
    means = per_layer.get("class means")
    if cover is not None and means is not None:
        outcomes += [bool(cover[bottom] > means[bottom]), bool(means[top] > cover[top])]
        parts.append(f"mutual covers against class means give {cover[bottom]:.2f} vs "
                     f"{means[bottom]:.2f} in the bottom layer {bottom} and {cover[top]:.2f} vs "
                     f"{means[top]:.2f} in the top layer {top}")
    parts.append("averaged over the layers, " + _join(
        [f"{average[h]:.2f} from {CCC_METHODS.get(h, h)}" for h in average.index]))
    numbers = f"at epoch {epoch}, " + "; ".join(parts)
    if not outcomes:
        return numbers[0].upper() + numbers[1:] + "."
    return _sentence(outcomes, "the paper's reading of Table 6 that mutual-cover CCCs grow from the "
                     "bottom layer to the top, above class-mean CCCs at the bottom and below them at "
                     "the top (App. C.3)", numbers)


def probe_training_finding(table: pd.DataFrame, scored: str, epoch: int,
                           method: str | None = None) -> str | None:
    """Table 7 (App. C.4): do probes trained in H score better in ``scored`` than probes trained in
    ``scored`` itself? One comparison per layer (a tie fails). ``table`` is
    ``analysis.layer_tables.probe_table``; ``method`` (ridge, logistic) is named in the sentence,
    since the paper's Table 7 holds logistic probes. None when the table lacks either column."""
    own, fine = f"trained in {scored}", "trained in H"
    if own not in table or fine not in table:
        return None
    gap = (table[fine] - table[own]).dropna()
    if gap.empty:
        return None
    outcomes = [bool(g > 0) for g in gap]
    return _sentence(
        outcomes, "the paper's claim that probes trained in the fine space H classify hypernyms "
        "better than probes trained in the hypernym space (App. C.4, Table 7)",
        f"scored in {scored} at epoch {epoch}, {method + ' ' if method else ''}probes trained in H "
        f"beat probes trained in {scored} "
        f"in {sum(outcomes)} of {len(gap)} layers (by {gap.mean():+.1f} points on average, "
        f"{gap.min():+.1f} to {gap.max():+.1f})")


def picture_finding(layer: str, space: str, agreement: Mapping[int, tuple[float, float]], *,
                    classes: int) -> str:
    """Class-mean pictures (App. C.2, Fig. 13): does the picture keep the hypernym structure at the
    last epoch?

    ``agreement`` maps each epoch to (share, chance) of ``analysis.umap_pictures.centre_agreement``:
    the share of classes whose nearest other class mean lies in their own ``space`` group, and its
    chance level p. The comparison holds when the last epoch's share exceeds p by more than two
    standard deviations of a chance share over ``classes`` classes, √(p(1 − p)/C); it holds in
    part when the share is above p by less, and fails at or below p.
    """
    epochs = sorted(agreement)
    chance = float(np.nanmean([agreement[e][1] for e in epochs]))
    sd = math.sqrt(chance * (1 - chance) / classes) if classes > 0 else math.nan
    last = agreement[epochs[-1]][0]
    outcome: Outcome = (True if last > chance + 2 * sd else None if last > chance else False)
    parts = [f"{100 * agreement[e][0]:.0f}% at epoch {e}" for e in epochs]
    return _sentence(
        [outcome], "the paper's claim that the class means keep the hypernym structure to the "
        "last epoch (App. C.2, Fig. 13)",
        f"in the 2-D UMAP of the class means of layer {layer}, the share of classes whose nearest "
        f"other class mean lies in their own {space} group is {_join(parts)}, against "
        f"{100 * chance:.0f}% ± {100 * sd:.0f}% for means placed at random ({classes} classes)")


# ------------------------------------------------------------------ mistakes, blur, losses, trees
def chance_severity(distances: np.ndarray) -> float:
    """Mistake severity of a uniformly random wrong class: the mean off-diagonal entry of the
    (C, C) LCA distances (balanced classes)."""
    d = np.asarray(distances, dtype=np.float64)
    c = d.shape[0]
    return float((d.sum() - np.trace(d)) / (c * (c - 1))) if c > 1 else math.nan


def severity_finding(metrics: pd.DataFrame, split: str, chance: float | None = None) -> str | None:
    """Mistake severity (Bertinetto et al. 2020): do mistakes come to fall closer in the hierarchy?

    The paper makes no claim here; hypernym bias leads one to expect it. Comparisons: the severity
    in H at the last epoch below the first epoch's, and below ``chance`` (:func:`chance_severity`)
    when given. The largest hierarchical top-k distance is stated beside it. None without
    ``mistake_severity`` rows.
    """
    sev = metric_rows(metrics, "mistake_severity", split)
    sev = sev[sev.space == FINE].sort_values("epoch").dropna(subset=["value"])
    if sev.empty:
        return None
    first, last = sev.iloc[0], sev.iloc[-1]
    outcomes: list[Outcome] = [bool(last.value < first.value)]
    text = (f"on the {split} split the mean LCA distance of top-1 mistakes goes from "
            f"{first.value:.2f} at epoch {first.epoch} to {last.value:.2f} at epoch {last.epoch}")
    if chance is not None and math.isfinite(chance):
        outcomes.append(bool(last.value < chance))
        text += (f" ({100 * last.value / chance:.0f}% of {chance:.2f}, the distance of a uniformly "
                 "random wrong class)")
    ks = topk_ks(metrics.metric.unique())
    if ks:
        top = metric_rows(metrics, topk_name(ks[-1]), split)
        top = top[top.space == FINE].sort_values("epoch").dropna(subset=["value"])
        if not top.empty:
            text += (f"; the mean LCA distance of the top {ks[-1]} predictions from "
                     f"{top.value.iloc[0]:.2f} to {top.value.iloc[-1]:.2f}")
    return _sentence(outcomes, "the expectation from hypernym bias that mistakes come to fall "
                     "closer in the hierarchy than random mistakes (mistake severity, Bertinetto "
                     "et al. 2020)", text)


def blur_finding(table: pd.DataFrame) -> str | None:
    """Frequency analysis (App. C.5, Fig. 17–18): the paper finds that an early checkpoint does not
    depend more on low frequencies than a late one, in hypernym spaces or in H.

    At the strongest blur, the relative gain G = (A_σ − B)/(A_0 − B) (Eq. 9 against the same
    checkpoint's unblurred accuracy A_0) of the earliest and the latest checkpoint in H and every
    hypernym space (``analysis.blur.blur_table``): a space's comparison holds when the early
    checkpoint keeps no more than the late one. None with fewer than two checkpoints.
    """
    gain = table[table.metric == "blur_relative_gain"].dropna(subset=["value"])
    if gain.empty or gain.epoch.nunique() < 2:
        return None
    sigma = gain.sigma.max()
    gain = gain[gain.sigma == sigma]
    early, late = gain.epoch.min(), gain.epoch.max()
    kept = {e: gain[gain.epoch == e].set_index("space").value for e in (early, late)}
    spaces = [s for s in space_order(list(dict.fromkeys(gain.space)), random=False)
              if s in kept[early] and s in kept[late]]
    if not spaces:
        return None
    outcomes = [bool(kept[early][s] <= kept[late][s]) for s in spaces]
    parts = [f"{kept[early][s]:.2f} vs {kept[late][s]:.2f} in {s}" for s in spaces]
    return _sentence(
        outcomes, "the paper's finding that an early checkpoint does not lean more on low image "
        "frequencies than a late one, in hypernym spaces or in H (App. C.5, Fig. 17–18)",
        f"blurred with σ = {sigma:g}, the epoch-{early} checkpoint keeps a relative gain G (Eq. 9 "
        f"against its own unblurred accuracy) of, against the epoch-{late} checkpoint, "
        f"{_join(parts)}; the early one keeps more in {outcomes.count(False)} of {len(spaces)}")


def loss_terms_finding(table: pd.DataFrame) -> str | None:
    """Multi-level loss (§5): the paper finds that the coarse terms matter significantly only early
    in training, with a much lower impact later.

    ``table`` holds the weighted terms per epoch (rows) and space (columns, H the fine term;
    ``report.figures_loss.loss_term_table``). The coarse share is the coarse terms' sum over the
    total. The comparison holds when the last epoch's share is at most half the first epoch's,
    holds in part when it falls by less, and fails when it does not fall. None without coarse
    terms or with one epoch.
    """
    coarse = table.drop(columns=FINE, errors="ignore")
    if coarse.empty or len(table) < 2:
        return None
    share = coarse.sum(axis=1) / table.sum(axis=1)
    first, last = int(share.index.min()), int(share.index.max())
    ratio = share[last] / share[first] if share[first] > 0 else math.nan
    outcome: Outcome = True if ratio <= 0.5 else None if ratio < 1 else False
    return _sentence(
        [outcome], "the paper's finding that the coarse terms of a multi-level loss matter mostly "
        "early in training (§5)",
        f"the coarse terms make up {100 * share[first]:.0f}% of the training loss at epoch {first} "
        f"and {100 * share[last]:.0f}% at epoch {last}, {ratio:.2f} times their first share")


def learned_finding(analysis: Mapping[str, Any]) -> str:
    """The learned hierarchy (§5, future work: data-driven hierarchies): how well a hierarchy
    clustered from the run recovers the given one, and whether hypernym bias is stronger under it.

    ``analysis`` is ``analysis.learned_hierarchy.analyse_learned``'s. Hypernym bias under a tree is
    the gap τ(R_n) − τ(S_n); per hypernym space (``bias_comparison``), a stronger gap holds, one
    within the sd of the random draws ("as strong") or weaker fails; spaces that are not comparable
    are left out.
    """
    origin = analysis["learned_from"]
    cuts = ", ".join(f"{c['space']} {c['ari']:.2f}" for c in analysis["cuts"])
    conv = analysis["convergence"]
    rows = conv["spaces"]

    def gaps(kind: str) -> str:
        return ", ".join("never" if (g := bias_gap(r[kind], r[f"random_{kind}"])) is None
                         else f"{g:.1f}" for r in rows)

    compared = [bias_comparison(r) for r in rows]
    outcomes: list[Outcome] = [v == "stronger" for v in compared if v != "not comparable"]
    counts = ", ".join(f"{v} in {compared.count(v)}" for v in
                       ("stronger", "as strong", "weaker", "not comparable") if v in compared)
    circular = (" The hierarchy was learned from the evaluated split itself, which favours it."
                if origin["circular"] else "")
    numbers = (
        f"learned from {LearnedFrom.from_dict(origin).describe()}, the hierarchy has a CCC of "
        f"{analysis['ccc']:.2f} with the given one (LCA heights) and its cuts agree with the given "
        f"ones at ARI {cuts}; on the "
        f"{origin['evaluated']} split, hypernyms converge ahead of random groupings of the same "
        f"sizes by τ(R) − τ(S) = {gaps('learned')} epochs ({', '.join(r['space'] for r in rows)}) "
        f"under the learned tree and {gaps('given')} under the given one (τ at "
        f"{100 * conv['q']:.0f}%, R the mean of {conv['draws']} draws): hypernym bias under the "
        f"learned tree is {counts} of {len(rows)} spaces (a difference within the sd of the random "
        "draws counts as equal)")
    claim = ("the paper's suggestion that a hierarchy learned from the data describes what the "
             "network learns better than the given one, so that hypernym bias is stronger under it "
             "(§5, future work)")
    if not outcomes:
        return f"No hypernym space is comparable under both trees: {numbers}.{circular}"
    return _sentence(outcomes, claim, numbers) + circular


# ------------------------------------------------------------------------------- runs and compare
def run_findings(metrics: pd.DataFrame, summary: Mapping[str, Any], spaces: SpaceSet,
                 split: str) -> list[str]:
    """The findings ``summary.json`` keeps and the CLI prints after a run, in report order:
    convergence, then NC and the manifold when measured."""
    found: list[str | None] = [convergence_finding(summary, spaces, split=split)]
    if metrics.metric.eq("nc1").any():
        found.append(collapse_finding(metrics))
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
    hyper = [s for s in base_tau if s != FINE and not is_random_space(s)]
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


__all__ = ["CCC_LABELS", "CCC_METHODS", "MIXED", "NC_MEASURES", "NOT_SUPPORTED", "SUPPORTS",
           "Outcome", "blur_finding", "ccc_table_finding", "chance_severity", "collapse_finding",
           "comparison_finding", "convergence_finding", "cover_spaces_finding", "drop_epoch",
           "learned_finding", "loss_terms_finding", "manifold_finding", "picture_finding",
           "probe_training_finding", "run_findings", "severity_finding", "verdict"]
