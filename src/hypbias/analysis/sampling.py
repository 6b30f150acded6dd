"""Stratified, seeded samples of a split: query/support sets (Sec. 3.2) and probe splits (App. C.4.2).

Both draws are pure functions of the labels and the seed, so the tracker draws once and measures the
same examples at every epoch. Index arrays are sorted by class, then by draw order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hypbias._validation import check_int, check_labels


@dataclass(frozen=True)
class QuerySupport:
    """Indices into a split of the disjoint query set Q and support set S (Eq. 10).

    Attributes
    ----------
    query : int array of shape (n_q,)
    support : int array of shape (n_s,)
    """

    query: np.ndarray
    support: np.ndarray


def _shuffled_by_class(labels: np.ndarray, num_classes: int, seed: int) -> list[np.ndarray]:
    """Per class, the indices of its examples in a seeded random order."""
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    bounds = np.cumsum(np.bincount(labels, minlength=num_classes))[:-1]
    return [rng.permutation(members) for members in np.split(order, bounds)]


def _prepare(labels: Any, num_classes: int | None, seed: int, owner: str) -> tuple[np.ndarray, int]:
    check_int(seed, "seed", owner, low=0)
    arr = np.asarray(labels)
    if num_classes is None:
        num_classes = int(arr.max()) + 1 if arr.size else 0
    num_classes = check_int(num_classes, "num_classes", owner, low=1)
    return check_labels(arr, "labels", owner, num_classes), num_classes


def sample_query_support(labels: Any, k: int = 25, seed: int = 0, *,
                         num_classes: int | None = None,
                         allow_fewer: bool = False) -> QuerySupport:
    """Draw 2K examples per class, K query and K support, disjoint (Eq. 10).

    Parameters
    ----------
    labels : int array of shape (N,), the split's fine labels
    k : int >= 1, K (25 by default)
    seed : int >= 0
    num_classes : int, optional; default the largest label + 1
    allow_fewer : bool
        A class with fewer than 2K examples raises ``ValueError`` unless this is set; then such a
        class uses all its n examples, ⌈n/2⌉ as queries and ⌊n/2⌋ as support (n >= 2 still needed).

    Returns
    -------
    QuerySupport of index arrays into ``labels``.
    """
    owner = "sample_query_support"
    k = check_int(k, "k", owner, low=1)
    y, c = _prepare(labels, num_classes, seed, owner)
    query, support = [], []
    for cls, members in enumerate(_shuffled_by_class(y, c, seed)):
        n = len(members)
        if n < 2 * k and (not allow_fewer or n < 2):
            need = 2 if allow_fewer else 2 * k
            raise ValueError(
                f"The 'labels' parameter of {owner} has {n} examples of class {cls}; {need} are "
                f"needed (2K with K = {k})" + ("" if allow_fewer else
                                               "; pass allow_fewer=True to use what there is")
                + "."
            )
        take = min(n, 2 * k)
        half = (take + 1) // 2
        query.append(members[:half])
        support.append(members[half:take])
    return QuerySupport(np.concatenate(query), np.concatenate(support))


def probe_split(labels: Any, k: int = 10, seed: int = 0, *, num_classes: int | None = None,
                allow_fewer: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Split an evaluation split into K_probe training examples per class and the rest (App. C.4.2).

    Parameters
    ----------
    labels : int array of shape (N,)
    k : int >= 1, K_probe (10 by default); every class needs more than k examples
    seed : int >= 0
    num_classes : int, optional; default the largest label + 1
    allow_fewer : a class with at most k examples gives half of them (rounded down, at least one
        when it has two) to training instead of raising

    Returns
    -------
    (train, test): disjoint int index arrays covering ``labels``, of shapes (C·k,) and (N − C·k,)
    when every class has more than k examples.
    """
    owner = "probe_split"
    k = check_int(k, "k", owner, low=1)
    y, c = _prepare(labels, num_classes, seed, owner)
    groups = _shuffled_by_class(y, c, seed)
    short = [cls for cls, members in enumerate(groups) if len(members) <= k]
    if short and allow_fewer:
        sizes = [k if len(m) > k else len(m) // 2 for m in groups]
        return (np.concatenate([m[:s] for m, s in zip(groups, sizes, strict=True)]),
                np.concatenate([m[s:] for m, s in zip(groups, sizes, strict=True)]))
    if short:
        cls = short[0]
        raise ValueError(
            f"The 'labels' parameter of {owner} has {len(groups[cls])} examples of class {cls}; "
            f"more than k = {k} are needed to keep some for testing."
        )
    train = np.concatenate([members[:k] for members in groups])
    test = np.concatenate([members[k:] for members in groups])
    return train, test


__all__ = ["QuerySupport", "probe_split", "sample_query_support"]
