"""The report's verdicts (analysis.findings) on hand-built metrics tables whose verdict is known:
each finding supports, does not support or gives mixed support to its claim, with the numbers of a
relative measure, including tables where a fixed absolute level would have been met at epoch 0."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hypbias.analysis import findings as F
from hypbias.analysis.blur import blur_table
from hypbias.analysis.layer_tables import ccc_table, probe_table
from hypbias.data.synthetic import synthetic_hierarchy
from hypbias.labelspace import build_spaces
from hypbias.metrics.rows import metric_row

SUPPORTS = "This run supports "
MIXED = "This run gives mixed support to "
NOT = "This run does not support "


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ the measures
@pytest.mark.parametrize(("outcomes", "want"), [
    ([True, True], F.SUPPORTS), ([False], F.NOT_SUPPORTED), ([False, False], F.NOT_SUPPORTED),
    ([True, False], F.MIXED), ([None], F.MIXED), ([True, None], F.MIXED), ([False, None], F.MIXED),
])
def test_verdict_of_outcomes(outcomes, want):
    assert F.verdict(outcomes) == want


def test_verdict_needs_a_comparison():
    with pytest.raises(ValueError, match="at least one comparison"):
        F.verdict([])


def plain_drop_epoch(epochs, values, share):
    """The definition written out: first epoch whose drop from the start reaches share × total."""
    pairs = [(e, v) for e, v in sorted(zip(epochs, values, strict=True)) if not math.isnan(v)]
    start, end = pairs[0][1], pairs[-1][1]
    if not start - end > 0:
        return None
    for e, v in pairs:
        if start - v >= share * (start - end):
            return e
    raise AssertionError("unreachable: the last epoch makes the whole drop")


@pytest.mark.parametrize("seed", range(20))
def test_drop_epoch_matches_the_definition(seed):
    rng = np.random.default_rng(seed)
    epochs = np.sort(rng.choice(60, size=rng.integers(2, 12), replace=False))
    values = np.exp(rng.normal(size=len(epochs)))
    values[rng.random(len(epochs)) < 0.1] = np.nan
    curve = pd.Series(values, index=epochs)
    for share in (0.5, 0.9, 1.0):
        kept = ~np.isnan(values)
        want = plain_drop_epoch(epochs[kept], values[kept], share) if kept.sum() >= 2 else None
        assert F.drop_epoch(curve, share) == want
        if want is not None:
            assert want != epochs[kept][0]  # never met before the first update


def test_drop_epoch_of_a_metric_that_does_not_fall_is_none():
    assert F.drop_epoch(pd.Series([1.0, 0.5, 1.2]), 0.5) is None
    assert F.drop_epoch(pd.Series([1.0, 1.0]), 0.5) is None
    assert F.drop_epoch(pd.Series([1.0]), 0.5) is None
    with pytest.raises(ValueError, match=r"'share' parameter of drop_epoch must be a finite float "
                                         r"in \(0.0, 1.0\]. Got 0 instead."):
        F.drop_epoch(pd.Series([2.0, 1.0]), 0)


# ------------------------------------------------------------------------------------- convergence
@pytest.fixture
def spaces():
    """S2 and S4 of a 2 × 2 × 3 tree, three random draws each."""
    return build_spaces(synthetic_hierarchy([2, 2, 3]), [2, 4], 3, 0)


def summary(taus: dict[str, float | None], draws: dict[str, list[float | None]]) -> dict:
    tau, sd = dict(taus), {}
    for name, values in draws.items():
        r = "R" + name[1:]
        tau.update({f"{r}#{k}": v for k, v in enumerate(values)})
        real = [v for v in values if v is not None]
        tau[r] = float(np.mean(real)) if real else None
        sd[r] = float(np.std(real, ddof=1)) if len(real) > 1 else 0.0
    return {"q": 0.95, "tau": {"val": tau}, "tau_sd": {"val": sd}, "draws": 3}


def test_convergence_supports_when_every_s_beats_every_draw(spaces):
    s = summary({"H": 9.0, "S2": 2.0, "S4": 4.0}, {"S2": [5.0, 6.0, 7.0], "S4": [5.0, 8.0, None]})
    assert F.convergence_finding(s, spaces) == (
        f"{SUPPORTS}the paper's claim that hypernyms are learned before random groupings of the same "
        "sizes (hypernym bias, §4.2, Fig. 1a and 4): on the val split, τ_0.95, the first epoch at "
        "95% of the best accuracy, is 2 in S2 against 6.0 ± 1.0 in R2 (S2 earlier than 3 of 3 "
        "draws) and 4 in S4 against 6.5 ± 2.1 in R4 (S4 earlier than 3 of 3 draws); the fine space "
        "H reaches it at epoch 9.")


def test_convergence_mixed_and_not_supported(spaces):
    # S2 beats the mean of its draws but not every draw; S4 beats all of its draws
    text = F.convergence_finding(summary({"H": 9.0, "S2": 5.0, "S4": 3.0},
                                         {"S2": [4.0, 7.0, 8.0], "S4": [5.0, 5.0, 6.0]}), spaces)
    assert text.startswith(MIXED)
    assert "5 in S2 against 6.3 ± 2.1 in R2 (S2 earlier than 2 of 3 draws)" in text
    # S2 ties the mean, S4 never converges
    text = F.convergence_finding(summary({"H": 9.0, "S2": 6.0, "S4": None},
                                         {"S2": [5.0, 6.0, 7.0], "S4": [5.0, 5.0, 6.0]}), spaces)
    assert text.startswith(NOT)
    assert "never in S4 against 5.3 ± 0.6 in R4 (S4 earlier than 0 of 3 draws)" in text


def test_convergence_without_the_split_is_none(spaces):
    assert F.convergence_finding(summary({"H": 1.0}, {}), spaces, split="train") is None


# --------------------------------------------------------------------------------- neural collapse
def nc_table(curves: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """(metric, space) -> values at epochs 0, 1, ...; one train row each, and a val accuracy row."""
    rows = [metric_row(e, "train", space, metric, v)
            for (metric, space), values in curves.items() for e, v in enumerate(values)]
    rows.append(metric_row(0, "val", "H", "accuracy", 1.0))
    return frame(rows)


def test_collapse_does_not_support_where_an_absolute_level_was_met_at_epoch_0():
    """S4's NC1 starts below 5 (an absolute threshold's sentence would say "S4 at epoch 0, H at
    epoch 6") but makes its drop later than H in every measure."""
    table = nc_table({
        ("nc1", "H"): [90, 40, 20, 10, 8, 6, 5],      # drop 85: half by 1 (40), 90% by 3 (10)
        ("nc1", "S4"): [0.2, 0.2, 0.19, 0.15, 0.08, 0.03, 0.02],  # drop 0.18: half 4, 90% 5
        ("nc3", "H"): [1.0, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3],        # 90% (≤ 0.37) at 2
        ("nc3", "S4"): [1.0, 0.9, 0.8, 0.6, 0.5, 0.4, 0.3],       # 90% at 6
        ("nc4", "H"): [0.9, 0.1, 0.05, 0.0, 0.0, 0.0, 0.0],       # 90% (≤ 0.09) at 2
        ("nc4", "S4"): [0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.0],       # 90% at 6
        ("nc1", "R4#0"): [3, 2, 1, 0.5, 0.1, 0.1, 0.1],           # random draws are left out
        ("nc1", "R4#1"): [3, 2, 1, 0.5, 0.1, 0.1, 0.1],
    })
    assert table[(table.metric == "nc1") & (table.epoch == 0) & (table.space == "S4")].value.iloc[0] < 5
    assert F.collapse_finding(table) == (
        f"{NOT}the paper's claim that neural collapse shows earlier in hypernym label spaces than "
        "in H (§3.3, Fig. 5): on the train split, NC1 (App. A.2) has made half of its drop from "
        "epoch 0 to epoch 6 at epoch 4 in S4 against 1 in H; 90% of it at 5 against 3; NC3 (Eq. 31) "
        "90% of its drop at 6 against 2; NC4 (Eq. 32) 90% of its drop at 6 against 2; hypernym "
        "spaces are earlier than H in 0 of 4 comparisons (not earlier: S4 NC1 50%: 4 vs 1; "
        "S4 NC1 90%: 5 vs 3; S4 NC3 90%: 6 vs 2; S4 NC4 90%: 6 vs 2).")


def test_collapse_supports_and_mixed():
    h = [9.0, 8.0, 6.0, 4.0, 2.0, 1.0]             # drop 8: half (≤ 5) at 3, 90% (≤ 1.8) at 5
    fast = [9.0, 4.0, 1.0, 0.5, 0.3, 0.2]          # half at 1, 90% at 2
    slow_start = [9.0, 10.0, 9.5, 8.0, 3.0, 0.0]   # rises first: half (≤ 4.5) at 4, 90% at 5
    supported = nc_table({("nc1", "H"): h, ("nc1", "S4"): fast})
    assert F.collapse_finding(supported) == (
        f"{SUPPORTS}the paper's claim that neural collapse shows earlier in hypernym label spaces "
        "than in H (§3.3, Fig. 5): on the train split, NC1 (App. A.2) has made half of its drop "
        "from epoch 0 to epoch 5 at epoch 1 in S4 against 3 in H; 90% of it at 2 against 5; "
        "hypernym spaces are earlier than H in 2 of 2 comparisons.")
    mixed = nc_table({("nc1", "H"): h, ("nc1", "S4"): fast, ("nc1", "S20"): slow_start})
    text = F.collapse_finding(mixed)
    assert text.startswith(MIXED)
    assert "at epoch 1 in S4 and 4 in S20 against 3 in H; 90% of it at 2, 5 against 5" in text
    assert text.endswith("earlier than H in 2 of 4 comparisons (not earlier: S20 NC1 50%: 4 vs 3; "
                         "S20 NC1 90%: 5 vs 5).")


def test_collapse_of_a_space_that_never_drops():
    table = nc_table({("nc1", "H"): [5.0, 4.0, 1.0], ("nc1", "S4"): [1.0, 2.0, 3.0]})
    text = F.collapse_finding(table)
    assert text.startswith(NOT) and "at epoch no drop in S4 against 2 in H" in text
    table = nc_table({("nc1", "H"): [5.0, 6.0, 7.0], ("nc1", "S4"): [3.0, 2.0, 1.0]})
    assert F.collapse_finding(table).startswith(SUPPORTS)


def test_collapse_without_nc_rows_is_none():
    assert F.collapse_finding(frame([metric_row(0, "val", "H", "accuracy", 1.0)])) is None
    assert F.collapse_finding(nc_table({("nc1", "H"): [2.0, 1.0]})) is None  # no hypernym space


# ----------------------------------------------------------------------------------------- manifold
def layer_table(curves: dict[tuple[str, str], list[float]], epochs: list[int]) -> pd.DataFrame:
    """(metric, layer) -> values at ``epochs``; layers in the order given (bottom first)."""
    return frame([metric_row(e, "train", "H", metric, v, layer)
                  for (metric, layer), values in curves.items()
                  for e, v in zip(epochs, values, strict=True)])


EPOCHS = [0, 1, 2, 4, 8]  # the first quarter ends at epoch 2 (⌈8/4⌉)


def test_manifold_supports_when_the_top_layer_rises_early_and_ends_above_the_bottom():
    table = layer_table({("ccc_cover", "conv"): [0.1, 0.3, 0.4, 0.45, 0.5],
                         ("ccc_cover", "fc"): [0.05, 0.6, 0.7, 0.75, 0.8]}, EPOCHS)
    assert F.manifold_finding(table) == (
        f"{SUPPORTS}the paper's claim that the feature manifold aligns with the hierarchy early in "
        "training, most in the top layers (§4.3, Fig. 6a): the CCC of the mutual-cover distance in "
        "the top layer fc is 0.05 at epoch 0, 0.70 at epoch 2, the end of the first quarter of "
        "training (87% of its rise to its best, 0.80 at epoch 8), and 0.80 at epoch 8; the bottom "
        "layer conv ends at 0.50 (the top layer above it at 4 of 5 measured epochs).")


def test_manifold_does_not_support_a_ccc_that_is_high_before_training():
    """A CCC above any fixed level at epoch 0 that never rises: an absolute threshold would call
    the hierarchy aligned before the first update."""
    table = layer_table({("ccc_cover", "conv"): [0.8, 0.85, 0.9, 0.9, 0.9],
                         ("ccc_cover", "fc"): [0.9, 0.85, 0.85, 0.8, 0.8]}, EPOCHS)
    text = F.manifold_finding(table)
    assert text.startswith(NOT)
    assert "0.90 at epoch 0, 0.85 at epoch 2" in text and "it never rises above its first value" in text


def test_manifold_mixed_and_late_rise():
    late = layer_table({("ccc_cover", "conv"): [0.1, 0.1, 0.1, 0.2, 0.3],
                        ("ccc_cover", "fc"): [0.05, 0.06, 0.07, 0.3, 0.8]}, EPOCHS)
    text = F.manifold_finding(late)
    assert text.startswith(MIXED) and "(3% of its rise to its best, 0.80 at epoch 8)" in text
    below = layer_table({("ccc_cover", "conv"): [0.1, 0.7, 0.8, 0.9, 0.9],
                         ("ccc_cover", "fc"): [0.05, 0.6, 0.7, 0.75, 0.8]}, EPOCHS)
    assert F.manifold_finding(below).startswith(MIXED)
    assert F.manifold_finding(layer_table({("ccc_cover", "fc"): [0.5]}, [0])) is None
    with pytest.raises(ValueError, match="no per-layer 'ccc_direct' rows"):
        F.manifold_finding(late, metric="ccc_direct")


def test_cover_spaces_finding_compares_the_gap_in_both_spaces():
    raw_self, raw_mutual = "self_cover@space=raw", "mutual_cover@space=raw"
    curves = {("self_cover", "fc"): [0.5, 0.7, 0.9], ("mutual_cover", "fc"): [0.5, 0.4, 0.3],
              (raw_self, "fc"): [0.6, 0.6, 0.6], (raw_mutual, "fc"): [0.5, 0.5, 0.55]}
    assert F.cover_spaces_finding(layer_table(curves, [0, 1, 5])) == (
        f"{SUPPORTS}the paper's observation that self-covers pull away from mutual covers in the "
        "UMAP embedding but not in the raw feature space (§3.2, Fig. 2): in the top layer fc, "
        "self-cover minus mutual cover goes from 0.00 at epoch 0 to 0.60 at epoch 5 in the UMAP "
        "embedding and from 0.10 at epoch 0 to 0.05 at epoch 5 in the raw feature space.")
    curves[raw_self, "fc"] = [0.6, 0.7, 0.9]
    assert F.cover_spaces_finding(layer_table(curves, [0, 1, 5])).startswith(MIXED)
    umap_only = {k: v for k, v in curves.items() if "@" not in k[0]}
    assert F.cover_spaces_finding(layer_table(umap_only, [0, 1, 5])) is None


PAPER_TABLE_6 = {  # ResNet-50 (App. C.3): direct comparison, class means, mutual cover
    "layer1": (0.06, 0.26, 0.31), "layer2": (0.20, 0.44, 0.44), "layer3": (0.49, 0.62, 0.56),
    "pre-logits": (0.58, 0.61, 0.59), "logits": (0.59, 0.62, 0.60)}


def table6(values: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    rows = [metric_row(9, "train", "H", metric, v, layer) for layer, triple in values.items()
            for metric, v in zip(("ccc_direct", "ccc_class_means", "ccc_cover"), triple, strict=True)]
    return ccc_table(frame(rows))


def test_ccc_table_finding_on_the_papers_table_6_supports_the_papers_reading():
    direct, means, cover = (np.mean([v[i] for v in PAPER_TABLE_6.values()]) for i in range(3))
    assert F.ccc_table_finding(table6(PAPER_TABLE_6)) == (
        f"{SUPPORTS}the paper's reading of Table 6 that mutual-cover CCCs grow from the bottom layer "
        "to the top, above class-mean CCCs at the bottom and below them at the top (App. C.3): at "
        "epoch 9, the mutual-cover CCC goes 0.31, 0.44, 0.56, 0.59, 0.60 from the bottom layer to the "
        "top (rising at 4 of 4 steps); mutual covers against class means give 0.31 vs 0.26 in the "
        "bottom layer layer1 and 0.60 vs 0.62 in the top layer logits; averaged over the layers, "
        f"{direct:.2f} from example pairs, {means:.2f} from class means and {cover:.2f} from mutual "
        "covers.")


def test_ccc_table_finding_mixed_and_not_supported():
    reversed_ = {layer: (d, c, m) for layer, (d, m, c) in PAPER_TABLE_6.items()}  # swap the methods
    text = F.ccc_table_finding(table6(reversed_))
    assert text.startswith(MIXED) and "(rising at 3 of 4 steps)" in text
    falling = {"a": (0.1, 0.2, 0.6), "b": (0.1, 0.3, 0.5), "c": (0.1, 0.6, 0.4)}
    text = F.ccc_table_finding(table6(falling))
    assert text.startswith(MIXED) and "(rising at 0 of 2 steps)" in text
    flat = {"a": (0.1, 0.6, 0.4), "b": (0.1, 0.6, 0.4), "c": (0.1, 0.3, 0.4)}
    assert F.ccc_table_finding(table6(flat)).startswith(NOT)


PAPER_TABLE_7 = {  # ResNet-18, logistic probes scored in S3: trained in S3, trained in H
    "layer1": (70.4, 73.2), "layer2": (77.9, 79.6), "layer3": (87.3, 87.7), "layer4": (93.4, 95.5),
    "logits": (92.6, 95.8)}


def table7(values: dict[str, tuple[float, float]]) -> pd.DataFrame:
    rows = []
    for layer, (own, fine) in values.items():
        rows.append(metric_row(30, "val", "S3", "probe_accuracy@trained=S3", own, layer))
        rows.append(metric_row(30, "val", "S3", "probe_accuracy", fine, layer))
    return probe_table(frame(rows), "S3")


def test_probe_training_finding_on_the_papers_table_7_supports_it():
    gaps = [fine - own for own, fine in PAPER_TABLE_7.values()]
    assert F.probe_training_finding(table7(PAPER_TABLE_7), "S3", 30) == (
        f"{SUPPORTS}the paper's claim that probes trained in the fine space H classify hypernyms "
        "better than probes trained in the hypernym space (App. C.4, Table 7): scored in S3 at "
        "epoch 30, probes trained in H beat probes trained in S3 in 5 of 5 layers (by "
        f"{np.mean(gaps):+.1f} points on average, {min(gaps):+.1f} to {max(gaps):+.1f}).")


def test_probe_training_finding_mixed_not_supported_and_missing():
    text = F.probe_training_finding(table7({"a": (80, 82), "b": (90, 90)}), "S3", 30)
    assert text.startswith(MIXED) and "in 1 of 2 layers" in text
    assert F.probe_training_finding(table7({"a": (80, 78)}), "S3", 30).startswith(NOT)
    assert "at epoch 30, ridge probes trained in H beat probes trained in S3 in 0 of 1 layers" in \
        F.probe_training_finding(table7({"a": (80, 78)}), "S3", 30, method="ridge")
    assert F.probe_training_finding(table7({"a": (80, 78)}), "S4", 30) is None


# ---------------------------------------------------------------------------------------- pictures
def test_picture_finding_against_chance_and_its_spread():
    # chance 24% over 100 classes: sd √(0.24 · 0.76 / 100) = 4.3%, so the bar is 32.5%
    text = F.picture_finding("head", "S4", {8: (0.92, 0.24), 0: (0.58, 0.24), 30: (1.0, 0.24)},
                             classes=100)
    assert text == (
        f"{SUPPORTS}the paper's claim that the class means keep the hypernym structure to the last "
        "epoch (App. C.2, Fig. 13): in the 2-D UMAP of the class means of layer head, the share of "
        "classes whose nearest other class mean lies in their own S4 group is 58% at epoch 0, 92% at "
        "epoch 8 and 100% at epoch 30, against 24% ± 4% for means placed at random (100 classes).")
    assert F.picture_finding("head", "S4", {0: (0.1, 0.24), 9: (0.30, 0.24)},
                             classes=100).startswith(MIXED)
    # kept at initialisation, lost by the end
    assert F.picture_finding("head", "S4", {0: (0.9, 0.24), 9: (0.24, 0.24)},
                             classes=100).startswith(NOT)


# ------------------------------------------------------------------------------ mistake severity
def test_chance_severity_is_the_mean_distance_to_another_class():
    d = synthetic_hierarchy([2, 3]).lca_distance_matrix("depth")
    c = len(d)
    want = np.mean([d[i, j] for i in range(c) for j in range(c) if i != j])
    assert F.chance_severity(d) == pytest.approx(want)
    assert math.isnan(F.chance_severity(np.zeros((1, 1))))


def severity_table(values: list[float]) -> pd.DataFrame:
    rows = [metric_row(e, "val", "H", "mistake_severity", v) for e, v in enumerate(values)]
    rows += [metric_row(e, "val", "H", "hier_dist@5", v + 0.5) for e, v in enumerate(values)]
    return frame(rows)


def test_severity_finding_verdicts():
    assert F.severity_finding(severity_table([2.7, 2.0, 1.3]), "val", chance=2.72) == (
        f"{SUPPORTS}the expectation from hypernym bias that mistakes come to fall closer in the "
        "hierarchy than random mistakes (mistake severity, Bertinetto et al. 2020): on the val split "
        "the mean LCA distance of top-1 mistakes goes from 2.70 at epoch 0 to 1.30 at epoch 2 (48% "
        "of 2.72, the distance of a uniformly random wrong class); the mean LCA distance of the top "
        "5 predictions from 3.20 to 1.80.")
    assert F.severity_finding(severity_table([3.0, 2.9]), "val", chance=2.72).startswith(MIXED)
    assert F.severity_finding(severity_table([2.0, 2.5]), "val", chance=2.72).startswith(MIXED)
    assert F.severity_finding(severity_table([2.8, 2.9]), "val", chance=2.72).startswith(NOT)
    assert F.severity_finding(severity_table([2.0, 1.5]), "val").startswith(SUPPORTS)
    assert F.severity_finding(severity_table([2.0]), "train") is None


# -------------------------------------------------------------------------------------------- blur
def blur_metrics(gain: dict[tuple[int, str], float]) -> pd.DataFrame:
    """Relative gains at σ = 4 (and 1 at σ = 0) per (epoch, space)."""
    rows = []
    for (epoch, space), g in gain.items():
        for sigma, value in ((0, 1.0), (4, g)):
            rows.append(metric_row(epoch, "val", space, f"blur_relative_gain@sigma={sigma}", value))
    return frame(rows)


def test_blur_finding_supports_the_papers_negative_result():
    table = blur_table(blur_metrics({(10, "H"): 0.2, (10, "S3"): 0.6, (195, "H"): 0.3,
                                     (195, "S3"): 0.6, (10, "R3#0"): 0.9, (195, "R3#0"): 0.1}))
    assert F.blur_finding(table) == (
        f"{SUPPORTS}the paper's finding that an early checkpoint does not lean more on low image "
        "frequencies than a late one, in hypernym spaces or in H (App. C.5, Fig. 17–18): blurred "
        "with σ = 4, the epoch-10 checkpoint keeps a relative gain G (Eq. 9 against its own "
        "unblurred accuracy) of, against the epoch-195 checkpoint, 0.20 vs 0.30 in H and 0.60 vs "
        "0.60 in S3; the early one keeps more in 0 of 2.")


def test_blur_finding_mixed_not_supported_and_one_checkpoint():
    mixed = blur_metrics({(2, "H"): 0.2, (2, "S3"): 0.7, (9, "H"): 0.3, (9, "S3"): 0.6})
    assert F.blur_finding(blur_table(mixed)).startswith(MIXED)
    low = blur_metrics({(2, "H"): 0.4, (2, "S3"): 0.7, (9, "H"): 0.3, (9, "S3"): 0.6})
    assert F.blur_finding(blur_table(low)).endswith("the early one keeps more in 2 of 2.")
    assert F.blur_finding(blur_table(low)).startswith(NOT)
    assert F.blur_finding(blur_table(blur_metrics({(2, "H"): 0.4}))) is None


# ------------------------------------------------------------------------------------- loss terms
@pytest.mark.parametrize(("coarse", "want"), [
    ((4.0, 1.0), SUPPORTS),   # share 40% -> 10% (0.25 of the first)
    ((4.0, 3.0), MIXED),      # 40% -> 30%
    ((2.0, 3.0), NOT),        # 20% -> 30%
])
def test_loss_terms_finding(coarse, want):
    table = pd.DataFrame({"H": [6.0, 5.0, 10.0 - coarse[1]], "S4": [4.0, 3.0, coarse[1]]},
                         index=pd.Index([1, 2, 3], name="epoch"))
    table.loc[1] = [10.0 - coarse[0], coarse[0]]
    text = F.loss_terms_finding(table)
    assert text.startswith(want)
    ratio = coarse[1] / coarse[0]
    assert text.endswith(f"the coarse terms make up {10 * coarse[0]:.0f}% of the training loss at "
                         f"epoch 1 and {10 * coarse[1]:.0f}% at epoch 3, {ratio:.2f} times their "
                         "first share.")
    assert F.loss_terms_finding(table[["H"]]) is None


# ------------------------------------------------------------------------------- learned hierarchy
def learned_analysis(rows: list[tuple[str, float, float, float, float]], circular: bool = False):
    """rows: (space, τ learned, τ R learned, τ given, τ R given), sd 0.5 everywhere."""
    return {
        "learned_from": {"source": "confusion", "split": "train", "epoch": 4, "method": "average",
                         "evaluated": "val", "circular": circular},
        "ccc": 0.81,
        "cuts": [{"space": r[0], "groups": 4, "ari": 0.9, "learned_sizes": [25] * 4} for r in rows],
        "convergence": {"q": 0.95, "draws": 10, "H": 13.0, "spaces": [
            {"space": s, "groups": 4, "learned": a, "random_learned": b, "random_learned_sd": 0.5,
             "given": c, "random_given": d, "random_given_sd": 0.5} for s, a, b, c, d in rows]},
    }


def test_learned_finding_verdicts():
    stronger = ("S4", 3.0, 12.0, 4.0, 12.0)   # gaps 9 against 8
    weaker = ("S20", 9.0, 12.0, 8.0, 13.0)    # gaps 3 against 5
    level = ("S8", 5.0, 12.0, 5.0, 12.3)      # gaps 7 against 7.3: within the sd
    assert F.learned_finding(learned_analysis([stronger])) == (
        f"{SUPPORTS}the paper's suggestion that a hierarchy learned from the data describes what the "
        "network learns better than the given one, so that hypernym bias is stronger under it (§5, "
        "future work): learned from the train split's confusion matrix at epoch 4 (average "
        "linkage), the hierarchy has a CCC of 0.81 with the given one (LCA heights) and its cuts "
        "agree with the given ones at ARI S4 0.90; on the val split, hypernyms converge ahead of "
        "random groupings of the same sizes by τ(R) − τ(S) = 9.0 epochs (S4) under the learned tree "
        "and 8.0 under the given one (τ at 95%, R the mean of 10 draws): hypernym bias under the "
        "learned tree is stronger in 1 of 1 spaces (a difference within the sd of the random draws "
        "counts as equal).")
    assert F.learned_finding(learned_analysis([stronger, weaker])).startswith(MIXED)
    assert F.learned_finding(learned_analysis([level])).startswith(NOT)
    text = F.learned_finding(learned_analysis([weaker], circular=True))
    assert text.startswith(NOT)
    assert text.endswith("The hierarchy was learned from the evaluated split itself, which favours it.")
    never = ("S4", None, 12.0, 4.0, 12.0)
    assert F.learned_finding(learned_analysis([never])).startswith("No hypernym space is comparable")


# ---------------------------------------------------------------------------------------- run
def test_run_findings_in_report_order(spaces):
    s = summary({"H": 9.0, "S2": 2.0, "S4": 4.0}, {"S2": [5.0, 6.0, 7.0], "S4": [5.0, 8.0, 6.0]})
    accuracy = frame([metric_row(0, "val", "H", "accuracy", 1.0)])
    assert F.run_findings(accuracy, s, spaces, "val") == [F.convergence_finding(s, spaces)]
    nc = nc_table({("nc1", "H"): [3.0, 2.0, 1.0], ("nc1", "S2"): [3.0, 1.0, 0.5]})
    manifold = layer_table({("ccc_cover", "fc"): [0.1, 0.5, 0.6]}, [0, 1, 2])
    found = F.run_findings(pd.concat([nc, manifold]), s, spaces, "val")
    assert [f.split(" the paper's claim that ")[1][:20] for f in found] == [
        "hypernyms are learne", "neural collapse show", "the feature manifold"]
