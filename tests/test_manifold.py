"""Covers, CCCs, sampling, embedding and the per-layer pipeline (Sec. 3.2, App. C.3).

References are straightforward NumPy/SciPy computations: the radius integral of Eq. 12–14 on a fine
grid, Pearson's r from scipy.stats over explicitly listed pairs, class means by hand.
"""

from __future__ import annotations

import importlib.machinery
import re
import sys
import types

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from scipy.stats import pearsonr
from torch import nn

from harness import assert_refused
from hypbias.analysis import (
    FeatureEmbedder,
    Labelled,
    ManifoldSettings,
    embed,
    manifold_metrics,
    probe_split,
    sample_query_support,
)
from hypbias.analysis.embedding import exact_knn
from hypbias.data.synthetic import synthetic_hierarchy
from hypbias.errors import MissingDependencyError
from hypbias.labelspace import LabelSpace
from hypbias.metrics.manifold import (
    PearsonAccumulator,
    class_mean_distances,
    cophenetic_correlation,
    cover_distance,
    covers,
    example_pair_correlation,
    mutual_cover_mean,
    self_cover_mean,
)


# ---------------------------------------------------------------------------------------- references
def integral_covers(query, yq, support, ys, num_classes, r_max=None, steps=20001):
    """Eq. 12–14 read literally: P_r(i, j) on a grid of radii, integrated by the trapezoid rule."""
    d = cdist(query, support)
    dmin = np.stack([d[:, ys == j].min(axis=1) for j in range(num_classes)], axis=1)
    r_max = dmin.max() if r_max is None else r_max
    radii = np.linspace(0.0, r_max, steps)
    out = np.zeros((num_classes, num_classes))
    for i in range(num_classes):
        p_r = (dmin[yq == i][:, :, None] < radii).mean(axis=0)  # (C, steps)
        out[i] = np.trapezoid(p_r, radii, axis=1) / r_max
    return out


def random_sample(rng, num_classes=6, k=5, dim=3, unequal=False):
    counts = rng.integers(2, 2 * k, size=num_classes) if unequal else np.full(num_classes, k)
    yq = np.repeat(np.arange(num_classes), counts)
    ys = np.repeat(np.arange(num_classes), counts[::-1])
    centres = rng.normal(size=(num_classes, dim)) * 2
    query = centres[yq] + rng.normal(size=(len(yq), dim))
    support = centres[ys] + rng.normal(size=(len(ys), dim))
    return query, yq, support, ys


# ---------------------------------------------------------------------------------------- covers
@pytest.mark.parametrize("unequal", [False, True])
def test_covers_equal_the_numerical_radius_integral(rng, unequal):
    query, yq, support, ys = random_sample(rng, unequal=unequal)
    expected = integral_covers(query, yq, support, ys, 6)
    np.testing.assert_allclose(covers(query, yq, support, ys), expected, atol=1e-3)


def test_covers_with_a_smaller_r_max_clamp_far_queries_to_zero(rng):
    query, yq, support, ys = random_sample(rng)
    r_max = 1.5
    got = covers(query, yq, support, ys, r_max=r_max)
    np.testing.assert_allclose(got, integral_covers(query, yq, support, ys, 6, r_max), atol=1e-3)
    assert (got == 0).any()  # the clamp matters for this data


def test_covers_of_a_tiny_example_by_hand():
    # Queries 0 (class 0) and 3 (class 1); supports 1 (class 0) and 3 (class 1); r_max = 3.
    got = covers([[0.0], [3.0]], [0, 1], [[1.0], [3.0]], [0, 1])
    np.testing.assert_allclose(got, [[1 - 1 / 3, 0.0], [1 - 2 / 3, 1.0]])


@given(chunk=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_covers_do_not_depend_on_chunking_or_support_order(chunk, seed):
    rng = np.random.default_rng(seed)
    query, yq, support, ys = random_sample(rng, num_classes=5, k=4)
    whole = covers(query, yq, support, ys)
    perm = rng.permutation(len(ys))
    chunked = covers(query, yq, support[perm], ys[perm], chunk_size=chunk)
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12)


def test_covers_accept_torch_and_float32(rng):
    query, yq, support, ys = random_sample(rng)
    ref = covers(query, yq, support, ys)
    as_torch = covers(torch.from_numpy(query), torch.from_numpy(yq), torch.from_numpy(support),
                      torch.from_numpy(ys))
    np.testing.assert_allclose(as_torch, ref, atol=1e-12)
    single = covers(query.astype(np.float32), yq, support.astype(np.float32), ys)
    np.testing.assert_allclose(single, ref, atol=1e-5)


def test_covers_of_identical_points_are_one():
    got = covers(np.zeros((4, 2)), [0, 0, 1, 1], np.zeros((2, 2)), [0, 1])
    np.testing.assert_array_equal(got, np.ones((2, 2)))


def test_covers_reject_bad_input(rng):
    query, yq, support, ys = random_sample(rng)
    with pytest.raises(ValueError, match=re.escape(
            "The 'query_labels' parameter of covers must hold every class 0..6; "
            "class 6 has no points (1 classes missing).")):
        covers(query, yq, support, ys, num_classes=7)
    with pytest.raises(ValueError, match=re.escape(
            "The 'support' parameter of covers must have the query's dimension 3. Got 2 instead.")):
        covers(query, yq, support[:, :2], ys)
    with pytest.raises(ValueError, match=re.escape(
            "The 'r_max' parameter of covers must be a finite float > 0. Got -1.0 instead.")):
        covers(query, yq, support, ys, r_max=-1.0)
    with pytest.raises(ValueError, match=re.escape(
            "The 'query_labels' parameter of covers must have length 30. Got 29 instead.")):
        covers(query, yq[1:], support, ys)


def test_self_and_mutual_cover_means_and_cover_distance():
    a = np.array([[0.9, 0.2, 0.1], [0.4, 0.8, 0.0], [0.3, 0.5, 0.7]])
    assert self_cover_mean(a) == pytest.approx((0.9 + 0.8 + 0.7) / 3)
    assert mutual_cover_mean(a) == pytest.approx((0.2 + 0.1 + 0.4 + 0.0 + 0.3 + 0.5) / 6)
    d = cover_distance(a)
    assert d[0, 1] == pytest.approx(1 - (0.2 + 0.4) / 2)
    np.testing.assert_allclose(d, d.T)


def test_self_cover_exceeds_mutual_cover_for_separated_classes(rng):
    query, yq, support, ys = random_sample(rng, dim=5)
    a = covers(query * 5, yq, support * 5, ys)
    assert self_cover_mean(a) > mutual_cover_mean(a) + 0.2


# ---------------------------------------------------------------------------------------- correlations
def test_cophenetic_correlation_equals_pearson_over_upper_pairs(rng):
    c = 9
    f = rng.random((c, c))
    w = rng.integers(1, 7, size=(c, c)).astype(float)
    iu = np.triu_indices(c, 1)
    assert cophenetic_correlation(f, w) == pytest.approx(pearsonr(f[iu], w[iu])[0], abs=1e-12)


def test_cophenetic_correlation_rejects_mismatched_shapes_and_is_nan_when_constant():
    with pytest.raises(ValueError, match=re.escape(
            "The 'd_hierarchy' parameter of cophenetic_correlation must have the shape of "
            "d_feature (3, 3). Got (4, 4) instead.")):
        cophenetic_correlation(np.ones((3, 3)), np.ones((4, 4)))
    assert np.isnan(cophenetic_correlation(np.ones((4, 4)), np.eye(4)))


def test_pearson_accumulator_merges_by_addition(rng):
    x, y = rng.normal(size=50), rng.normal(size=50)
    left, right = PearsonAccumulator(), PearsonAccumulator()
    left.update(x[:20], y[:20])
    right.update(torch.from_numpy(x[20:]), torch.from_numpy(y[20:]))
    assert left.merge(right) is left
    assert left.compute() == pytest.approx(pearsonr(x, y)[0], abs=1e-12)


@pytest.mark.parametrize(("x", "y", "message"), [
    ([1.0, np.nan], [1.0, 2.0], "The 'x' parameter of PearsonAccumulator.update must be finite. "
                                "Got 1 non-finite values (the first: nan) instead."),
    ([1.0, 2.0], [1.0, 2.0, 3.0], "The 'y' parameter of PearsonAccumulator.update must have the "
                                  "non-empty shape of x (2,). Got (3,) instead."),
    ([], [], "The 'y' parameter of PearsonAccumulator.update must have the non-empty shape of x "
             "(0,). Got (0,) instead."),
])
def test_pearson_accumulator_refuses_bad_pairs(x, y, message):
    assert_refused(lambda: PearsonAccumulator().update(np.array(x), np.array(y)), message)


def test_class_mean_distances_match_numpy(rng):
    x = rng.normal(size=(40, 4))
    y = rng.integers(0, 5, size=40)
    y[:5] = np.arange(5)
    means = np.stack([x[y == c].mean(axis=0) for c in range(5)])
    expected = np.linalg.norm(means[:, None] - means[None], axis=2)
    np.testing.assert_allclose(class_mean_distances(x, y, 5), expected, atol=1e-9)


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_example_pair_correlation_equals_pearson_over_cross_class_pairs(rng, chunk):
    query, yq, support, ys = random_sample(rng, unequal=True)
    w = rng.integers(1, 5, size=(6, 6)).astype(float)
    d = cdist(query, support)
    cross = yq[:, None] != ys[None, :]
    expected = pearsonr(d[cross], w[yq][:, ys][cross])[0]
    got = example_pair_correlation(query, yq, support, ys, w, chunk_size=chunk)
    assert got == pytest.approx(expected, abs=1e-10)


def hierarchical_centres(rng, hierarchy, dim=8):
    """Class centres summing one random vector per tree ancestor, 3x larger per level up."""
    vectors = {node: rng.normal(size=dim) * 3.0 ** hierarchy.node_height(node)
               for node in hierarchy.nodes}
    return np.stack([sum(vectors[a] for a in [c, *hierarchy.ancestors(c)])
                     for c in hierarchy.classes])


def points(rng, centres, k, noise=0.7):
    """K noisy points per class around ``centres`` (C, dim); labels sorted by class."""
    y = np.repeat(np.arange(len(centres)), k)
    return centres[y] + noise * rng.normal(size=(len(y), centres.shape[1])), y


def test_all_three_cccs_are_high_for_hierarchical_points_and_low_for_shuffled_classes(rng):
    h = synthetic_hierarchy((3, 4))
    w = h.graph_distance_matrix()
    centres = hierarchical_centres(rng, h)
    query, yq = points(rng, centres, 10)
    support, ys = points(rng, centres, 10)
    aligned = [cophenetic_correlation(cover_distance(covers(query, yq, support, ys)), w),
               cophenetic_correlation(class_mean_distances(query, yq), w),
               example_pair_correlation(query, yq, support, ys, w)]
    assert min(aligned) > 0.7
    shuffled = rng.permutation(h.num_classes)
    w_shuffled = w[shuffled][:, shuffled]
    assert cophenetic_correlation(class_mean_distances(query, yq), w_shuffled) < 0.3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_finite_features_give_the_measures_of_the_same_features_at_unit_scale(rng, dtype):
    """Features of ~1e30 (a diverging run) overflow squared float32 distances; every measure is
    defined by the geometry alone, so it must equal the measure of the features at unit scale
    (covers with an explicit r_max scaled with them, class-mean distances scaled back)."""
    h = synthetic_hierarchy((3, 4))
    w = h.graph_distance_matrix()
    centres = hierarchical_centres(rng, h)
    query, yq = points(rng, centres, 6)
    support, ys = points(rng, centres, 6)
    scale = 1e30 if dtype == np.float32 else 1e200
    unit = (query.astype(dtype), support.astype(dtype))
    huge = (unit[0] * dtype(scale), unit[1] * dtype(scale))
    a_unit, a_huge = covers(unit[0], yq, unit[1], ys), covers(huge[0], yq, huge[1], ys)
    np.testing.assert_allclose(a_huge, a_unit, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(covers(huge[0], yq, huge[1], ys, r_max=3.0 * scale),
                               covers(unit[0], yq, unit[1], ys, r_max=3.0), rtol=1e-5, atol=1e-6)
    assert cophenetic_correlation(cover_distance(a_huge), w) == pytest.approx(
        cophenetic_correlation(cover_distance(a_unit), w), abs=1e-5)
    assert example_pair_correlation(*huge[:1], yq, huge[1], ys, w) == pytest.approx(
        example_pair_correlation(unit[0], yq, unit[1], ys, w), abs=1e-5)
    d_huge, d_unit = class_mean_distances(huge[0], yq), class_mean_distances(unit[0], yq)
    assert np.isfinite(d_huge).all()
    np.testing.assert_allclose(d_huge / scale, d_unit, rtol=1e-5)
    assert cophenetic_correlation(d_huge, w) == pytest.approx(cophenetic_correlation(d_unit, w),
                                                              abs=1e-6)


# ---------------------------------------------------------------------------------------- sampling
def test_query_support_is_disjoint_stratified_and_seeded(rng):
    labels = rng.integers(0, 7, size=700)
    qs = sample_query_support(labels, k=4, seed=3)
    assert not set(qs.query) & set(qs.support)
    np.testing.assert_array_equal(np.bincount(labels[qs.query], minlength=7), np.full(7, 4))
    np.testing.assert_array_equal(np.bincount(labels[qs.support], minlength=7), np.full(7, 4))
    again = sample_query_support(labels, k=4, seed=3)
    np.testing.assert_array_equal(again.query, qs.query)
    np.testing.assert_array_equal(again.support, qs.support)
    other = sample_query_support(labels, k=4, seed=4)
    assert not np.array_equal(other.query, qs.query)


def test_query_support_with_too_few_examples():
    labels = np.array([0] * 10 + [1] * 3)
    with pytest.raises(ValueError, match=re.escape(
            "The 'labels' parameter of sample_query_support has 3 examples of class 1; 10 are "
            "needed (2K with K = 5); pass allow_fewer=True to use what there is.")):
        sample_query_support(labels, k=5)
    qs = sample_query_support(labels, k=5, allow_fewer=True)
    assert (np.bincount(labels[qs.query]) == [5, 2]).all()
    assert (np.bincount(labels[qs.support]) == [5, 1]).all()
    with pytest.raises(ValueError, match="has 1 examples of class 1; 2 are needed"):
        sample_query_support(np.array([0, 0, 1]), k=5, allow_fewer=True)


def test_probe_split_takes_k_per_class_and_keeps_the_rest(rng):
    labels = rng.integers(0, 5, size=200)
    train, test = probe_split(labels, k=10, seed=0)
    assert (np.bincount(labels[train], minlength=5) == 10).all()
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(200))
    with pytest.raises(ValueError, match=re.escape(
            "The 'labels' parameter of probe_split has 2 examples of class 1; more than k = 10 "
            "are needed to keep some for testing.")):
        probe_split(np.array([0] * 20 + [1] * 2), k=10)


# ---------------------------------------------------------------------------------------- embedding
def test_umap_embedding_is_reproducible_and_keeps_clusters(rng):
    centres = rng.normal(size=(4, 20)) * 6
    y = np.repeat(np.arange(4), 30)
    x = (centres[y] + rng.normal(size=(120, 20))).astype(np.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first = embed(x, dim=3, seed=7, n_neighbors=10, n_epochs=50)
        assert torch.get_num_threads() == 1  # umap-learn must not change torch's thread pool
    finally:
        torch.set_num_threads(threads)
    second = embed(x, dim=3, seed=7, n_neighbors=10, n_epochs=50)
    assert first.shape == (120, 3)
    np.testing.assert_array_equal(first, second)
    d = cdist(first, first)
    np.fill_diagonal(d, np.inf)
    assert (y[d.argmin(axis=1)] == y).mean() > 0.95
    as_tensor = embed(torch.from_numpy(x), dim=3, seed=7, n_neighbors=10, n_epochs=50)
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_array_equal(as_tensor.numpy(), first)


def test_exact_knn_matches_a_brute_force_sort(rng):
    x = rng.normal(size=(50, 6)).astype(np.float32)
    indices, dists = exact_knn(x, 5, chunk_elements=7 * 50)  # several chunks
    d = cdist(x, x)
    np.testing.assert_array_equal(indices, np.argsort(d, axis=1)[:, :5])
    np.testing.assert_allclose(dists, np.sort(d, axis=1)[:, :5], atol=1e-5)
    assert (dists[:, 0] == 0).all()


def test_raw_space_returns_the_features_unchanged():
    x = torch.randn(10, 4)
    emb = FeatureEmbedder(space="raw")
    assert emb.fit_transform(x) is x
    assert emb.settings_ == {"space": "raw"}


def test_missing_umap_gives_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(MissingDependencyError, match=re.escape("Install it with: pip install umap-learn")):
        embed(np.zeros((10, 3)))


def _fake_module(name, **attrs):
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for key, value in attrs.items():
        setattr(mod, key, value)
    return mod


def test_backends_receive_single_thread_seeded_settings(monkeypatch):
    calls = []

    class FakeUMAP:
        def __init__(self, **kwargs):
            calls.append(kwargs)

        def fit_transform(self, data):
            return np.zeros((len(data), calls[-1]["n_components"]))

    monkeypatch.setitem(sys.modules, "umap", _fake_module("umap", UMAP=FakeUMAP, __version__="x"))
    emb = FeatureEmbedder(dim=4, seed=9, n_neighbors=5)
    assert emb.fit_transform(np.ones((8, 3))).shape == (8, 4)
    assert calls[-1]["n_jobs"] == 1
    assert calls[-1]["random_state"] == 9
    assert calls[-1]["precomputed_knn"][0].shape == (8, 5)
    assert emb.settings_["backend"] == "umap-learn"
    assert emb.settings_["knn"] == "exact"
    cuml = _fake_module("cuml", __version__="y")
    monkeypatch.setitem(sys.modules, "cuml", cuml)
    monkeypatch.setitem(sys.modules, "cuml.manifold", _fake_module("cuml.manifold", UMAP=FakeUMAP))
    out = FeatureEmbedder(dim=2, seed=1, backend="cuml").fit_transform(torch.ones(6, 3))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (6, 2)
    assert calls[-1]["output_type"] == "numpy"
    assert "n_jobs" not in calls[-1]


def test_embed_validates_parameters():
    with pytest.raises(ValueError, match=re.escape(
            "The 'space' parameter of embed must be one of 'umap', 'raw'. Got 'pca' instead.")):
        embed(np.zeros((4, 2)), space="pca")
    with pytest.raises(ValueError, match=re.escape(
            "The 'features' parameter of embed must have shape (n_samples, n_features) with "
            "n_samples >= 2. Got shape (4,) instead.")):
        embed(np.zeros(4), space="raw")


# ---------------------------------------------------------------------------------------- pipeline
def _pipeline_inputs(rng, hierarchy, k=8):
    centres = hierarchical_centres(rng, hierarchy)
    return [Labelled(torch.as_tensor(x, dtype=torch.float32), y)
            for x, y in (points(rng, centres, n) for n in (k, k, 5, 5))]


def test_pipeline_rows_and_alignment_on_hierarchical_inputs(rng):
    h = synthetic_hierarchy((2, 3))
    query, support, train, test = _pipeline_inputs(rng, h)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 6))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(8))
        model[0].bias.fill_(10.0)  # stays positive: the ReLU keeps the geometry
    model.train()
    spaces = {"H": None, "S2": LabelSpace.from_hierarchy(h, level=1)}
    rows = manifold_metrics(model, ["1", "2"], query, support, h.graph_distance_matrix(), spaces,
                            epoch=3, settings=ManifoldSettings(space="raw"), probe_train=train,
                            probe_test=test, progress=False)
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())
    keys = {(r["layer"], r["split"], r["space"], r["metric"]) for r in rows}
    for layer in ("1", "2"):
        for metric in ("ccc_cover", "ccc_class_means", "ccc_direct", "self_cover", "mutual_cover"):
            assert (layer, "train", "H", metric) in keys
        assert (layer, "val", "H", "probe_accuracy") in keys
        assert (layer, "val", "S2", "probe_accuracy") in keys
    assert len(rows) == len(keys) == 2 * 7
    assert {r["epoch"] for r in rows} == {3}
    value = {(r["layer"], r["space"], r["metric"]): r["value"] for r in rows}
    assert min(value[("1", "H", m)] for m in ("ccc_cover", "ccc_class_means", "ccc_direct")) > 0.7
    assert value[("1", "H", "self_cover")] > value[("1", "H", "mutual_cover")]
    assert value[("1", "S2", "probe_accuracy")] >= value[("1", "H", "probe_accuracy")] > 80


def test_settings_validate_their_fields():
    with pytest.raises(ValueError, match=re.escape(
            "The 'probe_method' parameter of ManifoldSettings must be one of 'logistic', 'ridge'. "
            "Got 'svm' instead.")):
        ManifoldSettings(probe_method="svm")
    assert ManifoldSettings(dim=5).as_dict()["dim"] == 5


@pytest.mark.parametrize(("train_in", "expected"), [
    ("H", ["H"]), ("all", ["H", "S2", "S6"]), (("S6",), ["H", "S6"]), (("S6", "H", "S2"), ["H", "S6", "S2"])])
def test_probes_train_in_h_first_then_the_spaces_asked_for(train_in, expected):
    assert ManifoldSettings(probe_train_spaces=train_in).train_spaces(["S2", "H", "S6"]) == expected


def test_both_spaces_give_the_rows_of_each_space_alone_and_probes_train_in_each_space(rng):
    """space='both' = the UMAP run's rows plus the raw run's rows renamed '@space=raw'; training
    probes in every space adds '@trained=S2' rows and leaves the H-trained ones unchanged."""
    h = synthetic_hierarchy((2, 3))
    query, support, train, test = _pipeline_inputs(rng, h)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 6))
    spaces = {"H": None, "S2": LabelSpace.from_hierarchy(h, level=1)}

    def run(**settings):
        rows = manifold_metrics(model, ["1", "2"], query, support, h.graph_distance_matrix(), spaces,
                                epoch=1, probe_train=train, probe_test=test, progress=False,
                                settings=ManifoldSettings(n_epochs=20, probe_method="ridge",
                                                          **settings))
        return {(r["layer"], r["space"], r["metric"]): r["value"] for r in rows}

    both = run(space="both", probe_train_spaces="all")
    umap_only, raw_only = run(space="umap"), run(space="raw")
    for key, value in umap_only.items():
        assert both[key] == pytest.approx(value)
    for (layer, space, metric), value in raw_only.items():
        if metric != "probe_accuracy":
            assert both[layer, space, f"{metric}@space=raw"] == pytest.approx(value)
    trained = {k: v for k, v in both.items() if k[2] == "probe_accuracy@trained=S2"}
    assert sorted(trained) == [("1", "S2", "probe_accuracy@trained=S2"),
                               ("2", "S2", "probe_accuracy@trained=S2")]
    assert len(both) == len(umap_only) + 2 * 5 + 2
