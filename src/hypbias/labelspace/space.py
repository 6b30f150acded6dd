"""Label spaces: maps T: H -> X from the C fine classes to |X| groups (DESIGN.md §2).

A label space is an integer array ``t`` of length C with values ``0 .. |X|-1``. It transforms labels,
predictions and per-class statistics, so every metric is written once for the fine space and
reused for every hypernym space S_n and random isomorphic space R_n.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hypbias._validation import check_int, check_label_values, check_range, integer_array
from hypbias.hierarchy.tree import Hierarchy


class LabelSpace:
    """A map from C fine classes to ``num_groups`` groups.

    Parameters
    ----------
    t : array-like of int, shape (C,)
        Group of every fine class; every value in ``0 .. num_groups-1`` must occur.
    names : sequence of str, optional
        Group names, length ``num_groups``; default ``"0", "1", ...``.

    Examples
    --------
    >>> s = LabelSpace([0, 0, 1, 1, 1])
    >>> s.sizes.tolist(), s.apply([4, 1]).tolist()
    ([2, 3], [1, 0])
    """

    def __init__(self, t: Any, names: Sequence[str] | None = None) -> None:
        arr = integer_array(np.asarray(t), "t", "LabelSpace")
        check_range(arr, "t", "LabelSpace", 0, None)
        sizes = np.bincount(arr)
        if (sizes == 0).any():
            raise ValueError(
                "The 't' parameter of LabelSpace must use every group index 0..n-1; "
                f"group {int(np.flatnonzero(sizes == 0)[0])} is empty."
            )
        self.t = arr.astype(np.int64)
        self.t.setflags(write=False)
        n = len(sizes)
        if names is None:
            names = [str(g) for g in range(n)]
        if len(names) != n:
            raise ValueError(
                f"The 'names' parameter of LabelSpace must have {n} entries. Got {len(names)} instead."
            )
        self.names = list(names)
        self._torch: dict[torch.device, torch.Tensor] = {}

    @property
    def num_classes(self) -> int:
        """C, the number of fine classes."""
        return len(self.t)

    @property
    def num_groups(self) -> int:
        """|X|, the number of groups."""
        return len(self.names)

    @property
    def sizes(self) -> np.ndarray:
        """Classes per group, shape (num_groups,)."""
        return np.bincount(self.t, minlength=self.num_groups)

    def members(self, group: int) -> np.ndarray:
        """Fine classes of ``group``, shape (k,)."""
        return np.flatnonzero(self.t == group)

    def one_hot(self, dtype: Any = np.float64) -> np.ndarray:
        """Membership matrix of shape (C, num_groups): entry (c, x) is 1 when t[c] == x."""
        out = np.zeros((self.num_classes, self.num_groups), dtype=dtype)
        out[np.arange(self.num_classes), self.t] = 1
        return out

    def apply(self, labels: Any) -> Any:
        """Map fine labels (integers in [0, C), any shape) to groups; returns the same kind (NumPy
        array or torch tensor). Other dtypes and out-of-range values raise ``ValueError``."""
        labels = check_label_values(labels, "labels", "LabelSpace.apply", self.num_classes)
        if isinstance(labels, torch.Tensor):
            dev = labels.device
            if dev not in self._torch:
                self._torch[dev] = torch.tensor(self.t, device=dev)
            return self._torch[dev][labels]
        return self.t[labels]

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_hierarchy(cls, hierarchy: Hierarchy, level: int | None = None,
                       n: int | None = None) -> LabelSpace:
        """The hypernym space cut from ``hierarchy`` by ``Hierarchy.superclasses(level=|n=)``."""
        nodes = hierarchy.superclasses(level=level, n=n)
        return cls(hierarchy.assignment(nodes), names=nodes)

    @classmethod
    def identity(cls, num_classes: int) -> LabelSpace:
        """The fine space H itself."""
        return cls(np.arange(check_int(num_classes, "num_classes", "LabelSpace.identity", low=1)))

    def random_isomorphic(self, seed: int) -> LabelSpace:
        """R_n: the same group sizes with classes assigned to groups at random (seeded).

        Group names become ``"r0", "r1", ...`` since the groups no longer mean anything.
        """
        rng = np.random.default_rng(check_int(seed, "seed", "random_isomorphic", low=0))
        return LabelSpace(rng.permutation(self.t), names=[f"r{g}" for g in range(self.num_groups)])

    # ------------------------------------------------------------------ chance levels
    def group_shares(self, sample_counts: Any) -> np.ndarray:
        """p_x, the share of samples in each group, from per-class sample counts (shape (C,))."""
        counts = np.asarray(sample_counts, dtype=np.float64)
        if counts.shape != (self.num_classes,) or (counts < 0).any() or counts.sum() <= 0:
            raise ValueError(
                f"The 'sample_counts' parameter must be {self.num_classes} non-negative counts with a "
                f"positive sum. Got shape {counts.shape} instead."
            )
        return np.bincount(self.t, weights=counts, minlength=self.num_groups) / counts.sum()

    def chance_accuracy(self, sample_counts: Any) -> float:
        """B(X) = 100 · Σ_x p_x², the chance accuracy with set imbalance (Eq. 9), in percent."""
        p = self.group_shares(sample_counts)
        return float(100.0 * np.sum(p**2))

    def theoretical_accuracy(self, acc_fine: Any, sample_counts: Any) -> Any:
        """Eq. 22: P_R = P_H + (1 − P_H) · Σ_r P_r², in percent (P_r = share of samples in group r).

        ``acc_fine`` is the fine accuracy A(H) in percent (a scalar or an array, e.g. one per epoch);
        the result has its shape. The paper's approximation: it assumes a wrong fine prediction
        lands in a group with probability equal to that group's share of samples. The exact
        expectation over random isomorphic assignments is :meth:`expected_random_accuracy`; Eq. 22
        exceeds it by (1 − P_H)(Σ_r P_r² − Σ_r n_r(n_r − 1)/(C(C − 1))), over a point for groups of
        2–3 classes and under 0.1 point for ImageNet's S3.
        """
        a = _fine_share(acc_fine, "theoretical_accuracy")
        b = self.chance_accuracy(sample_counts) / 100.0
        return 100.0 * (a + (1.0 - a) * b)

    def expected_random_accuracy(self, acc_fine: Any) -> Any:
        """E[A(R)] over random isomorphic assignments of this space's group sizes, in percent.

        For any fine confusion matrix with accuracy A(H), a wrong prediction i → j (i ≠ j) counts as
        correct in R when i and j share a group, which a uniformly random assignment with n_r classes
        in group r does with probability Σ_r n_r(n_r − 1)/(C(C − 1)); so
        E[A(R)] = A(H) + (100 − A(H)) · Σ_r n_r(n_r − 1)/(C(C − 1)), exactly. ``acc_fine`` as in
        :meth:`theoretical_accuracy`.
        """
        a = _fine_share(acc_fine, "expected_random_accuracy")
        n, c = self.sizes.astype(np.float64), float(self.num_classes)
        same = float(np.sum(n * (n - 1)) / (c * (c - 1))) if c > 1 else 1.0
        return 100.0 * (a + (1.0 - a) * same)

    def __len__(self) -> int:
        return self.num_groups

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSpace) and np.array_equal(self.t, other.t)

    def __hash__(self) -> int:
        return hash(self.t.tobytes())

    def __repr__(self) -> str:
        sizes = self.sizes.tolist()
        shown = ", ".join(map(str, sizes[:8])) + (", ..." if len(sizes) > 8 else "")
        return f"LabelSpace({self.num_classes} classes -> {self.num_groups} groups, sizes [{shown}])"


def _fine_share(acc_fine: Any, owner: str) -> np.ndarray:
    """A(H) in percent as a share in [0, 1]; ValueError outside [0, 100]."""
    a = np.asarray(acc_fine, dtype=np.float64) / 100.0
    if np.any((a < 0) | (a > 1)):
        raise ValueError(
            f"The 'acc_fine' parameter of {owner} must be a percentage in [0, 100]. "
            f"Got values in [{a.min() * 100:g}, {a.max() * 100:g}] instead."
        )
    return a
