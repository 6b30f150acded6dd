"""LabelSpace: mapping, random isomorphic draws, chance and theoretical accuracy (Eq. 9, 22)."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch

from harness import assert_refused
from hypbias import LabelSpace


def test_sizes_members_apply():
    s = LabelSpace([1, 0, 1, 2, 1], names=["a", "b", "c"])
    assert s.sizes.tolist() == [1, 3, 1]
    assert s.members(1).tolist() == [0, 2, 4]
    assert s.apply(np.array([3, 0])).tolist() == [2, 1]
    out = s.apply(torch.tensor([4, 1]))
    assert isinstance(out, torch.Tensor) and out.tolist() == [1, 0]
    onehot = s.one_hot()
    assert onehot.shape == (5, 3) and (onehot.argmax(1) == s.t).all()


@pytest.mark.parametrize(("labels", "message"), [
    (np.array([0, 5]), "must hold values in [0, 5). Got values in [0, 5] instead."),
    (torch.tensor([-1, 2]), "must hold values in [0, 5). Got values in [-1, 2] instead."),
    (np.array([0.0, 1.0]), "must be an integer array"),
])
def test_apply_refuses_labels_outside_the_classes(labels, message):
    with pytest.raises(ValueError, match=re.escape(f"The 'labels' parameter of LabelSpace.apply {message}")):
        LabelSpace([1, 0, 1, 2, 1]).apply(labels)


def test_random_isomorphic_keeps_sizes_and_is_seeded():
    s = LabelSpace(np.repeat(np.arange(4), [10, 30, 5, 55]))
    a, b, c = s.random_isomorphic(1), s.random_isomorphic(1), s.random_isomorphic(2)
    assert sorted(a.sizes) == sorted(s.sizes) and (a.sizes == s.sizes).all()
    assert a == b and a != c
    assert a != s


def test_chance_accuracy_with_imbalance():
    s = LabelSpace([0, 0, 1])
    counts = np.array([1, 1, 2])
    # p = (2/4, 2/4) -> 100 * (0.25 + 0.25)
    assert s.chance_accuracy(counts) == pytest.approx(50.0)
    assert LabelSpace([0, 1, 1]).chance_accuracy(counts) == pytest.approx(100 * (0.25**2 + 0.75**2))


def test_theoretical_accuracy_eq22():
    s = LabelSpace([0, 0, 1, 1, 1])
    counts = np.array([10, 10, 10, 10, 10])
    p = np.array([0.4, 0.6])
    acc_h = np.array([20.0, 50.0, 100.0])
    expected = 100 * (acc_h / 100 + (1 - acc_h / 100) * np.sum(p**2))
    np.testing.assert_allclose(s.theoretical_accuracy(acc_h, counts), expected)


def test_theoretical_accuracy_against_the_exact_expectation_over_random_spaces():
    """Eq. 22 against E[A(R)] computed exactly, for a confusion matrix with non-uniform errors.

    A random isomorphic space is a uniform permutation of ``t``, so each of the 7!/(3! 2! 2!) = 210
    distinct assignments is equally likely: enumerating them gives E[A(R)] exactly. In closed form,
    a wrong prediction i -> j (i != j) stays in its group with probability
    pi = sum_r n_r (n_r - 1) / (C (C - 1)), so E[A(R)] = A(H) + (100 - A(H)) pi. Eq. 22 uses
    sum_r P_r^2 instead, as if the true class itself were a possible wrong prediction: with equal
    samples per class it exceeds E[A(R)] by (100 - A(H)) (sum_r P_r^2 - pi), a gap that vanishes
    as groups grow (for the paper's ImageNet S3 sizes 80/522/398 it is below 0.06 points).
    """
    from hypbias.metrics import label_space_accuracy

    rng = np.random.default_rng(3)
    s = LabelSpace([0, 0, 0, 1, 1, 2, 2])
    c = s.num_classes
    m = rng.integers(0, 10, size=(c, c)) * (1 - np.eye(c, dtype=int))
    m += np.diag(100 - m.sum(axis=1))  # 100 samples per class, errors far from uniform
    acc_h = float(label_space_accuracy(m))
    assignments = sorted(set(itertools.permutations(s.t.tolist())))
    assert len(assignments) == 210
    exact = np.mean([label_space_accuracy(m, LabelSpace(list(a))) for a in assignments])
    pi = float(np.sum(s.sizes * (s.sizes - 1)) / (c * (c - 1)))
    assert exact == pytest.approx(acc_h + (100 - acc_h) * pi, rel=1e-12)
    assert s.expected_random_accuracy(acc_h) == pytest.approx(exact, rel=1e-12)
    draws = np.array([label_space_accuracy(m, s.random_isomorphic(k)) for k in range(2000)])
    assert abs(draws.mean() - exact) < 4 * draws.std(ddof=1) / np.sqrt(len(draws))
    shares = s.sizes / c  # P_r with equal samples per class
    eq22 = s.theoretical_accuracy(acc_h, m.sum(axis=1))
    assert eq22 - exact == pytest.approx((100 - acc_h) * (np.sum(shares**2) - pi), rel=1e-9)
    assert eq22 - exact > 1.0  # with groups of 2-3 classes the gap is large


@pytest.mark.parametrize(
    ("t", "message"),
    [
        ([[0, 1]], r"The 't' parameter of LabelSpace must be a 1-d integer array"),
        ([0.5, 1.0], r"1-d integer array\. Got shape \(2,\) and dtype float64 instead\."),
        ([0, -1], r"must hold values >= 0\. Got values in \[-1, 0\] instead\."),
        ([0, 2], r"group 1 is empty"),
    ],
)
def test_bad_assignments(t, message):
    with pytest.raises(ValueError, match=message):
        LabelSpace(t)


def test_bad_names_counts_and_accuracy():
    with pytest.raises(ValueError, match="must have 2 entries. Got 1 instead"):
        LabelSpace([0, 1], names=["a"])
    s = LabelSpace([0, 1])
    with pytest.raises(ValueError, match="'sample_counts' parameter must be 2 non-negative counts"):
        s.chance_accuracy([1, 2, 3])
    with pytest.raises(ValueError, match=r"percentage in \[0, 100\]"):
        s.theoretical_accuracy(120.0, [1, 1])
    with pytest.raises(ValueError, match="The 'seed' parameter of random_isomorphic must be an int >= 0"):
        s.random_isomorphic(-1)


@pytest.mark.parametrize("labels", [np.array([[0, 4], [2, 1]]), torch.tensor([3, 0, 4]),
                                    torch.tensor(2), np.zeros(0, dtype=int), [1, 2]])
def test_label_values_check_accepts_integer_labels_of_any_shape(labels):
    """The check LabelSpace.apply uses: any shape, NumPy or torch (kept as given), values in [0, C)."""
    from hypbias._validation import check_label_values

    out = check_label_values(labels, "labels", "LabelSpace.apply", 5)
    assert isinstance(out, torch.Tensor) == isinstance(labels, torch.Tensor)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(labels))


@pytest.mark.parametrize(("labels", "message"), [
    (np.array([[0, 5]]), "must hold values in [0, 5). Got values in [0, 5] instead."),
    (torch.tensor([-1, 2]), "must hold values in [0, 5). Got values in [-1, 2] instead."),
    (np.array([0.0, 1.5]), "must be an integer array. Got shape (2,) and dtype float64 instead."),
    (torch.tensor([True]), "must be an integer array. Got shape (1,) and dtype torch.bool instead."),
])
def test_label_values_check_refuses_bad_labels(labels, message):
    from hypbias._validation import check_label_values

    assert_refused(lambda: check_label_values(labels, "labels", "LabelSpace.apply", 5),
                   f"The 'labels' parameter of LabelSpace.apply {message}")
