"""The embedded synthetic dataset: seeded, shaped by its tree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hypbias.data import create_dataset, make_synthetic


def test_shapes_and_hierarchy():
    b = make_synthetic(branching=(2, 3), dim=8, train_per_class=4, val_per_class=2, seed=1)
    assert b.num_classes == 6 and b.input_shape == (8,)
    assert b.train.x.shape == (24, 8) and b.val.x.shape == (12, 8)
    assert b.hierarchy.classes == b.classes and b.hierarchy.height == 2
    assert np.bincount(b.train.labels()).tolist() == [4] * 6


def test_seeded_reproducibility():
    a = make_synthetic(branching=(2, 2), dim=4, train_per_class=3, val_per_class=3, seed=5)
    b = create_dataset("synthetic", branching=(2, 2), dim=4, train_per_class=3, val_per_class=3, seed=5)
    c = make_synthetic(branching=(2, 2), dim=4, train_per_class=3, val_per_class=3, seed=6)
    torch.testing.assert_close(a.train.x, b.train.x)
    assert not torch.equal(a.train.x, c.train.x)


def test_siblings_are_closer_than_cousins():
    b = make_synthetic(branching=(4, 5), dim=64, noise=0.1, warp=False, train_per_class=20, seed=0)
    x, y = b.train.x.numpy(), b.train.labels()
    means = np.stack([x[y == c].mean(0) for c in range(b.num_classes)])
    d = np.linalg.norm(means[:, None] - means[None], axis=-1)
    same = b.hierarchy.lca_height_matrix() == 1
    other = b.hierarchy.lca_height_matrix() == 2
    assert d[same].mean() < 0.8 * d[other].mean()


def test_bad_parameters():
    with pytest.raises(ValueError, match="The 'dim' parameter of make_synthetic must be an int >= 1. Got 0"):
        make_synthetic(dim=0)
    with pytest.raises(ValueError, match="'level_scale' parameter of make_synthetic must have 3 entries"):
        make_synthetic(level_scale=[1.0, 2.0])
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
