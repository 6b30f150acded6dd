"""Mistake severity and hierarchical top-k distance in both LCA conventions, against references.

The references take LCA distances from root-to-leaf paths (tests/lca_reference.py) and rank
classes one sample at a time; batching, merging and persistence are in tests/test_accumulators.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import assert_refused
from hypbias import Hierarchy
from hypbias.metrics.hierarchical import (
    HierarchicalMistakes,
    hierarchical_topk_distance,
    mistake_severity,
)
from lca_reference import NESTED, reference_lca_distances

TREE = Hierarchy.from_nested(NESTED)  # unbalanced, 10 classes, height 4


@pytest.fixture
def tree() -> Hierarchy:
    return TREE


# Hand computation (tests/lca_reference.py draws the tree): H = 4.
HAND = [  # (i, j, LCA, its height, H - its depth)
    (0, 1, "a1", 1, 2),
    (0, 3, "a", 2, 3),
    (4, 5, "b11", 1, 1),
    (4, 6, "b", 3, 3),
    (7, 8, "c", 1, 3),
    (0, 9, "root", 4, 4),
    (3, 6, "root", 4, 4),
]


@pytest.mark.parametrize(("i", "j", "lca", "height", "depth"), HAND)
def test_both_lca_conventions_by_hand(tree, i, j, lca, height, depth):
    assert tree.lca(i, j) == ("<root>" if lca == "root" else lca)
    assert tree.lca_distance_matrix("height")[i, j] == height
    assert tree.lca_distance_matrix("depth")[i, j] == depth
    assert tree.lca_distance_matrix()[i, j] == height  # the Hierarchy method's default


@pytest.mark.parametrize("convention", ["height", "depth"])
def test_lca_distance_matrices_equal_the_path_reference(tree, convention):
    got = tree.lca_distance_matrix(convention)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, reference_lca_distances(convention))
    np.testing.assert_array_equal(tree.lca_distance_matrix("height"), tree.lca_height_matrix())


def test_conventions_agree_on_a_balanced_tree():
    balanced = Hierarchy.from_nested({"a": {"x": ["0", "1"], "y": ["2"]}, "b": {"z": ["3", "4"]}})
    np.testing.assert_array_equal(balanced.lca_distance_matrix("depth"),
                                  balanced.lca_distance_matrix("height"))


def loop_metrics(logits: np.ndarray, y: np.ndarray, convention: str,
                 k: int) -> tuple[float, float]:
    """(mistake severity, hierarchical top-k distance), one sample and one class at a time."""
    d = reference_lca_distances(convention)
    mistakes, topk = [], []
    for row, t in zip(logits, y, strict=True):
        ranked = np.argsort(-row, kind="stable")
        if ranked[0] != t:
            mistakes.append(d[t, ranked[0]])
        topk.append(np.mean([d[t, c] for c in ranked[:k]]))
    return (float(np.mean(mistakes)) if mistakes else float("nan")), float(np.mean(topk))


@pytest.mark.parametrize("convention", ["height", "depth"])
@pytest.mark.parametrize("k", [1, 2, 5, 10])
def test_metrics_equal_a_straightforward_loop(tree, k, convention):
    rng = np.random.default_rng(k)
    logits = rng.standard_normal((200, 10))
    y = rng.integers(0, 10, 200)
    severity, topk = loop_metrics(logits, y, convention, k)
    got = mistake_severity(torch.tensor(logits), torch.tensor(y), tree, lca=convention)
    assert got == pytest.approx(severity)
    assert hierarchical_topk_distance(logits, y, tree, k, lca=convention) == pytest.approx(topk)


def test_hand_values(tree):
    logits = np.zeros((3, 10))
    logits[0, 1] = 1.0  # truth c0, predicted c1: LCA a1, height 1, H - depth = 2
    logits[1, 9] = 1.0  # truth c4, predicted c9: LCA root, 4 in both conventions
    logits[2, 6] = 1.0  # truth c6, predicted c6: correct
    y = np.array([0, 4, 6])
    assert mistake_severity(logits, y, tree, lca="height") == pytest.approx(2.5)
    assert hierarchical_topk_distance(logits, y, tree, 1, lca="height") == pytest.approx(5 / 3)
    assert mistake_severity(logits, y, tree) == pytest.approx(3.0)  # default: "depth"
    assert hierarchical_topk_distance(logits, y, tree, 1) == pytest.approx(2.0)


def test_severity_is_nan_without_mistakes(tree):
    y = np.arange(10)
    assert np.isnan(mistake_severity(np.eye(10), y, tree))
    assert hierarchical_topk_distance(np.eye(10), y, tree, 1) == 0.0


def test_accumulator_names_reset_and_default_ks(tree):
    acc = HierarchicalMistakes(tree)
    assert acc.ks == (1, 5, 10)  # 20 > C = 10 is left out of the default
    assert acc.lca == "depth"
    assert acc.names == ["mistake_severity", "hier_dist@1", "hier_dist@5", "hier_dist@10"]
    assert all(np.isnan(v) for v in acc.compute().values())
    acc.update(torch.eye(10), torch.arange(10))
    assert acc.compute()["hier_dist@10"] == pytest.approx(np.mean(reference_lca_distances("depth")))
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batches_on_another_device_than_the_state(tree):
    rng = np.random.default_rng(3)
    logits, y = torch.tensor(rng.standard_normal((90, 10))), torch.tensor(rng.integers(0, 10, 90))
    on_cpu = HierarchicalMistakes(tree, ks=[1, 5], device="cpu")
    for part in range(3):  # every batch on the GPU, the state pinned to the CPU
        rows = slice(30 * part, 30 * (part + 1))
        on_cpu.update(logits[rows].cuda(), y[rows].cuda())
    assert on_cpu.sums.device.type == "cpu"
    want = HierarchicalMistakes(tree, ks=[1, 5])
    want.update(logits, y)
    assert on_cpu.compute() == pytest.approx(want.compute())


@pytest.mark.parametrize(("call", "message"), [
    (lambda: hierarchical_topk_distance(np.zeros((2, 10)), [0, 1], TREE, 11),
     "The 'k' parameter of hierarchical_topk_distance must be an int in [1, 10]. Got 11 instead."),
    (lambda: mistake_severity(np.zeros((2, 9)), [0, 1], TREE),
     "The 'logits' parameter of mistake_severity must be a non-empty float array of shape "
     "(n, 10). Got shape (2, 9) and dtype torch.float64 instead."),
    (lambda: mistake_severity(np.zeros((2, 10)), [0, 1, 2], TREE),
     "The 'targets' parameter of mistake_severity must have length 2. Got 3 instead."),
    (lambda: mistake_severity(np.zeros((2, 10)), [0.0, 1.0], TREE),
     "The 'targets' parameter of mistake_severity must be a 1-d integer array. "
     "Got shape (2,) and dtype torch.float64 instead."),
    (lambda: mistake_severity(np.zeros((2, 10)), [0, 10], TREE),
     "The 'targets' parameter of mistake_severity must hold values in [0, 10). "
     "Got values in [0, 10] instead."),
    (lambda: mistake_severity(np.full((2, 10), np.nan), [0, 1], TREE),
     "The 'logits' parameter of mistake_severity must be finite. Got 20 non-finite values "
     "(the first: nan) instead."),
    (lambda: mistake_severity(np.zeros((2, 10)), [0, 1], TREE, lca="graph"),
     "The 'lca' parameter of mistake_severity must be one of 'depth', 'height'. "
     "Got 'graph' instead."),
    (lambda: mistake_severity(np.zeros((2, 10)), [0, 1], "tree"),
     "The 'hierarchy' parameter of mistake_severity must be a Hierarchy. Got str instead."),
    (lambda: TREE.lca_distance_matrix("graph"),
     "The 'convention' parameter of Hierarchy.lca_distance_matrix must be one of 'depth', "
     "'height'. Got 'graph' instead."),
    (lambda: HierarchicalMistakes(TREE, ks=[1, 20]),
     "The 'ks' parameter of HierarchicalMistakes must be an int in [1, 10]. Got 20 instead."),
    (lambda: HierarchicalMistakes(TREE).update(torch.zeros(0, 10), torch.zeros(0, dtype=int)),
     "The 'logits' parameter of HierarchicalMistakes.update must be a non-empty float array of "
     "shape (n, 10). Got shape (0, 10) and dtype torch.float32 instead."),
])
def test_errors(call, message):
    assert_refused(call, message)
