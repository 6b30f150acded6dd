"""Learned hierarchies: agglomerative clustering of a class distance into a binary tree.

The paper closes by motivating data-driven hierarchies (the hierarchy a network learns need not be
WordNet's). Everything here works on arrays:

* :func:`confusion_distance` and :func:`class_mean_distance` turn a fine confusion matrix or class
  means into a class distance (for covers, ``hypbias.metrics.cover_distance`` gives D_F of Eq. 15);
* :func:`learn_hierarchy` clusters a distance (``scipy.cluster.hierarchy.linkage``) into a
  :class:`~hypbias.hierarchy.tree.Hierarchy`;
* :func:`learned_cut` cuts a learned hierarchy into n groups below its n − 1 highest merges;
* :func:`adjusted_rand_index` scores the agreement of two partitions.

The tree is kept binary, one internal node per merge, so every count of groups 1..C can be cut,
by :func:`learned_cut` and by ``Hierarchy.superclasses(n=k)`` alike. Internal nodes are named
``L1`` (the root, the last merge) to ``L{C-1}`` (the first merge): L_k is the k-th merge counted
from the top, so the names alone keep the merge order through any hierarchy file format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import pdist, squareform

from hypbias._validation import check_choice, check_int, host_array, integer_array
from hypbias.errors import HierarchyError
from hypbias.hierarchy.tree import Hierarchy

LINKAGE_METHODS = ("average", "complete", "ward")
"""Linkage rules accepted by :func:`learn_hierarchy` (those of ``scipy.cluster.hierarchy.linkage``)."""

NODE_PREFIX = "L"
"""Internal nodes are ``L1`` .. ``L{C-1}``; underscores are prepended while a class name collides."""


# ---------------------------------------------------------------------------- class distances
def _square(matrix: Any, name: str, owner: str) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise ValueError(f"The '{name}' parameter of {owner} must have shape (C, C) with C >= 2. "
                         f"Got shape {m.shape} instead.")
    if not np.isfinite(m).all():
        raise ValueError(f"The '{name}' parameter of {owner} must be finite. "
                         f"Got {int((~np.isfinite(m)).sum())} non-finite entries instead.")
    return m


def confusion_distance(confusion: Any) -> np.ndarray:
    """Class distance from a fine confusion matrix: D = 1 − (P + Pᵀ)/2, zero diagonal.

    P is the row-normalised confusion matrix (P[i, j] = share of class i predicted as j), so two
    classes are close when the network mistakes either for the other; D has the form of the cover
    distance D_F = 1 − (A + Aᵀ)/2 (Eq. 15) with P in place of the covers A.

    Parameters
    ----------
    confusion : array of shape (C, C)
        Counts, M[i, j] = true i predicted j; every row needs a sample.

    Returns
    -------
    array of shape (C, C), float64, symmetric, values in [0, 1].
    """
    owner = "confusion_distance"
    m = _square(confusion, "confusion", owner)
    if (m < 0).any():
        raise ValueError(f"The 'confusion' parameter of {owner} must hold counts >= 0. "
                         f"Got a minimum of {m.min():g} instead.")
    rows = m.sum(axis=1)
    if (rows == 0).any():
        raise ValueError(f"The 'confusion' parameter of {owner} must have a sample in every row; "
                         f"row {int(np.flatnonzero(rows == 0)[0])} (a class) is empty.")
    p = m / rows[:, None]
    d = 1.0 - (p + p.T) / 2.0
    np.fill_diagonal(d, 0.0)
    return d


def class_mean_distance(means: Any) -> np.ndarray:
    """Euclidean distances ‖μ_i − μ_j‖₂ between class means (App. C.3), shape (C, C), float64.

    ``means`` has shape (C, D), e.g. ``sums / counts[:, None]`` of the final class statistics.
    """
    mu = np.asarray(means, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] < 2 or not np.isfinite(mu).all():
        raise ValueError("The 'means' parameter of class_mean_distance must be a finite array of "
                         f"shape (C, D) with C >= 2. Got shape {mu.shape} instead.")
    return squareform(pdist(mu))


# ---------------------------------------------------------------------------- clustering
def learn_hierarchy(distance: Any, classes: Sequence[str], *, method: str = "average",
                    source: str = "learned") -> Hierarchy:
    """Agglomerative clustering of a class distance into a binary hierarchy.

    Parameters
    ----------
    distance : array of shape (C, C)
        Symmetric, non-negative class distances (the diagonal is ignored), e.g. from
        :func:`confusion_distance`, :func:`class_mean_distance` or ``metrics.cover_distance``.
    classes : sequence of C str
        Class names, in the order of the rows.
    method : ``"average"`` (UPGMA), ``"complete"`` or ``"ward"``
        The linkage rule. Ward assumes Euclidean distances (class means); on other distances it
        still runs, through the Lance–Williams update.
    source : where the hierarchy came from, named in its error messages.

    Returns
    -------
    Hierarchy
        Binary: C − 1 internal nodes ``L1`` (root) .. ``L{C-1}`` (see the module docstring);
        siblings are ordered by their smallest class index.
    """
    owner = "learn_hierarchy"
    check_choice(method, "method", owner, LINKAGE_METHODS)
    d = _square(distance, "distance", owner)
    classes = list(classes)
    if len(classes) != len(d):
        raise ValueError(f"The 'classes' parameter of {owner} must have {len(d)} names (one per "
                         f"row of distance). Got {len(classes)} instead.")
    asym = np.abs(d - d.T).max()
    if asym > 1e-9 * max(1.0, np.abs(d).max()) or (d < 0).any():
        raise ValueError(f"The 'distance' parameter of {owner} must be symmetric and >= 0. "
                         f"Got an asymmetry of {asym:g} and a minimum of {d.min():g} instead.")
    return hierarchy_from_linkage(linkage(squareform(d, checks=False), method=method), classes,
                                  source=source)


def _node_prefix(classes: Sequence[str]) -> str:
    taken = set(classes)
    prefix = NODE_PREFIX
    while any(c.startswith(prefix) and c[len(prefix):].isdigit() for c in taken):
        prefix = "_" + prefix
    return prefix


def hierarchy_from_linkage(merges: Any, classes: Sequence[str], *,
                           source: str = "learned") -> Hierarchy:
    """The binary hierarchy of a SciPy linkage matrix (shape (C − 1, 4); row r creates node C + r).

    Merges are numbered from the top: row r becomes node ``L{C-1-r}``.
    """
    z = np.asarray(merges, dtype=np.float64)
    c = len(classes)
    if z.shape != (c - 1, 4):
        raise ValueError(f"The 'merges' parameter of hierarchy_from_linkage must have shape "
                         f"({c - 1}, 4) for {c} classes. Got {z.shape} instead.")
    prefix = _node_prefix(classes)
    names = list(classes) + [f"{prefix}{c - 1 - r}" for r in range(c - 1)]
    smallest = np.concatenate([np.arange(c), np.zeros(c - 1, dtype=np.int64)])
    parents: dict[str, str] = {}
    for r, (a, b) in enumerate(z[:, :2].astype(np.int64)):
        smallest[c + r] = min(smallest[a], smallest[b])
        for child in sorted((a, b), key=smallest.__getitem__):
            parents[names[child]] = names[c + r]
    return Hierarchy.from_parents(parents, classes, source=source)


def learned_cut(hierarchy: Hierarchy, n: int) -> list[str]:
    """The n groups of a learned hierarchy below its n − 1 highest merges ``L1`` .. ``L{n-1}``.

    This is the dendrogram's own cut (SciPy's ``fcluster(..., n, "maxclust")`` on the linkage), read
    from the node names alone. It differs from ``Hierarchy.superclasses(n=n)``, which splits the
    largest group first and ignores merge heights. Returns node names in depth-first order.

    Raises :class:`HierarchyError` when ``hierarchy`` is not binary with internal nodes named as
    :func:`learn_hierarchy` names them.
    """
    c = hierarchy.num_classes
    n = check_int(n, "n", "learned_cut", low=1, high=c)
    root = hierarchy.name(hierarchy.root)
    prefix = root[:-1]
    internal = hierarchy.nodes[c:]
    expected = [f"{prefix}{k}" for k in range(1, c)]
    if not root.endswith("1") or sorted(internal) != sorted(expected) or any(
        len(hierarchy.children(node)) != 2 for node in internal
    ) or any(int(hierarchy.parents(node)[0][len(prefix):]) >= k
             for k, node in enumerate(expected[1:], start=2)):
        raise HierarchyError(
            f"{hierarchy.source}: not a learned hierarchy (learned_cut needs a binary tree whose "
            f"internal nodes are named {prefix or NODE_PREFIX}1 (root) .. "
            f"{prefix or NODE_PREFIX}{c - 1} in merge order from the top)"
        )
    undone = set(expected[: n - 1])
    cut = [root] if n == 1 else [child for node in expected[: n - 1]
                                 for child in hierarchy.children(node) if child not in undone]
    position = np.empty(c, dtype=np.int64)
    position[hierarchy.dfs_order()] = np.arange(c)
    return sorted(cut, key=lambda node: position[hierarchy.leaves(node)].min())


# ---------------------------------------------------------------------------- agreement of cuts
def adjusted_rand_index(labels_a: Any, labels_b: Any) -> float:
    """Adjusted Rand index of two partitions of the same items (Hubert & Arabie 1985).

    From the contingency table n_ij with row sums a_i, column sums b_j and N items:
    ARI = (Σ C(n_ij, 2) − E) / (½ [Σ C(a_i, 2) + Σ C(b_j, 2)] − E),
    E = Σ C(a_i, 2) · Σ C(b_j, 2) / C(N, 2). 1 for identical partitions (up to relabelling),
    about 0 for independent ones, negative below chance. When both partitions are all singletons or
    both one group the ratio is 0/0; they are then identical and the result is 1.

    Parameters
    ----------
    labels_a, labels_b : integer arrays or tensors (on any device) of shape (N,), group labels (any
        integers).

    Returns
    -------
    float
    """
    owner = "adjusted_rand_index"
    a = integer_array(labels_a, "labels_a", owner)
    b = integer_array(labels_b, "labels_b", owner, length=len(a))
    _, a = np.unique(host_array(a), return_inverse=True)
    _, b = np.unique(host_array(b), return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1), dtype=np.float64)
    np.add.at(table, (a, b), 1.0)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    index, rows, cols = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    total = len(a) * (len(a) - 1) / 2
    expected = rows * cols / total if total else 0.0
    best = (rows + cols) / 2
    if best == expected:
        return 1.0
    return (index - expected) / (best - expected)


__all__ = ["LINKAGE_METHODS", "adjusted_rand_index", "class_mean_distance", "confusion_distance",
           "hierarchy_from_linkage", "learn_hierarchy", "learned_cut"]
