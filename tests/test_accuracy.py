"""Greedy label-space accuracy from confusion matrices equals sample-by-sample mapped accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import assert_refused
from hypbias import LabelSpace
from hypbias.metrics import (
    convergence_epoch,
    group_confusion,
    label_space_accuracy,
    relative_accuracy,
    relative_gain,
    residual_relative_error,
)


@st.composite
def predictions_and_space(draw):
    c = draw(st.integers(2, 12))
    n = draw(st.integers(1, 200))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    pred = np.where(rng.random(n) < 0.5, y, rng.integers(0, c, n))
    groups = draw(st.integers(1, c))
    t = np.concatenate([np.arange(groups), rng.integers(0, groups, c - groups)])
    return y, pred, LabelSpace(rng.permutation(t)), c


@given(predictions_and_space())
def test_confusion_accuracy_equals_mapped_accuracy(case):
    y, pred, space, c = case
    m = np.zeros((c, c), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    expected = 100.0 * np.mean(space.apply(y) == space.apply(pred))
    assert label_space_accuracy(m, space) == pytest.approx(expected, abs=1e-10)
    assert label_space_accuracy(m) == pytest.approx(100.0 * np.mean(y == pred), abs=1e-10)
    g = group_confusion(m, space)
    expected_g = np.zeros((space.num_groups,) * 2)
    np.add.at(expected_g, (space.apply(y), space.apply(pred)), 1)
    np.testing.assert_array_equal(g, expected_g)


def test_accuracy_is_vectorised_over_epochs(rng):
    stack = rng.integers(0, 20, size=(7, 9, 9))
    space = LabelSpace(np.arange(9) % 3)
    per_epoch = [label_space_accuracy(m, space) for m in stack]
    np.testing.assert_allclose(label_space_accuracy(stack, space), per_epoch)


def test_derived_curves_by_hand():
    acc = np.array([10.0, 40.0, 80.0, 76.0])
    np.testing.assert_allclose(relative_accuracy(acc), acc / 80.0)
    np.testing.assert_allclose(relative_gain(acc, 10.0), (acc - 10) / 70.0)
    np.testing.assert_allclose(residual_relative_error(acc), (100 - acc) / 20.0 - 1)
    # rows are independent curves; chance per row
    two = np.stack([acc, acc / 2])
    np.testing.assert_allclose(relative_gain(two, np.array([10.0, 5.0]))[1], (acc / 2 - 5) / 35.0)


def test_convergence_epoch():
    acc = np.array([[10, 50, 95.5, 90, 100], [10, 20, 30, 40, 50]], dtype=float)
    np.testing.assert_array_equal(convergence_epoch(acc), [2, 4])
    np.testing.assert_array_equal(convergence_epoch(acc, q=0.5), [1, 2])
    # relative accuracy gives the same answer; custom epoch labels
    assert convergence_epoch(relative_accuracy(acc[0]), q=0.95) == 2
    assert convergence_epoch(acc[0], epochs=np.array([0, 5, 10, 15, 20])) == 10
    assert np.isnan(convergence_epoch(np.full(3, np.nan)))


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(q=1.5), "The 'q' parameter of convergence_epoch must be a finite float in (0, 1]. "
                  "Got 1.5 instead."),
    (dict(q=0), "The 'q' parameter of convergence_epoch must be a finite float in (0, 1]. "
                "Got 0 instead."),
    (dict(epochs=[0.0, 1.0, 2.0]), "The 'epochs' parameter of convergence_epoch must be a 1-d "
                                   "integer array. Got shape (3,) and dtype float64 instead."),
    (dict(epochs=[0, 1]), "The 'epochs' parameter of convergence_epoch must have length 3. "
                          "Got 2 instead."),
    (dict(epochs=[-1, 0, 1]), "The 'epochs' parameter of convergence_epoch must hold values "
                              ">= 0. Got values in [-1, 1] instead."),
    (dict(curve=np.zeros((2, 0))), "The 'curve' parameter of convergence_epoch must have at "
                                   "least one epoch on its last axis. Got shape (2, 0) instead."),
])
def test_convergence_epoch_refuses_bad_input(kwargs, message):
    args = {"curve": np.array([10.0, 50.0, 90.0]), **kwargs}
    assert_refused(lambda: convergence_epoch(**args), message)


def test_confusion_shape_errors():
    with pytest.raises(ValueError, match=r"must have shape \(\.\.\., C, C\). Got shape \(3, 4\)"):
        label_space_accuracy(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="label space has 2 classes but the confusion matrix has 3"):
        label_space_accuracy(np.eye(3), LabelSpace([0, 1]))
