"""The embedded default: a seeded hierarchical Gaussian classification task (DESIGN.md §6).

A balanced random tree with ``branching = (b1, b2, ..., bL)`` children per level gives
C = b1·b2·…·bL classes. Every non-root node draws one random vector ``v ~ N(0, scale_l² I)``; a class
mean is the sum of the vectors along its path, so classes under one hypernym share the features of
their common ancestors. Samples are ``mean + noise · N(0, I)``, optionally passed through a fixed
random warp ``x -> tanh(W x)`` (W with entries N(0, 1/dim)) so that the task is not linearly trivial.

Deep networks learn such data coarse to fine (Saxe, McClelland & Ganguli, PNAS 2019): the
top-level hypernyms are separated first, which is the effect hypbias measures.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch

from hypbias._validation import check_float, check_int
from hypbias.data.base import DatasetBundle, TensorSplit, register_dataset
from hypbias.hierarchy.tree import Hierarchy


def synthetic_hierarchy(branching: Sequence[int]) -> Hierarchy:
    """The balanced tree: internal nodes ``g<path>`` (``g1``, ``g1.3``, ...), classes ``c<path>``."""
    branching = [check_int(b, "branching", "synthetic_hierarchy", low=1) for b in branching]
    if not branching:
        raise ValueError(
            "The 'branching' parameter of synthetic_hierarchy must be non-empty. Got [] instead."
        )
    parents: dict[str, str | None] = {"root": None}
    classes = []
    for depth in range(1, len(branching) + 1):
        for path in itertools.product(*[range(b) for b in branching[:depth]]):
            key = ".".join(map(str, path))
            parent = "root" if depth == 1 else "g" + ".".join(map(str, path[:-1]))
            name = ("c" if depth == len(branching) else "g") + key
            parents[name] = parent
            if depth == len(branching):
                classes.append(name)
    return Hierarchy.from_parents(parents, classes, source="synthetic")


def make_synthetic(
    branching: Sequence[int] = (4, 5, 5),
    dim: int = 64,
    noise: float = 1.5,
    level_scale: Sequence[float] | float = 1.0,
    train_per_class: int = 100,
    val_per_class: int = 30,
    warp: bool = True,
    seed: int = 0,
) -> DatasetBundle:
    """Generate the hierarchical dataset.

    Parameters
    ----------
    branching : children per level, root first; C = prod(branching).
    dim : input dimension D.
    noise : standard deviation of the isotropic sample noise.
    level_scale : standard deviation of the node vectors, one value or one per level.
    train_per_class, val_per_class : samples per class in each split.
    warp : apply the fixed nonlinear warp ``tanh(W x)``.
    seed : seeds the tree's vectors, the warp and the samples.

    Returns
    -------
    DatasetBundle with inputs of shape (N, dim) (float32), classes in depth-first order, and the
    generating tree as its hierarchy.
    """
    owner = "make_synthetic"
    dim = check_int(dim, "dim", owner, low=1)
    noise = check_float(noise, "noise", owner, low=0)
    n_train = check_int(train_per_class, "train_per_class", owner, low=1)
    n_val = check_int(val_per_class, "val_per_class", owner, low=1)
    seed = check_int(seed, "seed", owner, low=0)
    hierarchy = synthetic_hierarchy(branching)
    depth = len(branching)
    scales = [level_scale] * depth if isinstance(level_scale, int | float) else list(level_scale)
    if len(scales) != depth:
        raise ValueError(
            f"The 'level_scale' parameter of {owner} must have {depth} entries (one per level). "
            f"Got {len(scales)} instead."
        )
    rng = np.random.default_rng(seed)
    c = hierarchy.num_classes
    means = np.zeros((c, dim))
    for node in hierarchy.nodes[c:]:
        d = hierarchy.depth(node)
        if d == 0:
            continue
        means[hierarchy.leaves(node)] += rng.normal(0.0, scales[d - 1], size=dim)
    means += np.stack([rng.normal(0.0, scales[-1], size=dim) for _ in range(c)])
    w = rng.normal(0.0, 1.0 / np.sqrt(dim), size=(dim, dim)) if warp else None

    def sample(per_class: int) -> TensorSplit:
        y = np.repeat(np.arange(c), per_class)
        x = means[y] + noise * rng.normal(size=(len(y), dim))
        if w is not None:
            x = np.tanh(x @ w.T)
        return TensorSplit(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y))

    train, val = sample(n_train), sample(n_val)
    info = {"branching": list(branching), "dim": dim, "noise": noise, "level_scale": scales,
            "train_per_class": n_train, "val_per_class": n_val, "warp": warp, "seed": seed}
    return DatasetBundle("synthetic", train, val, hierarchy.classes, hierarchy, (dim,), info=info)


register_dataset("synthetic")(make_synthetic)
