"""Linear probes (App. C.4): ridge against NumPy least squares, logistic on separable data, scoring in
label spaces against predictions mapped by hand."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from hypbias.analysis import Labelled, LinearProbe, probe, probe_in_spaces
from hypbias.analysis.probe_comparison import probe_comparison
from hypbias.analysis.probes import group_map
from hypbias.labelspace import LabelSpace
from hypbias.models import create
from hypbias.report.figures_manifold import plot_probe_comparison


def blobs(rng, num_classes=8, per_class=15, dim=6, spread=4.0, noise=1.0):
    centres = rng.normal(size=(num_classes, dim)) * spread
    y = np.repeat(np.arange(num_classes), per_class)
    return centres[y] + noise * rng.normal(size=(len(y), dim)), y


def standardise(x_train, x):
    scale = x_train.std(axis=0)
    return (x - x_train.mean(axis=0)) / np.where(scale > 0, scale, 1.0)


def ridge_reference(x, y, x_test, num_classes, alpha):
    """min ‖Z W + b − Y‖² + alpha‖W‖² as one augmented least-squares problem for np.linalg.lstsq."""
    z = standardise(x, x)
    targets = np.eye(num_classes)[y]
    d = z.shape[1]
    design = np.vstack([np.hstack([z, np.ones((len(z), 1))]),
                        np.hstack([np.sqrt(alpha) * np.eye(d), np.zeros((d, 1))])])
    rhs = np.vstack([targets, np.zeros((d, num_classes))])
    coef = np.linalg.lstsq(design, rhs, rcond=None)[0]
    return np.hstack([standardise(x, x_test), np.ones((len(x_test), 1))]) @ coef


@pytest.mark.parametrize(("dim", "alpha"), [(6, 1.0), (6, 0.0), (200, 2.0)])
def test_ridge_scores_equal_the_numpy_least_squares_solution(rng, dim, alpha):
    x, y = blobs(rng, dim=dim)  # dim 200 > 120 samples: the dual system
    x_test, _ = blobs(rng, dim=dim)
    model = LinearProbe("ridge", alpha=alpha).fit(x, y)
    expected = ridge_reference(x, y, x_test, 8, alpha)
    np.testing.assert_allclose(model.decision_function(x_test).numpy(), expected, atol=1e-8)


def test_logistic_probe_separates_separable_data(rng):
    x, y = blobs(rng, num_classes=10, spread=6.0, noise=0.5)
    x_test = x + 0.3 * rng.normal(size=x.shape)  # the same classes, fresh noise
    assert probe(x, y, x_test, y, method="logistic")["H"] >= 99.0
    assert (LinearProbe().fit(x, y).predict(x) == y).all()


def test_scores_in_label_spaces_equal_mapped_accuracy(rng):
    x, y = blobs(rng, num_classes=8, spread=1.0, noise=1.5)  # overlapping: many mistakes
    x_test, y_test = blobs(np.random.default_rng(3), num_classes=8, spread=1.0, noise=1.5)
    spaces = {"H": None, "S2": LabelSpace([0, 0, 0, 0, 1, 1, 1, 1]),
              "odd": LabelSpace([0, 1, 0, 1, 0, 1, 0, 1])}
    for method in ("logistic", "ridge"):
        model = LinearProbe(method).fit(x, y)
        pred = model.predict(x_test)
        got = model.score(x_test, y_test, spaces)
        assert got["H"] == pytest.approx(100 * np.mean(pred == y_test))
        for name in ("S2", "odd"):
            t = spaces[name].t
            assert got[name] == pytest.approx(100 * np.mean(t[pred] == t[y_test]))
        assert probe(x, y, x_test, y_test, spaces, method=method) == got
    assert got["H"] < 90  # the data really is confusable, so the spaces differ from H


def test_probe_accepts_tensors_and_keeps_constant_features(rng):
    x, y = blobs(rng)
    x[:, 0] = 3.0  # zero variance: standardisation must not divide by zero
    as_numpy = probe(x, y, x, y, method="ridge")
    as_torch = probe(torch.from_numpy(x).float(), torch.from_numpy(y), torch.from_numpy(x).float(),
                     torch.from_numpy(y), method="ridge")
    assert as_numpy == as_torch
    assert np.isfinite(as_numpy["H"])


def test_probe_validates_input(rng):
    x, y = blobs(rng)
    with pytest.raises(ValueError, match=re.escape(
            "The 'method' parameter of LinearProbe must be one of 'logistic', 'ridge'. "
            "Got 'svm' instead.")):
        probe(x, y, x, y, method="svm")
    with pytest.raises(ValueError, match=re.escape(
            "The 'labels' parameter of LinearProbe.fit must have one label per row (120). "
            "Got 119 instead.")):
        LinearProbe().fit(x, y[1:])
    with pytest.raises(ValueError, match=re.escape(
            "The 'spaces' parameter of probe must map 8 classes. Got spaces of [4] classes instead.")):
        probe(x, y, x, y, {"S": LabelSpace([0, 0, 1, 1])}, num_classes=8)


def test_probe_split_allow_fewer_halves_small_classes():
    from hypbias.analysis.sampling import probe_split

    labels = np.array([0] * 30 + [1] * 6 + [2] * 1)
    train, test = probe_split(labels, k=10, seed=0, allow_fewer=True)
    assert np.bincount(labels[train], minlength=3).tolist() == [10, 3, 0]
    assert np.bincount(labels[test], minlength=3).tolist() == [20, 3, 1]
    assert not set(train) & set(test)
    assert len(train) + len(test) == len(labels)


def test_probes_trained_in_a_hypernym_space_equal_numpy_ridge_on_group_targets(rng):
    """Table 7: a probe trained in S learns the groups; its accuracy in S and in a coarser space
    equals a NumPy least-squares fit on one-hot group targets, mapped by hand."""
    x, y = blobs(rng, num_classes=8, spread=1.0, noise=1.5)
    x_test, y_test = blobs(np.random.default_rng(7), num_classes=8, spread=1.0, noise=1.5)
    s4 = LabelSpace([0, 0, 1, 1, 2, 2, 3, 3])
    s2 = LabelSpace([0, 0, 0, 0, 1, 1, 1, 1])
    odd = LabelSpace([0, 1, 0, 1, 0, 1, 0, 1])  # not a coarsening of S4
    spaces = {"H": None, "S4": s4, "S2": s2, "odd": odd}
    got = probe_in_spaces(x, y, x_test, y_test, spaces, ["H", "S4"], method="ridge", alpha=2.0)

    pred_groups = ridge_reference(x, s4.t[y], x_test, 4, 2.0).argmax(axis=1)
    assert got["S4", "S4"] == pytest.approx(100 * np.mean(pred_groups == s4.t[y_test]))
    s4_to_s2 = np.array([0, 0, 1, 1])
    assert got["S4", "S2"] == pytest.approx(100 * np.mean(s4_to_s2[pred_groups] == s2.t[y_test]))
    assert ("S4", "H") not in got and ("S4", "odd") not in got

    pred_fine = ridge_reference(x, y, x_test, 8, 2.0).argmax(axis=1)
    for name, space in spaces.items():
        t = np.arange(8) if space is None else space.t
        assert got["H", name] == pytest.approx(100 * np.mean(t[pred_fine] == t[y_test]))
    assert probe(x, y, x_test, y_test, spaces, method="ridge", alpha=2.0) == pytest.approx(
        {name: got["H", name] for name in spaces})


def test_group_map_finds_coarsenings_only():
    s4 = LabelSpace([0, 0, 1, 1, 2, 2, 3, 3])
    s2 = LabelSpace([1, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(group_map(s4, s2, 8), [1, 1, 0, 0])
    np.testing.assert_array_equal(group_map(None, s4, 8), s4.t)
    np.testing.assert_array_equal(group_map(s4, s4, 8), [0, 1, 2, 3])
    assert group_map(s2, s4, 8) is None
    assert group_map(s4, None, 8) is None


def test_probe_in_spaces_names_an_unknown_training_space(rng):
    x, y = blobs(rng)
    with pytest.raises(ValueError, match=re.escape(
            "The 'train_in' parameter of probe_in_spaces must name spaces among 'H'. "
            "Got 'S9' instead.")):
        probe_in_spaces(x, y, x, y, {"H": None}, ["S9"])


def test_probe_comparison_of_a_cnn_matches_hand_pooled_numpy_probes(rng):
    """Fig. 14: the few-shot ridge probe equals a NumPy least-squares fit on 2×2-average-pooled maps;
    map layers get three trained probes (features of 1, 4 and 16 cells per channel), vector layers
    one."""
    torch.manual_seed(0)
    model = create("small_cnn", num_classes=6, in_channels=3, widths=(4, 5)).eval()
    means = rng.normal(size=(6, 3, 1, 1))

    def sample(n):
        y = np.repeat(np.arange(6), n)
        x = means[y] + 0.7 * rng.normal(size=(len(y), 3, 8, 8))
        return Labelled(torch.as_tensor(x, dtype=torch.float32), y)

    many, few, test = sample(20), sample(3), sample(5)
    spaces = {"H": None, "S2": LabelSpace([0, 0, 0, 1, 1, 1])}
    passes = []
    handle = model.register_forward_pre_hook(lambda module, args: passes.append(len(args[0])))
    rows = probe_comparison(model, ["blocks.block1", "head"], many, few, test, spaces, 6, epoch=4,
                            max_iter=50)
    handle.remove()
    # one pass per window the probes read: three for many and test, one for the few-shot sample
    assert sorted(passes) == [18, 30, 30, 30, 120, 120, 120]
    got = {(r["layer"], r["space"], r["metric"]): r["value"] for r in rows}
    kinds = {m.split("=")[1] for _, _, m in got}
    assert kinds == {"fewshot-ridge", "fewshot-logistic", "trained-small", "trained-balanced",
                     "trained-large", "trained"}
    assert {m.split("=")[1] for layer, _, m in got if layer == "head"} == {
        "fewshot-ridge", "fewshot-logistic", "trained"}

    with torch.no_grad():
        def pooled(x):
            return F.adaptive_avg_pool2d(model.blocks.block1(x), 2).flatten(1).double().numpy()

        scores = ridge_reference(pooled(few.x), few.y, pooled(test.x), 6, 1.0)
    pred = scores.argmax(axis=1)
    assert got["blocks.block1", "H", "probe_accuracy@probe=fewshot-ridge"] == pytest.approx(
        100 * np.mean(pred == test.y))
    t = spaces["S2"].t
    assert got["blocks.block1", "S2", "probe_accuracy@probe=fewshot-ridge"] == pytest.approx(
        100 * np.mean(t[pred] == t[test.y]))

    fig = plot_probe_comparison(pd.DataFrame(rows))
    assert [ax.get_title() for ax in fig.axes] == ["scored in H", "scored in S2"]
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels[:2] == ["few-shot (closed form)", "few-shot (logistic)"]
    ridge_line = fig.axes[0].lines[0]
    np.testing.assert_allclose(ridge_line.get_xdata(), [0, 1])
    assert ridge_line.get_ydata()[0] == pytest.approx(100 * np.mean(pred == test.y))
