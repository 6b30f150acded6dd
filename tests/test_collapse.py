"""Neural collapse from fine statistics against the plain NumPy computation from raw features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from collapse_reference import reference_collapse
from harness import assert_refused
from hypbias.data.synthetic import synthetic_hierarchy
from hypbias.labelspace import LabelSpace
from hypbias.metrics.collapse import (
    ClassStatistics,
    NearestMeanMismatch,
    angle_equality,
    equinorm,
    nearest_mean_mismatch,
    neural_collapse,
    neural_collapse_in_spaces,
    self_duality,
    superclass_classifier,
)
from hypbias.report.figures_collapse import plot_collapse, plot_equality

NC_KEYS = ["nc1", "nc2_equinorm_means", "nc2_equinorm_weights", "nc2_equiangular_means",
           "nc2_equiangular_weights", "nc2_maxangle_means", "nc2_maxangle_weights", "nc3"]


def make_data(branching: tuple[int, int], dim: int, seed: int = 0, noise: float = 1.0):
    """Unbalanced tree-structured Gaussian classes: features (N, D), labels, W, b, S, R."""
    rng = np.random.default_rng(seed)
    space = LabelSpace.from_hierarchy(synthetic_hierarchy(list(branching)), n=branching[0])
    c = space.num_classes
    means = 3.0 * rng.normal(size=(space.num_groups, dim))[space.t] + rng.normal(size=(c, dim))
    counts = rng.integers(3, 40, size=c)
    labels = rng.permutation(np.repeat(np.arange(c), counts))
    features = means[labels] + noise * rng.normal(size=(len(labels), dim))
    weight = means + 0.5 * rng.normal(size=(c, dim))
    bias = rng.normal(size=c)
    return features, labels, weight, bias, space, space.random_isomorphic(seed + 1)


def accumulate(features, labels, batch: int) -> ClassStatistics:
    stats = ClassStatistics(len(np.unique(labels)), features.shape[1])
    for i in range(0, len(labels), batch):
        stats.update(features[i:i + batch], labels[i:i + batch])
    return stats


def batches(features, labels, size: int):
    return [(features[i:i + size], labels[i:i + size]) for i in range(0, len(labels), size)]


# 12 classes in D = 20 (K <= D: Gram route) and 30 classes in D = 8 (K > D, rank D < C - 1).
DATASETS = {"wide": make_data((3, 4), 20), "narrow": make_data((5, 6), 8, seed=3)}


@pytest.mark.parametrize("data", DATASETS)
@pytest.mark.parametrize("which", ["H", "S", "R"])
def test_every_metric_matches_numpy_reference(data, which):
    features, labels, weight, bias, s, r = DATASETS[data]
    space = {"H": None, "S": s, "R": r}[which]
    stats = accumulate(features, labels, batch=37)
    ours = neural_collapse(stats, weight, bias, space)
    ours["nc4"] = nearest_mean_mismatch(stats, weight, bias, batches(features, labels, 50),
                                        {which: space})[which]
    ref = reference_collapse(features, labels, weight, bias, None if space is None else space.t)
    assert set(ours) == set(ref)
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, rel=1e-8, abs=1e-12), key


@pytest.mark.parametrize("data", DATASETS)
def test_every_space_at_once_matches_numpy_reference(data):
    features, labels, weight, bias, s, r = DATASETS[data]
    spaces = {"H": None, "S": s, "R": r}
    got = neural_collapse_in_spaces(accumulate(features, labels, batch=37), weight, bias, spaces)
    assert list(got) == list(spaces)
    for name, space in spaces.items():
        ref = reference_collapse(features, labels, weight, bias, None if space is None else space.t)
        del ref["nc4"]
        assert set(got[name]) == set(ref)
        for key, value in ref.items():
            assert got[name][key] == pytest.approx(value, rel=1e-8, abs=1e-12), (name, key)


@pytest.mark.parametrize("which", ["H", "S"])
def test_space_statistics_match_raw_features(which):
    features, labels, _, _, s, _ = DATASETS["wide"]
    space = None if which == "H" else s
    g = labels if space is None else s.t[labels]
    got = accumulate(features, labels, batch=64).compute(space)
    mu = np.stack([features[g == k].mean(axis=0) for k in range(g.max() + 1)])
    centered = features - mu[g]
    np.testing.assert_allclose(got.counts.numpy(), np.bincount(g))
    np.testing.assert_allclose(got.means.numpy(), mu, rtol=1e-12)
    np.testing.assert_allclose(got.global_mean.numpy(), features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(got.within_covariance.numpy(), centered.T @ centered / len(g),
                               rtol=1e-10, atol=1e-13)
    m = mu - features.mean(axis=0)
    np.testing.assert_allclose(got.between_covariance.numpy(), m.T @ m / len(mu), rtol=1e-12)


def test_superclass_classifier_averages_member_rows():
    weight = torch.arange(12.0, dtype=torch.float64).reshape(4, 3)
    w, b = superclass_classifier(weight, torch.tensor([1.0, 3.0, 5.0, 6.0]),
                                 LabelSpace([1, 0, 1, 1]))
    assert w.tolist() == [[3.0, 4.0, 5.0], [5.0, 6.0, 7.0]]
    assert b.tolist() == [3.0, 4.0]


def test_simplex_etf_with_self_dual_classifier_is_fully_collapsed():
    c = 5
    etf = np.eye(c) - 1.0 / c  # rows: a simplex ETF (centered, equal norms and angles)
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(c), 3))
    features = etf[labels] + 7.0  # a common offset must not matter
    stats = ClassStatistics(c, c)
    stats.update(features, labels)
    nc = neural_collapse(stats, 2.0 * etf, np.zeros(c))
    assert nc["nc1"] == pytest.approx(0.0, abs=1e-12)
    assert nc["nc3"] == pytest.approx(0.0, abs=1e-12)
    for key in NC_KEYS[1:7]:
        assert nc[key] == pytest.approx(0.0, abs=1e-12), key
    nc4 = nearest_mean_mismatch(stats, 2.0 * etf, np.zeros(c), [features], {"H": None})
    assert nc4 == {"H": 0.0}


def test_pure_nc2_and_nc3_functions_on_known_vectors():
    v = torch.tensor([[3.0, 4.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    assert equinorm(v) == pytest.approx(np.std([5, 1, 1], ddof=1) / np.mean([5, 1, 1]))
    cos = np.array([0.8, 0.6, 0.0])  # pairs (0,1), (0,2), (1,2), each an entry above and below
    assert angle_equality(v) == pytest.approx((np.std(np.r_[cos, cos], ddof=1),
                                               np.mean(np.abs(cos + 0.5))))
    assert self_duality(v, 2.0 * v) == pytest.approx(0.0, abs=1e-15)
    equiangular, maxangle = angle_equality(v[:2])
    assert equiangular == 0.0  # K = 2: the two off-diagonal entries are equal
    assert maxangle == pytest.approx(abs(0.8 + 1.0))


@pytest.mark.parametrize("k", [2, 3, 7])
def test_equiangularity_is_the_std_of_every_off_diagonal_cosine(rng, k):
    v = rng.normal(size=(k, 5))
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    cos = unit @ unit.T
    off_diagonal = cos[~np.eye(k, dtype=bool)]  # k(k - 1) entries: each pair twice
    assert off_diagonal.size == k * (k - 1)
    got = angle_equality(torch.from_numpy(v))[0]
    assert got == pytest.approx(np.std(off_diagonal, ddof=1), rel=1e-12, abs=1e-15)


def test_nc1_vanishes_with_within_class_noise():
    nc1 = []
    for noise in [1.0, 1e-1, 1e-2, 1e-3, 1e-4]:
        features, labels, weight, bias, s, _ = make_data((3, 4), 20, noise=noise)
        stats = accumulate(features, labels, batch=100)
        nc1.append([neural_collapse(stats, weight, bias, space)["nc1"] for space in (None, s)])
    nc1 = np.array(nc1)
    # Σ_W(H) scales with noise² while Σ_B hardly moves: NC1 falls by ~100 per decade of noise.
    np.testing.assert_allclose(nc1[1:, 0] / nc1[:-1, 0], 1e-2, rtol=0.05)
    assert nc1[-1, 0] < 1e-8
    # The statistics stay exact near collapse (noise 1e-4 against means of norm ~15).
    ref = reference_collapse(features, labels, weight, bias)["nc1"]
    assert nc1[-1, 0] == pytest.approx(ref, rel=1e-6)
    # In S the spread of fine means around their superclass mean remains: NC1 does not vanish.
    assert nc1[-1, 1] > 1e-3


def test_statistics_keep_their_precision_far_from_the_origin():
    """Features 1e6 from the origin: Σ_W and NC1 agree with a float64 two-pass NumPy computation.

    Raw moments (Σ h hᵀ − Σ n μ μᵀ) lost 2.6e-3 of Σ_W and 7.6e-5 of NC1 on these data; the error
    left, ~1e-10, is the rounding of features and means stored at 1e6 (ulp 1.2e-10).
    """
    features, labels, weight, bias, s, _ = make_data((3, 4), 20, seed=5)
    features = features + 1e6
    rng = np.random.default_rng(9)
    shards = [ClassStatistics(12, 20) for _ in range(3)]
    for start in range(0, len(labels), 29):
        shards[rng.integers(0, 3)].update(features[start:start + 29], labels[start:start + 29])
    stats = shards[2].merge(shards[0]).merge(shards[1])
    mu = np.stack([features[labels == c].mean(axis=0) for c in range(12)])
    centred = features - mu[labels]
    within = centred.T @ centred / len(labels)
    got = stats.within_covariance.numpy()
    assert np.abs(got - within).max() <= 1e-9 * np.abs(within).max()
    for space in (None, s):
        ours = neural_collapse(stats, weight, bias, space)["nc1"]
        ref = reference_collapse(features, labels, weight, bias, None if space is None else space.t)
        assert ours == pytest.approx(ref["nc1"], rel=1e-9)


def test_nc4_reads_the_batches_once_for_all_spaces():
    features, labels, weight, bias, s, r = DATASETS["wide"]
    stats = accumulate(features, labels, batch=1000)
    consumed = []

    def stream():
        for f, y in batches(features, labels, 40):
            consumed.append(len(y))
            yield torch.from_numpy(f).float(), torch.from_numpy(y)

    spaces = {"H": None, "S3": s, "R3#0": r}
    got = nearest_mean_mismatch(stats, torch.from_numpy(weight), torch.from_numpy(bias), stream(),
                                spaces, chunk_size=7)
    assert sum(consumed) == len(labels)
    assert list(got) == list(spaces)
    for name, space in spaces.items():
        ref = reference_collapse(features.astype(np.float32), labels, weight, bias,
                                 None if space is None else space.t)
        assert got[name] == pytest.approx(ref["nc4"], abs=1e-12)


# ---------------------------------------------------------------------------- bad input
def _stats() -> ClassStatistics:
    stats = ClassStatistics(3, 2)
    stats.update(np.eye(3)[:, :2] + np.arange(3)[:, None], np.array([0, 1, 2]))
    return stats


NAN_FEATURES = np.array([[0.0, np.nan], [1.0, 1.0]])


@pytest.mark.parametrize(("call", "message"), [
    (lambda: ClassStatistics(0, 2),
     "The 'num_classes' parameter of ClassStatistics must be an int >= 1. Got 0 instead."),
    (lambda: _stats().update(np.zeros((4, 3)), np.zeros(4, dtype=int)),
     "The 'features' parameter of ClassStatistics.update must be a non-empty float array of "
     "shape (n, 2). Got shape (4, 3) and dtype torch.float64 instead."),
    (lambda: _stats().update(np.zeros(2), np.zeros(1, dtype=int)),
     "The 'features' parameter of ClassStatistics.update must be a non-empty float array of "
     "shape (n, 2). Got shape (2,) and dtype torch.float64 instead."),
    (lambda: _stats().update(np.zeros((0, 2)), np.zeros(0, dtype=int)),
     "The 'features' parameter of ClassStatistics.update must be a non-empty float array of "
     "shape (n, 2). Got shape (0, 2) and dtype torch.float64 instead."),
    (lambda: _stats().update(np.array([["a", "b"]]), np.array([0])),
     "The 'features' parameter of ClassStatistics.update must be a numeric array or tensor. "
     "Got dtype <U1 instead."),
    (lambda: _stats().update(NAN_FEATURES, np.array([0, 1])),
     "The 'features' parameter of ClassStatistics.update must be finite. Got 1 non-finite "
     "values (the first: nan) instead."),
    (lambda: _stats().update(np.zeros((2, 2)), np.array([0, 3])),
     "The 'labels' parameter of ClassStatistics.update must hold values in [0, 3). "
     "Got values in [0, 3] instead."),
    (lambda: _stats().update(np.zeros((2, 2)), np.array([-1, 0])),
     "The 'labels' parameter of ClassStatistics.update must hold values in [0, 3). "
     "Got values in [-1, 0] instead."),
    (lambda: _stats().update(np.zeros((2, 2)), np.array([0.0, 1.0])),
     "The 'labels' parameter of ClassStatistics.update must be a 1-d integer array. "
     "Got shape (2,) and dtype torch.float64 instead."),
    (lambda: _stats().update(np.zeros((2, 2)), np.array([True, False])),
     "The 'labels' parameter of ClassStatistics.update must be a 1-d integer array. "
     "Got shape (2,) and dtype torch.bool instead."),
    (lambda: _stats().update(np.zeros((2, 2)), np.array([0, 1, 2])),
     "The 'labels' parameter of ClassStatistics.update must have length 2. Got 3 instead."),
    (lambda: _stats().merge(ClassStatistics(3, 4)),
     "The 'other' parameter of ClassStatistics.merge must be a ClassStatistics with "
     "num_classes=3, dim=2. Got num_classes=3, dim=4 instead."),
    (lambda: _stats().load_state_dict({"counts": torch.zeros(3), "means": torch.zeros(3, 2)}),
     "The 'state' parameter of ClassStatistics.load_state_dict lacks the key 'scatter'. "
     "Got keys ['counts', 'means'] instead."),
    (lambda: _stats().load_state_dict({"counts": torch.zeros(3), "means": torch.zeros(3, 3),
                                       "scatter": torch.zeros(2, 2)}),
     "The 'means' entry of ClassStatistics.load_state_dict must have shape (3, 2). "
     "Got (3, 3) instead."),
    (lambda: neural_collapse(_stats(), np.zeros((3, 5)), None),
     "The 'weight' parameter of neural_collapse must have shape (3, 2) to match the statistics. "
     "Got (3, 5) instead."),
    (lambda: neural_collapse(_stats(), np.full((3, 2), np.inf), None),
     "The 'weight' parameter of neural_collapse must be finite. Got 6 non-finite values "
     "(the first: inf) instead."),
    (lambda: neural_collapse(_stats(), np.ones((3, 2)), np.zeros(4)),
     "The 'bias' parameter of neural_collapse must have shape (3,) to match the statistics. "
     "Got (4,) instead."),
    (lambda: neural_collapse(_stats(), np.ones((3, 2)), np.array([0.0, np.nan, 0.0])),
     "The 'bias' parameter of neural_collapse must be finite. Got 1 non-finite values "
     "(the first: nan) instead."),
    (lambda: neural_collapse_in_spaces(_stats(), np.ones((3, 2)), None, [None]),
     "The 'spaces' parameter of neural_collapse_in_spaces must be a non-empty mapping of names to "
     "LabelSpace or None. Got [None] instead."),
    (lambda: neural_collapse_in_spaces(_stats(), np.ones((3, 2)), None, {"S": LabelSpace([0, 1])}),
     "The 'space' parameter of neural_collapse_in_spaces must be a LabelSpace of 3 classes or "
     "None. Got a LabelSpace of 2 classes instead."),
    (lambda: neural_collapse(_stats(), np.ones((3, 2)), None, LabelSpace([0, 1])),
     "The 'space' parameter of neural_collapse must be a LabelSpace of 3 classes or None. "
     "Got a LabelSpace of 2 classes instead."),
    (lambda: neural_collapse(_stats(), np.ones((3, 2)), None, LabelSpace([0, 0, 0])),
     "The 'space' parameter of neural_collapse must have at least 2 groups for neural collapse. "
     "Got 1 instead."),
    (lambda: neural_collapse(ClassStatistics(3, 2), np.ones((3, 2))),
     "Neural collapse needs samples of every group; group 0 of the fine space has none "
     "(3 of 3 groups are empty)."),
    (lambda: nearest_mean_mismatch(_stats(), np.ones((3, 2)), None, [np.zeros((2, 3))],
                                   {"H": None}),
     "The 'features' parameter of NearestMeanMismatch.update must be a non-empty float array of "
     "shape (n, 2). Got shape (2, 3) and dtype torch.float64 instead."),
    (lambda: nearest_mean_mismatch(_stats(), np.ones((3, 2)), None, [NAN_FEATURES], {"H": None}),
     "The 'features' parameter of NearestMeanMismatch.update must be finite. Got 1 non-finite "
     "values (the first: nan) instead."),
    (lambda: nearest_mean_mismatch(_stats(), np.ones((3, 2)), None, [], {"H": None}),
     "NearestMeanMismatch has counted no samples."),
    (lambda: NearestMeanMismatch(_stats(), np.ones((3, 2)), None, {"H": None}).merge(
        NearestMeanMismatch(_stats(), np.ones((3, 2)), None, {"S": LabelSpace([0, 0, 1])})),
     "The 'other' parameter of NearestMeanMismatch.merge must be a NearestMeanMismatch with "
     "spaces=['H'], groups=[0, 3]. Got spaces=['S'], groups=[0, 2] instead."),
    (lambda: nearest_mean_mismatch(_stats(), np.ones((3, 2)), None, [], {}),
     "The 'spaces' parameter of NearestMeanMismatch must be a non-empty mapping of names to "
     "LabelSpace or None. Got {} instead."),
])
def test_bad_input_messages(call, message):
    assert_refused(call, message)


# ---------------------------------------------------------------------------- figures
def _nc_table() -> pd.DataFrame:
    epochs = np.arange(6)
    curves = {
        "H": [10, 5, 2, 0.5, 0.05, 0.01],
        "S4": [8, 0.5, 0.05, 0.02, 0.01, 0.01],
        "S20": [9, 4, 3, 2, 1, 0.5],
        "R4#0": [9, 6, 3, 1, 0.2, 0.1],
        "R4#1": [9, 5, 2, 1, 0.4, 0.1],
        "R4#2": [9, 4, 1, 1, 0.6, 0.1],
        "R4": [9, 5, 2, 1, 0.4, 0.1],  # the tracker's mean row, redundant beside the draws
    }
    rows = [{"epoch": e, "split": "train", "space": space, "metric": metric, "value": v * scale,
             "layer": ""}
            for space, values in curves.items()
            for metric, scale in [("nc1", 1.0), ("nc3", 0.1), ("nc4", 0.01),
                                  ("nc2_equinorm_means", 0.2), ("nc2_equinorm_weights", 0.3),
                                  ("nc2_equiangular_means", 0.4), ("nc2_equiangular_weights", 0.5)]
            for e, v in zip(epochs, values, strict=True)]
    rows.append({"epoch": 0, "split": "val", "space": "H", "metric": "accuracy", "value": 50.0,
                 "layer": ""})
    return pd.DataFrame(rows)


def test_plot_collapse_draws_one_line_per_space_and_random_bands():
    fig = plot_collapse(_nc_table())
    axes = fig.get_axes()
    assert len(axes) == 3
    assert [ax.get_yscale() for ax in axes] == ["log", "linear", "linear"]
    labels = [line.get_label() for line in axes[0].lines]
    assert labels == ["H", "S4 (K=4)", "S20 (K=20)", "R4 (K=4), random: mean ± sd of 3"]
    np.testing.assert_allclose(axes[0].lines[-1].get_ydata(), [9, 5, 2, 1, 0.4, 0.1])
    np.testing.assert_allclose(axes[2].lines[0].get_ydata(), np.array([10, 5, 2, 0.5, 0.05, 0.01])
                               * 0.01)
    assert len(axes[0].collections) == 1  # the ±sd band of R4
    assert "train split" in fig._suptitle.get_text()


def test_plot_equality_has_norm_angle_and_max_angle_panels():
    axes = plot_equality(_nc_table()).get_axes()
    assert [ax.get_title() for ax in axes] == [
        "norm equality of means (std/avg)", "norm equality of weights (std/avg)",
        "angle equality of means (std cos)", "angle equality of weights (std cos)",
        "max-angle of means: avg |cos + 1/(K−1)|", "max-angle of weights: avg |cos + 1/(K−1)|"]
    np.testing.assert_allclose(axes[3].lines[1].get_ydata(), np.array([8, 0.5, 0.05, 0.02, 0.01,
                                                                         0.01]) * 0.5)
    assert axes[4].texts[0].get_text() == "not recorded"  # the table has no max-angle rows


def test_figures_without_nc_rows_are_none():
    table = _nc_table()
    accuracy_only = table[table.metric == "accuracy"]
    assert plot_collapse(accuracy_only) is None
    assert plot_equality(accuracy_only) is None
