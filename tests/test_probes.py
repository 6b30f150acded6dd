"""Linear probes (App. C.4): ridge against NumPy least squares, logistic on separable data, scoring in
label spaces against predictions mapped by hand."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from hypbias.analysis import LinearProbe, probe
from hypbias.labelspace import LabelSpace


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
