"""LabelSpace: mapping, random isomorphic draws, chance and theoretical accuracy (Eq. 9, 22)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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


def test_theoretical_accuracy_matches_random_assignment_in_expectation(rng):
    """Eq. 22 is exact on average over random isomorphic spaces when errors are uniform."""
    from hypbias.metrics import label_space_accuracy

    c = 12
    m = np.full((c, c), 3.0)
    np.fill_diagonal(m, 40.0)
    s = LabelSpace(np.repeat(np.arange(3), 4))
    acc_h = label_space_accuracy(m)
    measured = np.mean([label_space_accuracy(m, s.random_isomorphic(k)) for k in range(400)])
    # within-group off-diagonal pairs: with uniform errors the space is irrelevant
    theory = s.theoretical_accuracy(acc_h, m.sum(1))
    assert measured == pytest.approx(label_space_accuracy(m, s), rel=1e-9)
    assert abs(measured - theory) < 3.0  # Eq. 22 treats the true class's own group as reachable


@pytest.mark.parametrize(
    ("t", "message"),
    [
        ([[0, 1]], r"The 't' parameter of LabelSpace must be a non-empty 1-d integer array"),
        ([0.5, 1.0], r"1-d integer array\. Got shape \(2,\) and dtype float64 instead\."),
        ([0, -1], r"must be >= 0\. Got -1 instead\."),
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
