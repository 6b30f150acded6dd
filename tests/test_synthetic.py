"""The embedded synthetic dataset: seeded, shaped by its tree, and hiding the tree from its raw input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hypbias.data import create_dataset, make_synthetic
from hypbias.data.synthetic import class_codes

HIDING_OFF = {"nuisance_scale": 0.0, "offset_dim": 0, "warp": 0.0}
"""The nuisance, the offsets and the bend's nonlinearity switched off: x is a linear image of z_c + noise."""


def tree_correlation(points: np.ndarray, labels: np.ndarray, graph_distance: np.ndarray) -> float:
    """Pearson r between the class-mean distances of ``points`` (N, D) and the tree's d_W, over i < j."""
    num_classes = graph_distance.shape[0]
    means = np.stack([points[labels == c].mean(axis=0) for c in range(num_classes)])
    dist = np.sqrt(((means[:, None, :] - means[None, :, :]) ** 2).sum(axis=-1))
    upper = np.triu_indices(num_classes, k=1)
    return float(np.corrcoef(dist[upper], graph_distance[upper])[0, 1])


def random_relu_features(x: np.ndarray, width: int, seed: int) -> np.ndarray:
    """One untrained ReLU layer with He-initialised Gaussian weights: (N, D) -> (N, width)."""
    w = np.random.default_rng(seed).normal(0.0, np.sqrt(2.0 / x.shape[1]), size=(x.shape[1], width))
    return np.maximum(x @ w, 0.0)


def test_shapes_and_hierarchy():
    b = make_synthetic(branching=(2, 3), dim=8, signal_dim=4, offset_dim=2, train_per_class=4,
                       val_per_class=2, seed=1)
    assert b.num_classes == 6 and b.input_shape == (8,)
    assert b.train.x.shape == (24, 8) and b.val.x.shape == (12, 8)
    assert b.train.x.dtype == torch.float32
    assert b.hierarchy.classes == b.classes and b.hierarchy.height == 2
    assert np.bincount(b.train.labels()).tolist() == [4] * 6
    assert b.info["level_scale"] == [2.0, 1.0]  # from 2 at the top down to 1 at the classes
    assert make_synthetic(train_per_class=1, val_per_class=1).info["level_scale"] == [2.0, 1.5, 1.0]


def test_seeded_reproducibility():
    options = {"branching": (2, 2), "train_per_class": 3, "val_per_class": 3}
    a = make_synthetic(**options, seed=5)
    b = create_dataset("synthetic", **options, seed=5)
    c = make_synthetic(**options, seed=6)
    torch.testing.assert_close(a.train.x, b.train.x)
    torch.testing.assert_close(a.val.x, b.val.x)
    assert not torch.equal(a.train.x, c.train.x)


def test_inputs_are_standardised_by_the_train_split():
    b = make_synthetic(train_per_class=50, val_per_class=50, seed=2)
    x_train, x_val = b.train.x.double().numpy(), b.val.x.double().numpy()
    np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x_train.var(axis=0).mean(), 1.0, rtol=1e-5)
    assert np.abs(x_val.mean(axis=0)).max() > 1e-3  # val is scaled by the train split's statistics
    np.testing.assert_allclose(x_val.var(axis=0).mean(), 1.0, rtol=0.05)


def test_nuisance_dominates_every_sample():
    """Within-class variance, not class structure, makes up nearly all of the input's variance."""
    b = make_synthetic(seed=0)
    x, y = b.train.x.double().numpy(), b.train.labels()
    means = np.stack([x[y == c].mean(axis=0) for c in range(b.num_classes)])
    within = ((x - means[y]) ** 2).sum(axis=1).mean()
    assert within / (x**2).sum(axis=1).mean() > 0.9


def test_siblings_are_closer_than_cousins_when_nothing_hides_the_tree():
    b = make_synthetic(branching=(4, 5), noise=0.1, train_per_class=20, seed=0, **HIDING_OFF)
    x, y = b.train.x.numpy(), b.train.labels()
    means = np.stack([x[y == c].mean(0) for c in range(b.num_classes)])
    d = np.linalg.norm(means[:, None] - means[None], axis=-1)
    lca = b.hierarchy.lca_height_matrix()
    assert d[lca == 1].mean() < 0.8 * d[lca == 2].mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_raw_input_hides_the_tree_that_generates_it(seed):
    """The premise of the design (module docstring): the latent class codes are strongly correlated
    with the tree's distances; the class means of the raw input, and of an untrained ReLU layer on
    it, only weakly; without the nuisance and offsets (and the bend's nonlinearity) the tree shows."""
    bundle = make_synthetic(seed=seed)
    y, d_w = bundle.train.labels(), bundle.hierarchy.graph_distance_matrix()
    codes = class_codes(bundle.hierarchy, 16, [2.0, 1.5, 1.0], np.random.default_rng(seed))
    assert tree_correlation(codes, np.arange(len(codes)), d_w) > 0.6
    x = bundle.train.x.double().numpy()
    assert tree_correlation(x, y, d_w) < 0.35
    assert tree_correlation(random_relu_features(x, 256, seed), y, d_w) < 0.35
    shown = make_synthetic(seed=seed, **HIDING_OFF).train.x.double().numpy()
    assert tree_correlation(shown, y, d_w) > 0.45
    assert tree_correlation(random_relu_features(shown, 256, seed), y, d_w) > 0.45


def test_class_offsets_are_unrelated_to_the_tree():
    """With the hierarchical signal off, the class means are the tree-free offsets alone."""
    b = make_synthetic(seed=3, level_scale=0.0, noise=0.0, nuisance_scale=0.0, warp=0.0)
    x, y = b.train.x.double().numpy(), b.train.labels()
    assert np.allclose(x, x[np.searchsorted(y, y)])  # every sample sits on its class mean
    assert abs(tree_correlation(x, y, b.hierarchy.graph_distance_matrix())) < 0.1


def test_small_warp_gain_tends_to_the_linear_signal():
    """tanh(g u) / g -> u as g -> 0: the warp bends the signal continuously away from the linear map."""
    options = {"branching": (2, 3), "train_per_class": 5, "val_per_class": 2, "seed": 4}
    linear = make_synthetic(**options, warp=0.0).train.x
    torch.testing.assert_close(make_synthetic(**options, warp=1e-4).train.x, linear, atol=1e-4, rtol=0)
    assert (make_synthetic(**options, warp=0.5).train.x - linear).abs().max() > 0.1


def test_bad_parameters():
    with pytest.raises(ValueError, match="The 'dim' parameter of make_synthetic must be an int >= 1. Got 0"):
        make_synthetic(dim=0)
    with pytest.raises(ValueError, match="'level_scale' parameter of make_synthetic must have 3 entries"):
        make_synthetic(level_scale=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"The 'signal_dim' parameter of make_synthetic must be an int "
                                         r"in \[1, 8\]. Got 9 instead"):
        make_synthetic(dim=8, signal_dim=9)
    with pytest.raises(ValueError, match=r"The 'offset_dim' parameter of make_synthetic must be an int "
                                         r"in \[0, 4\]. Got 5 instead"):
        make_synthetic(dim=8, signal_dim=4, offset_dim=5)
    with pytest.raises(ValueError, match="The 'warp' parameter of make_synthetic must be a finite float"):
        make_synthetic(warp=-1.0)
    with pytest.raises(ValueError, match="The 'data.name' setting must be one of .*synthetic"):
        create_dataset("imagenet-typo")


def test_tensor_split_keeps_one_copy_per_device():
    from hypbias.data import TensorSplit

    split = TensorSplit(torch.arange(6.0).view(3, 2), torch.tensor([0, 1, 0]))
    x, y = split.on(torch.device("cpu"))
    assert x is split.x
    assert y is split.y
    meta = torch.device("meta")
    first = split.on(meta)
    assert first[0].device == meta
    assert split.on(meta)[0] is first[0]
