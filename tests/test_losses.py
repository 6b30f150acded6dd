"""Hierarchical losses against hand computations and straightforward NumPy/SciPy references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from hypbias import Hierarchy, LabelSpace
from hypbias.errors import ConfigError
from hypbias.losses import (
    LOSSES,
    HierarchicalCrossEntropy,
    JensenShannonCrossEntropy,
    MultiLevelCrossEntropy,
    SoftLabelCrossEntropy,
    build_loss,
    group_logsumexp,
    validate_loss_options,
)

# ------------------------------------------------------------------ references


def random_tree(seed: int, max_depth: int = 4) -> Hierarchy:
    """An unbalanced random tree with unary nodes and leaves at several depths."""
    rng = np.random.default_rng(seed)
    names = (f"n{i}" for i in itertools.count())

    def children(depth: int) -> dict | None:
        if depth == max_depth or (depth > 0 and rng.random() < 0.35):
            return None
        low = 2 if depth == 0 else 1
        return {next(names): children(depth + 1) for _ in range(rng.integers(low, 4))}

    return Hierarchy.from_nested(children(0))


def reference_hxe(log_p: np.ndarray, y: int, h: Hierarchy, alpha: float, weighting: str) -> float:
    """−Σ λ log p(C^(l) | C^(l+1)) walking up the tree one edge at a time, log p by logsumexp."""
    path = [h.classes[y], *h.ancestors(y)]
    z = sum(math.exp(-alpha * h.depth(v)) for v in h.nodes if h.leaves(v).size)
    total = 0.0
    for child, parent in itertools.pairwise(path):
        if weighting == "height_literal":
            lam = math.exp(-alpha * h.node_height(child))
        else:
            lam = math.exp(-alpha * h.depth(child)) / z
        total -= lam * (logsumexp(log_p[h.leaves(child)]) - logsumexp(log_p[h.leaves(parent)]))
    return total


def log_softmax64(logits: torch.Tensor) -> np.ndarray:
    x = logits.detach().double().numpy()
    return x - logsumexp(x, axis=1, keepdims=True)


@pytest.fixture
def balanced() -> Hierarchy:
    """root -> {A -> a1, a2 ; B -> b1, b2}."""
    return Hierarchy.from_nested({"A": ["a1", "a2"], "B": ["b1", "b2"]})


@pytest.fixture
def single_child_root() -> Hierarchy:
    """root -> top -> {A -> x, y ; B -> {z ; C -> u, v}}: height 4, leaves at depths 3 and 4."""
    return Hierarchy.from_nested({"root": {"top": {"A": ["x", "y"],
                                                   "B": {"z": None, "C": ["u", "v"]}}}})


P = np.array([0.1, 0.2, 0.3, 0.4])
LOGITS = torch.tensor(np.log(P)).expand(4, 4)  # the same probabilities for each target
TARGETS = torch.arange(4)

# ------------------------------------------------------------------ HXE


def test_hxe_default_is_the_released_depth_weighting_on_an_unbalanced_tree(small_tree):
    """By hand, on root -> {a -> {a1 -> x, y, z ; a2 -> w}, b -> {u, v}} (classes x y z w u v).

    The released code (fiveai/making-better-mistakes, trees.get_exponential_weighting) weights the
    edge above node v by exp(−α · depth(v)) / Z, Z summed over all 11 tree positions.
    """
    a = 0.4
    e = [math.exp(-a * d) for d in range(4)]
    z = e[0] + 2 * e[1] + 4 * e[2] + 4 * e[3]  # root; a, b; a1, a2, u, v; x, y, z, w
    # per target: (weight, numerator leaves, denominator leaves) of each edge up to the root
    x_y_z, a_leaves, b_leaves, every = [0, 1, 2], [0, 1, 2, 3], [4, 5], [0, 1, 2, 3, 4, 5]
    edges = {0: [(e[3], [0], x_y_z), (e[2], x_y_z, a_leaves), (e[1], a_leaves, every)],
             3: [(e[3], [3], [3]), (e[2], [3], a_leaves), (e[1], a_leaves, every)],
             4: [(e[2], [4], b_leaves), (e[1], b_leaves, every)]}
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.1, -0.3, 1.2]] * 3, dtype=torch.float64,
                          requires_grad=True)
    y = torch.tensor([0, 3, 4])
    p = np.exp(log_softmax64(logits))[0]
    expected, expected_grad = [], np.zeros((3, 6))
    for row, target in enumerate(edges):
        loss = 0.0
        for w, num, den in edges[target]:
            loss -= w / z * math.log(p[num].sum() / p[den].sum())
            # d/dz_k log(P(num)/P(den)) = p_k [k in num] / P(num) − p_k [k in den] / P(den)
            expected_grad[row, num] -= w / z * p[num] / p[num].sum()
            expected_grad[row, den] += w / z * p[den] / p[den].sum()
        expected.append(loss)
    value = HierarchicalCrossEntropy(small_tree, a, reduction="none")(logits, y)
    np.testing.assert_allclose(value.detach().numpy(), expected, rtol=1e-6)
    value.sum().backward()
    np.testing.assert_allclose(logits.grad.numpy(), expected_grad, rtol=1e-6, atol=1e-9)


def test_hxe_height_literal_weighting_equals_hand_computation(balanced):
    a = 0.7
    w = math.exp(-a)  # λ(A) = λ(B); leaves have height 0 and weight 1
    expected = [
        -(math.log(0.1 / 0.3) + w * math.log(0.3)),
        -(math.log(0.2 / 0.3) + w * math.log(0.3)),
        -(math.log(0.3 / 0.7) + w * math.log(0.7)),
        -(math.log(0.4 / 0.7) + w * math.log(0.7)),
    ]
    loss = HierarchicalCrossEntropy(balanced, a, weighting="height_literal",
                                    reduction="none")(LOGITS, TARGETS)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)


def test_hxe_depth_weighting_equals_hand_computation(balanced):
    a = 0.7
    z = 1 + 2 * math.exp(-a) + 4 * math.exp(-2 * a)  # root, A and B, four leaves
    leaf, mid = math.exp(-2 * a) / z, math.exp(-a) / z
    expected = [
        -(leaf * math.log(0.1 / 0.3) + mid * math.log(0.3)),
        -(leaf * math.log(0.2 / 0.3) + mid * math.log(0.3)),
        -(leaf * math.log(0.3 / 0.7) + mid * math.log(0.7)),
        -(leaf * math.log(0.4 / 0.7) + mid * math.log(0.7)),
    ]
    loss = HierarchicalCrossEntropy(balanced, a, reduction="none")(LOGITS, TARGETS)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_hxe_alpha_zero_telescopes_to_cross_entropy(seed, small_tree):
    h = small_tree if seed == 0 else random_tree(seed)
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(64, h.num_classes, generator=g, dtype=torch.float64)
    y = torch.randint(0, h.num_classes, (64,), generator=g)
    ce = F.cross_entropy(logits, y, reduction="none")
    hxe = HierarchicalCrossEntropy(h, 0.0, weighting="height_literal", reduction="none")(logits, y)
    torch.testing.assert_close(hxe, ce, rtol=1e-6, atol=1e-6)
    nodes_in_tree = sum(1 for v in h.nodes if h.leaves(v).size)
    depth = HierarchicalCrossEntropy(h, 0.0, reduction="none")(logits, y)
    torch.testing.assert_close(depth * nodes_in_tree, ce, rtol=1e-6, atol=1e-6)


@settings(max_examples=25)
@given(seed=st.integers(0, 10**6), alpha=st.floats(0.0, 3.0),
       weighting=st.sampled_from(["depth", "height_literal"]))
def test_hxe_matches_edge_by_edge_reference_on_random_trees(seed, alpha, weighting):
    h = random_tree(seed)
    g = torch.Generator().manual_seed(seed)
    logits = 4 * torch.randn(16, h.num_classes, generator=g, dtype=torch.float64)
    y = torch.randint(0, h.num_classes, (16,), generator=g)
    loss = HierarchicalCrossEntropy(h, alpha, weighting=weighting, reduction="none")(logits, y)
    log_p = log_softmax64(logits)
    expected = [reference_hxe(log_p[i], int(y[i]), h, alpha, weighting) for i in range(16)]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_hxe_uses_the_tree_view_of_a_graph():
    # x has parents A (tree parent) and E; E keeps no class in the tree view and is not counted
    h = Hierarchy.from_parents({"x": ["A", "E"], "y": "A", "z": "B", "A": "r", "B": "r", "E": "r"},
                               ["x", "y", "z"])
    logits = torch.tensor([[0.3, -1.0, 2.0], [1.0, 0.0, -2.0]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    log_p = log_softmax64(logits)
    for weighting in ("depth", "height_literal"):
        loss = HierarchicalCrossEntropy(h, 0.4, weighting=weighting, reduction="none")(logits, y)
        expected = [reference_hxe(log_p[i], int(y[i]), h, 0.4, weighting) for i in range(2)]
        np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)
    ce = F.cross_entropy(logits, y, reduction="none")
    depth = HierarchicalCrossEntropy(h, 0.0, reduction="none")(logits, y)
    torch.testing.assert_close(depth * 6, ce)  # r, A, B, x, y, z; not E


@pytest.mark.parametrize("weighting", ["depth", "height_literal"])
def test_hxe_gradient_matches_finite_differences(small_tree, weighting):
    logits = torch.randn(5, small_tree.num_classes, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 3, 4, 5, 1])
    loss = HierarchicalCrossEntropy(small_tree, 0.5, weighting=weighting)
    assert torch.autograd.gradcheck(lambda x: loss(x, y), (logits,))


def test_hxe_is_finite_when_a_whole_subtree_is_below_float32_range():
    """Subtree a's classes all at e^-400 relative to b's (float32's exp underflows past e^-104)."""
    h = Hierarchy.from_nested({"a": {"a1": ["x", "y"], "a2": ["w"]}, "b": ["u", "v"]})
    logits = torch.tensor([[-400.0, -401.0, -403.0, 0.0, 1.0]] * 5, requires_grad=True)
    y = torch.arange(5)
    log_p = log_softmax64(logits)
    for weighting in ("depth", "height_literal"):
        loss = HierarchicalCrossEntropy(h, 0.5, weighting=weighting, reduction="none")
        value = loss(logits, y)
        (grad,) = torch.autograd.grad(value.sum(), logits)
        expected = [reference_hxe(log_p[i], i, h, 0.5, weighting) for i in range(5)]
        np.testing.assert_allclose(value.detach().numpy(), expected, rtol=1e-5)
        assert torch.isfinite(grad).all()


# ------------------------------------------------------------------ soft labels


def test_soft_labels_equal_hand_computation(balanced):
    beta = 3.0  # d = 0 (self), 1/2 (sibling), 1 (other branch): largest distance 2
    e_half, e_one = math.exp(-beta / 2), math.exp(-beta)
    z = 1 + e_half + 2 * e_one
    logp = np.log(P)
    rows = [[1, e_half, e_one, e_one], [e_half, 1, e_one, e_one],
            [e_one, e_one, 1, e_half], [e_one, e_one, e_half, 1]]
    expected = [-(np.array(r) / z * logp).sum() for r in rows]
    for lca in ("depth", "height"):  # they agree on a balanced tree
        loss = SoftLabelCrossEntropy(balanced, beta, lca=lca, reduction="none")(LOGITS, TARGETS)
        np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)


# Distances among x, y, z, u, v of `single_child_root`, by hand. LCA heights: A 1, B 2, C 1,
# top 3. H − depth(LCA): A 4 − 2, B 4 − 2, C 4 − 3, top 4 − 1. Both have largest distance 3,
# where the tree height (4) normalised the old targets.
LCA_BY_HAND = {
    "height": [[0, 1, 3, 3, 3], [1, 0, 3, 3, 3], [3, 3, 0, 2, 2], [3, 3, 2, 0, 1], [3, 3, 2, 1, 0]],
    "depth": [[0, 2, 3, 3, 3], [2, 0, 3, 3, 3], [3, 3, 0, 2, 2], [3, 3, 2, 0, 1], [3, 3, 2, 1, 0]],
}


@pytest.mark.parametrize("lca", ["depth", "height"])
def test_soft_labels_on_an_unbalanced_tree_normalise_by_the_largest_distance(single_child_root,
                                                                             lca):
    beta = 2.5
    d = np.array(LCA_BY_HAND[lca], dtype=np.float64) / 3.0
    target = np.exp(-beta * d) / np.exp(-beta * d).sum(axis=1, keepdims=True)
    loss = SoftLabelCrossEntropy(single_child_root, beta, lca=lca)
    np.testing.assert_allclose(loss.soft_targets.numpy(), target, rtol=1e-6)
    g = torch.Generator().manual_seed(1)
    logits = 2 * torch.randn(10, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (10,), generator=g)
    expected = -(target[y.numpy()] * log_softmax64(logits)).sum(axis=1)
    np.testing.assert_allclose(SoftLabelCrossEntropy(single_child_root, beta, lca=lca,
                                                     reduction="none")(logits, y).numpy(),
                               expected, rtol=1e-6)


def test_soft_label_conventions_differ_on_an_unbalanced_tree(single_child_root):
    depth = SoftLabelCrossEntropy(single_child_root, 2.5).soft_targets
    height = SoftLabelCrossEntropy(single_child_root, 2.5, lca="height").soft_targets
    assert depth[0, 1] < height[0, 1]  # x and y: distance 2/3 against 1/3


def test_soft_labels_with_large_beta_are_cross_entropy(small_tree):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(32, small_tree.num_classes, generator=g)
    y = torch.randint(0, small_tree.num_classes, (32,), generator=g)
    torch.testing.assert_close(SoftLabelCrossEntropy(small_tree, 500.0)(logits, y),
                               F.cross_entropy(logits, y))


# ------------------------------------------------------------------ multi-level CE


def test_multilevel_equals_manual_sum(small_tree):
    s_level = LabelSpace.from_hierarchy(small_tree, level=1)
    s_rand = LabelSpace([0, 1, 2, 0, 1, 2])
    g = torch.Generator().manual_seed(3)
    logits = 2 * torch.randn(20, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 6, (20,), generator=g)
    loss = MultiLevelCrossEntropy([s_level, s_rand], [0.5, 2.0], fine_weight=0.7,
                                  reduction="none")(logits, y)
    p = np.exp(log_softmax64(logits))
    expected = []
    for i, t in enumerate(y.numpy()):
        total = -0.7 * np.log(p[i, t])
        for space, w in ((s_level, 0.5), (s_rand, 2.0)):
            total -= w * np.log(sum(p[i, c] for c in range(6) if space.t[c] == space.t[t]))
        expected.append(total)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-10)


def test_multilevel_label_smoothing_applies_to_the_fine_term(small_tree):
    space = LabelSpace.from_hierarchy(small_tree, level=1)
    logits, y = torch.randn(8, 6), torch.randint(0, 6, (8,))
    smooth = MultiLevelCrossEntropy([space], 0.0, label_smoothing=0.2)(logits, y)
    torch.testing.assert_close(smooth, F.cross_entropy(logits, y, label_smoothing=0.2))


@settings(max_examples=30)
@given(seed=st.integers(0, 10**6), groups=st.integers(1, 6), scale=st.sampled_from([1.0, 1e3]))
def test_group_logsumexp_matches_scipy(seed, groups, scale):
    rng = np.random.default_rng(seed)
    index = np.concatenate([np.arange(groups), rng.integers(0, groups, 9)])
    x = scale * rng.standard_normal((5, len(index)))
    out = group_logsumexp(torch.tensor(x), torch.tensor(index), groups).numpy()
    expected = np.stack([logsumexp(x[:, index == g], axis=1) for g in range(groups)], axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


# ------------------------------------------------------------------ Jensen–Shannon


def reference_jsd(logits: np.ndarray, y: np.ndarray, views: int, weight: float) -> np.ndarray:
    """CE on the clean view + λ · (1/V) Σ_i KL(p_i ‖ M), M the mean of the V distributions."""
    n = len(logits) // views
    p = np.exp(logits - logsumexp(logits, axis=1, keepdims=True)).reshape(views, n, -1)
    m = p.mean(axis=0)
    ce = -np.log(p[0, np.arange(n), y])
    kl = [(p[i] * np.log(p[i] / m)).sum(axis=1) for i in range(views)]
    return ce + weight * np.mean(kl, axis=0)


@pytest.mark.parametrize("views", [2, 3, 4])
def test_jsd_equals_hand_computation(views):
    g = torch.Generator().manual_seed(views)
    logits = 2 * torch.randn(views * 7, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (7,), generator=g)
    loss = JensenShannonCrossEntropy(views, 12.0, reduction="none")
    expected = reference_jsd(logits.numpy(), y.numpy(), views, 12.0)
    np.testing.assert_allclose(loss(logits, y).numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(loss(logits, y.repeat(views)).numpy(), expected, rtol=1e-10)


def test_jsd_of_two_views_by_hand():
    """Two views, two classes: p = (0.9, 0.1), q = (0.5, 0.5), M = (0.7, 0.3)."""
    logits = torch.tensor([[math.log(9.0), 0.0], [0.0, 0.0]], dtype=torch.float64)
    js = 0.5 * (0.9 * math.log(0.9 / 0.7) + 0.1 * math.log(0.1 / 0.3)
                + 0.5 * math.log(0.5 / 0.7) + 0.5 * math.log(0.5 / 0.3))
    value = JensenShannonCrossEntropy(2, 2.0)(logits, torch.tensor([0]))
    assert value.item() == pytest.approx(-math.log(0.9) + 2.0 * js, rel=1e-12)


def test_jsd_of_identical_views_is_cross_entropy_with_smoothing():
    logits, y = torch.randn(6, 4), torch.randint(0, 4, (6,))
    loss = JensenShannonCrossEntropy(3, 12.0, label_smoothing=0.1)
    torch.testing.assert_close(loss(logits.repeat(3, 1), y),
                               F.cross_entropy(logits, y, label_smoothing=0.1))


def test_jsd_rejects_a_batch_that_is_not_views_times_n():
    with pytest.raises(ValueError, match=r"must have shape \(3·N, C\) with targets of shape \(N,\) "
                                         r"or \(3·N,\)\. Got shapes \(7, 4\) and \(2,\) instead\."):
        JensenShannonCrossEntropy(3)(torch.zeros(7, 4), torch.zeros(2).long())


# ------------------------------------------------------------------ shared behaviour


def _losses(h: Hierarchy, reduction: str = "mean") -> list[torch.nn.Module]:
    space = LabelSpace.from_hierarchy(h, level=1)
    return [HierarchicalCrossEntropy(h, 0.5, reduction=reduction),
            HierarchicalCrossEntropy(h, 0.5, weighting="height_literal", reduction=reduction),
            SoftLabelCrossEntropy(h, 5.0, reduction=reduction),
            MultiLevelCrossEntropy([space], reduction=reduction)]


def test_losses_return_the_batch_mean_by_default(small_tree):
    logits, y = torch.randn(9, 6), torch.randint(0, 6, (9,))
    for default, none, total in zip(_losses(small_tree), _losses(small_tree, "none"),
                                    _losses(small_tree, "sum"), strict=True):
        per_sample = none(logits, y)
        assert per_sample.shape == (9,)
        torch.testing.assert_close(default(logits, y), per_sample.mean())
        torch.testing.assert_close(total(logits, y), per_sample.sum())


@pytest.mark.parametrize("gap", [69.0776, 300.0, 5000.0])  # p(true) = 1e-30, e^-300, e^-5000
def test_finite_losses_and_gradients_for_tiny_probabilities(small_tree, gap):
    logits = torch.zeros(6, 6)
    logits[:, 5] = gap  # classes 0-3 get probability e^-gap, class 4 e^-gap/2
    logits[:, 4] = gap / 2
    y = torch.arange(6)
    log_p = log_softmax64(logits)
    for loss in [*_losses(small_tree), JensenShannonCrossEntropy(2)]:
        x = logits.clone().requires_grad_(True)
        value = loss(x, y[:3]) if isinstance(loss, JensenShannonCrossEntropy) else loss(x, y)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    for weighting in ("depth", "height_literal"):
        expected = [reference_hxe(log_p[i], i, small_tree, 0.5, weighting) for i in range(6)]
        hxe = HierarchicalCrossEntropy(small_tree, 0.5, weighting=weighting, reduction="none")
        np.testing.assert_allclose(hxe(logits, y).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_half_precision_logits_are_computed_in_float32(small_tree):
    logits, y = torch.randn(6, 6), torch.randint(0, 6, (6,))
    for loss in [*_losses(small_tree), JensenShannonCrossEntropy(2)]:
        low = loss(logits.bfloat16(), y[:3] if isinstance(loss, JensenShannonCrossEntropy) else y)
        assert low.dtype == torch.float32


def test_loss_input_errors(small_tree):
    with pytest.raises(ValueError, match=r"The 'logits' parameter of HierarchicalCrossEntropy must "
                                         r"have shape \(N, 6\)\. Got shape \(3, 5\) instead\."):
        HierarchicalCrossEntropy(small_tree, 0.1)(torch.zeros(3, 5), torch.zeros(3).long())
    with pytest.raises(ValueError, match=r"The 'alpha' parameter of HierarchicalCrossEntropy must "
                                         r"be a finite float >= 0.0. Got -1 instead."):
        HierarchicalCrossEntropy(small_tree, -1)
    with pytest.raises(ValueError, match=r"'weighting' parameter of HierarchicalCrossEntropy must "
                                         r"be one of 'depth', 'height_literal'. Got 'height' "
                                         r"instead."):
        HierarchicalCrossEntropy(small_tree, 0.1, weighting="height")
    with pytest.raises(ValueError, match=r"The 'beta' parameter of SoftLabelCrossEntropy must be a "
                                         r"finite float > 0.0. Got 0 instead."):
        SoftLabelCrossEntropy(small_tree, 0)
    with pytest.raises(ValueError, match=r"The 'lca' parameter of SoftLabelCrossEntropy must be one "
                                         r"of 'depth', 'height'. Got 'path' instead."):
        SoftLabelCrossEntropy(small_tree, 1.0, lca="path")
    with pytest.raises(ValueError, match=r"'weights' parameter of MultiLevelCrossEntropy must have "
                                         r"1 entries \(one per space\). Got 2 instead."):
        MultiLevelCrossEntropy([LabelSpace([0, 0, 1, 1, 1, 1])], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"The 'views' parameter of JensenShannonCrossEntropy must "
                                         r"be an int >= 2. Got 1 instead."):
        JensenShannonCrossEntropy(1)
    with pytest.raises(TypeError, match="must be a Hierarchy. Got dict instead."):
        SoftLabelCrossEntropy({}, 1.0)


# ------------------------------------------------------------------ build_loss and configs


def test_build_loss_builds_each_loss(small_tree):
    spaces = {"S2": LabelSpace.from_hierarchy(small_tree, n=2),
              "S3": LabelSpace.from_hierarchy(small_tree, n=3)}
    ce = build_loss({"name": "ce"}, small_tree, label_smoothing=0.1)
    assert isinstance(ce, torch.nn.CrossEntropyLoss) and ce.label_smoothing == 0.1
    assert isinstance(build_loss(None, small_tree), torch.nn.CrossEntropyLoss)
    hxe = build_loss({"name": "hxe", "alpha": 0.3, "weighting": "height_literal"}, small_tree)
    assert (hxe.alpha, hxe.weighting) == (0.3, "height_literal")
    default = build_loss({"name": "hxe"}, small_tree)
    assert (default.alpha, default.weighting) == (0.1, "depth")
    soft = build_loss({"name": "soft", "beta": 4, "lca": "height"}, small_tree)
    assert (soft.beta, soft.lca) == (4.0, "height")
    assert build_loss({"name": "soft"}, small_tree).lca == "depth"
    multi = build_loss({"name": "multilevel", "spaces": ["S3"], "weights": [0.5]}, small_tree,
                       spaces)
    assert multi.num_groups == [3] and multi.weights == [0.5]
    assert build_loss({"name": "multilevel"}, small_tree, spaces).num_groups == [2, 3]
    jsd = build_loss({"name": "jsd", "views": 2}, small_tree, label_smoothing=0.1)
    assert (jsd.views, jsd.weight, jsd.label_smoothing) == (2, 12.0, 0.1)


@pytest.mark.parametrize(("section", "message"), [
    ({"name": "focal"}, "The 'loss.name' parameter of the config must be one of 'ce', 'hxe', "
                        "'soft', 'multilevel', 'jsd'. Got 'focal' instead."),
    ({"name": "hxe", "beta": 1}, "'loss.beta' is not an option of the 'hxe' loss "
                                 "(options: alpha, weighting)."),
    ({"name": "ce", "alpha": 1}, "'loss.alpha' is not an option of the 'ce' loss (options: none)."),
    ({"name": "hxe", "alpha": -0.5}, "The 'loss.alpha' parameter of the config must be a finite "
                                     "float >= 0.0. Got -0.5 instead."),
    ({"name": "hxe", "alpha": "big"}, "The 'loss.alpha' parameter of the config must be a finite "
                                      "float >= 0.0. Got 'big' instead."),
    ({"name": "hxe", "weighting": "height"}, "The 'loss.weighting' parameter of the config must "
                                             "be one of 'depth', 'height_literal'. Got 'height' "
                                             "instead."),
    ({"name": "soft", "beta": 0}, "The 'loss.beta' parameter of the config must be a finite "
                                  "float > 0.0. Got 0 instead."),
    ({"name": "soft", "lca": "graph"}, "The 'loss.lca' parameter of the config must be one of "
                                       "'depth', 'height'. Got 'graph' instead."),
    ({"name": "jsd", "views": 1}, "The 'loss.views' parameter of the config must be an int >= 2. "
                                  "Got 1 instead."),
    ({"name": "jsd", "weight": -1}, "The 'loss.weight' parameter of the config must be a finite "
                                    "float >= 0.0. Got -1 instead."),
    ({"name": "multilevel", "spaces": ["S9"]}, "'loss.spaces' names 'S9', which is not a space of "
                                               "this run (spaces: S2)."),
    ({"name": "multilevel", "spaces": "S2"}, "The 'loss.spaces' parameter of the config must be a "
                                             "non-empty list of space names. Got 'S2' instead."),
    ({"name": "multilevel", "weights": [1, 2]}, "The 'loss.weights' parameter of the config must "
                                                "be one number or 1 (one per space). "
                                                "Got [1.0, 2.0] instead."),
    ({"name": "multilevel", "weights": [1, -2]}, "The 'loss.weights' parameter of the config must "
                                                 "be a finite float >= 0.0. Got -2 instead."),
])
def test_build_loss_errors_name_the_key(small_tree, section, message):
    spaces = {"S2": LabelSpace.from_hierarchy(small_tree, n=2)}
    with pytest.raises(ConfigError) as err:
        build_loss(section, small_tree, spaces)
    assert str(err.value) == message


def test_build_loss_rejects_label_smoothing_for_hierarchical_losses(small_tree):
    with pytest.raises(ConfigError, match="'train.label_smoothing' = 0.1 does not apply to the "
                                          "'soft' loss; set it to 0."):
        build_loss({"name": "soft"}, small_tree, label_smoothing=0.1)


def test_multilevel_without_spaces_is_a_config_error(small_tree):
    with pytest.raises(ConfigError, match="The 'multilevel' loss needs hypernym spaces"):
        build_loss({"name": "multilevel"}, small_tree)


def test_validate_loss_options_fills_defaults_without_building():
    assert validate_loss_options(None) == {"name": "ce"}
    assert validate_loss_options({"name": "hxe", "alpha": 1}) == \
        {"name": "hxe", "alpha": 1.0, "weighting": "depth"}
    assert validate_loss_options({"name": "soft"}) == {"name": "soft", "beta": 10.0, "lca": "depth"}
    assert validate_loss_options({"name": "jsd"}, label_smoothing=0.1) == \
        {"name": "jsd", "views": 3, "weight": 12.0}
    # spaces are checked only when the run's spaces are known
    section = {"name": "multilevel", "spaces": ["S4", "S9"], "weights": [1, 2]}
    assert validate_loss_options(section)["spaces"] == ["S4", "S9"]
    with pytest.raises(ConfigError, match="'loss.spaces' names 'S9'"):
        validate_loss_options(section, space_names=["S4", "S8"])
    # what it returns is a valid section again (the training loop builds from it)
    for name in LOSSES:
        checked = validate_loss_options({"name": name}, space_names=["S4"])
        assert validate_loss_options(checked, space_names=["S4"]) == checked


def test_every_declared_default_is_valid_and_every_loss_builds_from_defaults(small_tree):
    spaces = {"S2": LabelSpace.from_hierarchy(small_tree, n=2)}
    for name, spec in LOSSES.items():
        for key, option in spec.options.items():
            assert option.validate(option.default, f"loss.{key}") == option.default
        logits, y = torch.randn(6, 6), torch.arange(6)
        loss = build_loss({"name": name}, small_tree, spaces)
        assert torch.isfinite(loss(logits, y[: 6 // getattr(loss, "views", 1)]))


@pytest.mark.parametrize(("config", "kind"), [("losses/ce", torch.nn.CrossEntropyLoss),
                                              ("losses/hxe", HierarchicalCrossEntropy),
                                              ("losses/soft", SoftLabelCrossEntropy)])
def test_packaged_loss_configs_inherit_the_default_and_build(config, kind, small_tree):
    from hypbias.train.config import load_config

    cfg, default = load_config(config), load_config(None)
    assert isinstance(build_loss(cfg["loss"], small_tree), kind)
    ignored = ("loss", "config_file", "nc", "train")
    assert {k: v for k, v in cfg.items() if k not in ignored} == \
        {k: v for k, v in default.items() if k not in ignored}
    scaled = ("lr", "weight_decay")  # hxe's loss is ~1/100 of CE's: see losses/hxe.yaml
    assert {k: v for k, v in cfg["train"].items() if k not in scaled} == \
        {k: v for k, v in default["train"].items() if k not in scaled}
    k = 100.0 if config == "losses/hxe" else 1.0  # the same SGD as the default's, on 100 x the loss
    assert cfg["train"]["lr"] == pytest.approx(k * default["train"]["lr"])
    assert cfg["train"]["weight_decay"] == pytest.approx(default["train"]["weight_decay"] / k)
