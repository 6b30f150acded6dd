"""Mistake severity and hierarchical top-k distance against a per-sample loop; accumulator merges."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hypbias import Hierarchy
from hypbias.metrics.hierarchical import (
    HierarchicalMistakes,
    hierarchical_topk_distance,
    mistake_severity,
)

TREE = Hierarchy.from_nested({  # unbalanced, 10 classes, height 4
    "a": {"a1": ["c0", "c1", "c2"], "a2": ["c3"]},
    "b": {"b1": {"b11": ["c4", "c5"]}, "c6": None},
    "c": ["c7", "c8", "c9"],
})


@pytest.fixture
def tree() -> Hierarchy:
    return TREE


def loop_metrics(logits: np.ndarray, y: np.ndarray, h: Hierarchy, k: int) -> tuple[float, float]:
    """(mistake severity, hierarchical top-k distance), one sample and one class at a time."""
    mistakes, topk = [], []
    for row, t in zip(logits, y, strict=True):
        ranked = np.argsort(-row, kind="stable")
        if ranked[0] != t:
            mistakes.append(h.lca_height(int(t), int(ranked[0])))
        topk.append(np.mean([h.lca_height(int(t), int(c)) for c in ranked[:k]]))
    return (float(np.mean(mistakes)) if mistakes else float("nan")), float(np.mean(topk))


@pytest.mark.parametrize("k", [1, 2, 5, 10])
def test_metrics_equal_a_straightforward_loop(tree, k):
    rng = np.random.default_rng(k)
    logits = rng.standard_normal((200, 10))
    y = rng.integers(0, 10, 200)
    severity, topk = loop_metrics(logits, y, tree, k)
    assert mistake_severity(torch.tensor(logits), torch.tensor(y), tree) == pytest.approx(severity)
    assert hierarchical_topk_distance(logits, y, tree, k) == pytest.approx(topk)


def test_hand_values(tree):
    logits = np.zeros((3, 10))
    logits[0, 1] = 1.0  # truth c0, predicted c1: LCA a1, height 1
    logits[1, 9] = 1.0  # truth c4, predicted c9: LCA root, height 4
    logits[2, 6] = 1.0  # truth c6, predicted c6: correct
    y = np.array([0, 4, 6])
    assert mistake_severity(logits, y, tree) == pytest.approx(2.5)
    assert hierarchical_topk_distance(logits, y, tree, 1) == pytest.approx(5 / 3)


def test_severity_is_nan_without_mistakes(tree):
    y = np.arange(10)
    assert np.isnan(mistake_severity(np.eye(10), y, tree))
    assert hierarchical_topk_distance(np.eye(10), y, tree, 1) == 0.0


@settings(max_examples=40)
@given(n=st.integers(1, 120), batch=st.integers(1, 50), seed=st.integers(0, 10**6))
def test_accumulator_is_invariant_to_batching_and_merging(n, batch, seed):
    tree = TREE
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 10, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    one_pass, shard_a, shard_b = (HierarchicalMistakes(tree) for _ in range(3))
    one_pass.update(logits, y)
    for i, start in enumerate(range(0, n, batch)):
        (shard_a if i % 2 else shard_b).update(logits[start:start + batch], y[start:start + batch])
    expected = one_pass.compute()
    merged = shard_a.merge(shard_b).compute()
    assert merged.keys() == expected.keys()
    for name, value in expected.items():
        assert merged[name] == pytest.approx(value, rel=1e-12, nan_ok=True)
    severity, top5 = loop_metrics(logits.numpy(), y.numpy(), tree, 5)
    assert expected["mistake_severity"] == pytest.approx(severity, nan_ok=True)
    assert expected["hier_dist@5"] == pytest.approx(top5)


def test_accumulator_names_reset_and_default_ks(tree):
    acc = HierarchicalMistakes(tree)
    assert acc.ks == (1, 5, 10)  # 20 > C = 10 is left out of the default
    assert acc.names == ["mistake_severity", "hier_dist@1", "hier_dist@5", "hier_dist@10"]
    assert all(np.isnan(v) for v in acc.compute().values())
    acc.update(torch.eye(10), torch.arange(10))
    assert acc.compute()["hier_dist@10"] == pytest.approx(np.mean(tree.lca_height_matrix()))
    acc.reset()
    assert all(np.isnan(v) for v in acc.compute().values())
    assert list(HierarchicalMistakes(tree, ks=[5, 2, 5]).ks) == [2, 5]


def test_hier_dist_at_one_is_severity_times_error_rate(tree):
    rng = np.random.default_rng(7)
    logits, y = torch.tensor(rng.standard_normal((300, 10))), torch.tensor(rng.integers(0, 10, 300))
    acc = HierarchicalMistakes(tree, ks=[1])
    acc.update(logits, y)
    error = (logits.argmax(1) != y).double().mean().item()
    out = acc.compute()
    assert out["hier_dist@1"] == pytest.approx(out["mistake_severity"] * error)


def test_errors(tree):
    with pytest.raises(ValueError, match=r"The 'k' parameter of hierarchical_topk_distance must be "
                                         r"an int in \[1, 10\]. Got 11 instead."):
        hierarchical_topk_distance(np.zeros((2, 10)), [0, 1], tree, 11)
    with pytest.raises(ValueError, match=r"The 'logits' parameter of mistake_severity must have "
                                         r"shape \(N, 10\). Got shape \(2, 9\) instead."):
        mistake_severity(np.zeros((2, 9)), [0, 1], tree)
    with pytest.raises(ValueError, match=r"The 'targets' parameter of mistake_severity must be 2 "
                                         r"integer labels. Got shape \(3,\)"):
        mistake_severity(np.zeros((2, 10)), [0, 1, 2], tree)
    with pytest.raises(ValueError, match=r"The 'ks' parameter of HierarchicalMistakes must be an "
                                         r"int in \[1, 10\]. Got 20 instead."):
        HierarchicalMistakes(tree, ks=[1, 20])
    other = HierarchicalMistakes(tree, ks=[1])
    with pytest.raises(ValueError, match="track different classes or ks"):
        HierarchicalMistakes(tree).merge(other)
