"""The embedded default: a seeded hierarchical task whose hierarchy must be learned (DESIGN.md §6).

A balanced tree with ``branching = (b1, ..., bL)`` children per level has C = b1·…·bL classes. Each
class has a latent code z_c, the sum of one random vector per node on its path (:func:`class_codes`),
so classes share the components of their common ancestors; the coarse levels get larger vectors
(2, 1.5, 1 for 4 × 5 × 5). :func:`make_synthetic` hides that code from an untrained network in three
ways, so that what the report shows is learned rather than read off the input:

1. Class-independent nuisance: 48 of the 64 input dimensions carry noise of sd 10, against about 2
   per dimension for the 16 signal dimensions, so 95% of the input's variance is within-class and
   untrained features are dominated by it.
2. Tree-free class offsets (sd 4 in 8 of the nuisance dimensions): the nuisance alone averages out of
   class means, so the offsets are what keeps the hierarchy out of the class means of the raw input.
3. The signal enters through a fixed random map and a tanh (gain 0.25), then a random rotation mixes
   it with the nuisance: the hierarchy is not linearly available to the first layer.

Why it shows the paper's findings. The network must find the 16 low-noise directions among 64 and
undo the bend. Tree components shared by 25 (top) or 5 (middle) classes carry more of the
input-output correlation than a class's own, so they are learned first (Saxe, McClelland & Ganguli,
PNAS 2019): hypernym spaces converge before random groupings of the same sizes. The bend makes later
layers hold the hierarchy better than the first one (the paper's Fig. 6a).

Measured (``benchmarks/measure_default.py``; seeds 0–4, ``seed`` and ``data.seed`` equal). Premise,
Pearson r of class-mean distances with the tree's graph distances: latent codes 0.65–0.79; raw
input 0.16–0.30; an untrained MLP's layers 0.11–0.27 (0.52–0.71 for the input without nuisance,
offsets and tanh). ``synthetic.yaml`` (30 epochs, 20–30 s of training and analysis on one core):

- val accuracy H 75–80%, S4 97–100%; τ₀.₉₅(S4) 4–6 against R4 12.2–13.0 (mean of 10 draws),
  S20 8–11 against 13.0–14.6, H 13–15: every S_n ahead of all 10 of its draws, in every seed;
- ``ccc_cover`` of the top analysed layer (the logits) 0.00–0.07 at epoch 0, 0.65–0.88 at epoch
  8, 0.66–0.91 at epoch 30, above the first hidden layer's 0.54–0.69 in every seed
  (``ccc_class_means``: 0.00–0.08, 0.68–0.90, 0.67–0.92 against 0.57–0.76);
- plateau epoch (the first epoch with 90% of the change from epoch 0 to the end): NC4 in S4 at 3–4,
  in H at 10–11; NC3 in S4 at 2–3, in H at 3–4 (earlier in 4 seeds, tied in one);
- measured A(R_n) within 1.4 points of Eq. 22 from epoch 3 on.

``synthetic_nc.yaml`` (50 per class, 100 epochs, seeds 0–2): NC1 reaches half its total drop at
epoch 6–7 in S4 and 8 in H, 90% of it at 7–8 in S4, 17–19 in S20 and 27 in H. The logits' CCC peaks
at epoch 16 (0.68–0.91) and falls to 0.66–0.75 at epoch 100 as the classes collapse.

Not shown, as measured: (a) NC1's half drop comes later in S20 (epochs 9–10) than in H (8). Through
epoch 4 NC1 in S20 rises to 1.03–1.14 × its epoch-0 value while H's falls: the tree-free offsets
make the largest class-mean differences of the input, so they are fitted first, and they spread the
classes inside each middle-level group (without offsets S20 led H from epoch 2 in a trial run);
S20 drops below H from epoch 9–10 and ends at 0.03–0.06 of
its start against 0.16–0.19. (b) NC3's lead in the default run is small (1–2 epochs; a tie in
seed 4): the coarse split holds about half of ‖M‖² of H's centred class means from epoch 3 on
(0.47–0.69 in seed 0, against 3/99 for a simplex) but only 0.21–0.31 of the weights', so NC3 in H
stops at about 0.3 soon after the coarse split is learned, when S4's does.

Alternatives measured and dropped (seed 0 unless stated): no offsets leaves the tree in the raw
class means (r 0.69, seeds 0–2); a linear signal ties NC3 in S4 and H (5 of 5 seeds) and, with
weaker offsets, let the first layer beat the logits (1 of 3); an orthogonal map with tanh gain 0.25
did the same in 1 of 5 seeds, with gain 0.5 tied NC3 in 4 of 5; a sign-flipped signal (class means
zero, nuisance sd 5) let the first layer beat the logits (0.81 against 0.68); lr 0.01 leaves H at
50% val accuracy after 30 epochs.
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


def class_codes(hierarchy: Hierarchy, dim: int, scales: Sequence[float],
                rng: np.random.Generator) -> np.ndarray:
    """The latent class codes z_c, array of shape (C, dim).

    Every node below the root draws one vector ``v ~ N(0, scales[depth - 1]² I)`` (depth 1 = the
    top hypernyms, the last entry = the classes themselves); z_c is the sum of the vectors on the
    path from the root to class c, so classes share the components of their common ancestors.
    """
    codes = np.zeros((hierarchy.num_classes, dim))
    for node in hierarchy.nodes:
        depth = hierarchy.depth(node)
        if depth > 0:
            codes[hierarchy.leaves(node)] += rng.normal(0.0, scales[depth - 1], size=dim)
    return codes


def _level_scales(level_scale: Sequence[float] | float | None, depth: int, owner: str) -> list[float]:
    if level_scale is None:
        return np.linspace(2.0, 1.0, depth).tolist()  # a one-level tree gets 2.0
    scales = [level_scale] * depth if isinstance(level_scale, int | float) else list(level_scale)
    if len(scales) != depth:
        raise ValueError(
            f"The 'level_scale' parameter of {owner} must have {depth} entries (one per level). "
            f"Got {len(scales)} instead."
        )
    return [check_float(s, "level_scale", owner, low=0) for s in scales]


def _rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A random orthogonal matrix of shape (dim, dim), uniform over the orthogonal group."""
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


def make_synthetic(
    branching: Sequence[int] = (4, 5, 5),
    dim: int = 64,
    signal_dim: int = 16,
    level_scale: Sequence[float] | float | None = None,
    noise: float = 1.0,
    warp: float = 0.25,
    nuisance_scale: float = 10.0,
    offset_dim: int = 8,
    offset_scale: float = 4.0,
    train_per_class: int = 100,
    val_per_class: int = 30,
    seed: int = 0,
) -> DatasetBundle:
    """Generate the hierarchical dataset (see the module docstring for why it is built so).

    A sample of class c is ``x = Q [s ; n]`` standardised, with

    * the signal ``s = tanh(g A (z_c + noise · ε)) / g`` in ``signal_dim`` dimensions: the latent
      code z_c of :func:`class_codes` plus within-class noise ε ~ N(0, I), mapped by a fixed random
      matrix A (entries N(0, 1/signal_dim), so its gains differ from direction to direction) and
      bent elementwise with gain g = ``warp``; g = 0 is the linear limit s = A (z_c + noise · ε);
    * the nuisance ``n = nuisance_scale · ν + [u_c ; 0]`` in the other ``dim − signal_dim``
      dimensions: class-independent noise ν ~ N(0, I), plus in the first ``offset_dim`` of them a
      per-class offset u_c ~ N(0, offset_scale² I) drawn independently of the tree;
    * Q a fixed random rotation of all ``dim`` dimensions; then every input is centred by the train
      split's mean and divided by one global scale (the root mean per-dimension variance of the
      train split), the same for both splits.

    Parameters
    ----------
    branching : children per level, root first; C = prod(branching).
    dim : input dimension D.
    signal_dim : dimensions carrying the hierarchical signal (<= dim).
    level_scale : standard deviation of the node vectors, one value or one per level (top first);
        None: from 2 at the top level linearly down to 1 at the classes ((2, 1.5, 1) for 3 levels).
    noise : standard deviation of the within-class noise of the signal.
    warp : gain g of the nonlinear map of the signal; 0 leaves it linear.
    nuisance_scale : standard deviation of the class-independent nuisance.
    offset_dim, offset_scale : dimensions (<= dim − signal_dim) and standard deviation of the
        tree-free class offsets.
    train_per_class, val_per_class : samples per class in each split.
    seed : seeds the codes, offsets, maps and samples.

    Returns
    -------
    DatasetBundle with inputs of shape (N, dim) (float32), classes in depth-first order, and the
    generating tree as its hierarchy.
    """
    owner = "make_synthetic"
    dim = check_int(dim, "dim", owner, low=1)
    signal_dim = check_int(signal_dim, "signal_dim", owner, low=1, high=dim)
    offset_dim = check_int(offset_dim, "offset_dim", owner, low=0, high=dim - signal_dim)
    noise = check_float(noise, "noise", owner, low=0)
    warp = check_float(warp, "warp", owner, low=0)
    nuisance_scale = check_float(nuisance_scale, "nuisance_scale", owner, low=0)
    offset_scale = check_float(offset_scale, "offset_scale", owner, low=0)
    n_train = check_int(train_per_class, "train_per_class", owner, low=1)
    n_val = check_int(val_per_class, "val_per_class", owner, low=1)
    seed = check_int(seed, "seed", owner, low=0)
    hierarchy = synthetic_hierarchy(branching)
    scales = _level_scales(level_scale, len(branching), owner)
    rng = np.random.default_rng(seed)
    c = hierarchy.num_classes
    codes = class_codes(hierarchy, signal_dim, scales, rng)
    offsets = rng.normal(0.0, offset_scale, size=(c, offset_dim))
    bend = rng.normal(0.0, 1.0 / np.sqrt(signal_dim), size=(signal_dim, signal_dim))
    rotation = _rotation(dim, rng)

    def draw(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(c), per_class)
        signal = (codes[y] + noise * rng.normal(size=(len(y), signal_dim))) @ bend.T
        if warp > 0:
            signal = np.tanh(warp * signal) / warp
        nuisance = nuisance_scale * rng.normal(size=(len(y), dim - signal_dim))
        nuisance[:, :offset_dim] += offsets[y]
        return np.concatenate([signal, nuisance], axis=1) @ rotation.T, y

    (x_train, y_train), (x_val, y_val) = draw(n_train), draw(n_val)
    centre = x_train.mean(axis=0)
    scale = np.sqrt(x_train.var(axis=0).mean()) or 1.0

    def split(x: np.ndarray, y: np.ndarray) -> TensorSplit:
        x = (x - centre) / scale
        return TensorSplit(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y))

    info = {"branching": list(branching), "dim": dim, "signal_dim": signal_dim,
            "level_scale": scales, "noise": noise, "warp": warp, "nuisance_scale": nuisance_scale,
            "offset_dim": offset_dim, "offset_scale": offset_scale, "train_per_class": n_train,
            "val_per_class": n_val, "seed": seed}
    return DatasetBundle("synthetic", split(x_train, y_train), split(x_val, y_val),
                         hierarchy.classes, hierarchy, (dim,), info=info)


register_dataset("synthetic")(make_synthetic)
