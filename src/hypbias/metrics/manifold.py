"""Alignment of a feature manifold with the class hierarchy (Sec. 3.2, App. C.3).

Per class c there are K query points and K support points (embedded features). For a query u of
class i and the support set V^j of class j, d(u, V^j) = min_{v ∈ V^j} ‖u − v‖₂ (Eq. 11). The cover

    p(i, j) = (1 / r_max) ∫_0^{r_max} P(d(u, V^j) < r) dr                         (Eq. 12–14)

has a closed form: for one query the integrand is the indicator of r > d, whose integral over
[0, r_max] is max(0, r_max − d), so p(i, j) = mean_u max(0, 1 − d(u, V^j) / r_max). No radius grid
is needed, and the (query × support) distance matrix is streamed in chunks of query rows so memory
stays bounded (C = 1000, K = 50 needs a few hundred MB at most, on CPU or CUDA).

The cover matrix A = [p(i, j)] gives the distance D_F = 1 − (A + Aᵀ)/2 (Eq. 15), compared with the
hierarchy's graph distances d_W by the cophenetic correlation coefficient (Eq. 17–18). App. C.3's two
alternatives, class-mean distances and the direct correlation of example-pair distances with d_W,
are here too.

Every function accepts NumPy arrays or torch tensors (on any device) and returns NumPy values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from hypbias._validation import check_float, check_int, check_labels
from hypbias.metrics._inputs import as_tensor, check_values
from hypbias.metrics.base import Accumulator, State

_CHUNK_ELEMENTS = 1 << 24
"""Distance-matrix entries per chunk (64 MB in float32) when ``chunk_size`` is not given."""


# ---------------------------------------------------------------------------------------- inputs
def _points(x: Any, name: str, owner: str, device: torch.device | None = None) -> torch.Tensor:
    """A 2-d floating tensor of shape (n, dim); float64 input stays float64, the rest is float32."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2 or t.shape[0] == 0 or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(
            f"The '{name}' parameter of {owner} must be a non-empty 2-d float array of shape "
            f"(n, dim). Got shape {tuple(t.shape)} and dtype {t.dtype} instead."
        )
    t = t.detach()
    if device is not None:
        t = t.to(device)
    return t.to(torch.float64 if t.dtype == torch.float64 else torch.float32)


def _num_classes(num_classes: int | None, owner: str, *labels: Any) -> int:
    if num_classes is not None:
        return check_int(num_classes, "num_classes", owner, low=1)
    top = [int(np.max(y.cpu().numpy() if isinstance(y, torch.Tensor) else y)) for y in labels
           if len(y)]
    return max(top, default=-1) + 1


def power_of_two_scale(*points: torch.Tensor) -> float:
    """2^k with k = ⌊log2 max |x|⌋ over the entries of ``points`` (1 when they are all 0 or one is
    not finite).

    Dividing by it is exact in floating point and brings the largest magnitude into [1, 2).
    """
    largest = max((float(p.abs().amax()) for p in points if p.numel()), default=0.0)
    if largest == 0.0 or not math.isfinite(largest):
        return 1.0
    return math.ldexp(1.0, math.frexp(largest)[1] - 1)


def _require_every_class(labels: np.ndarray, num_classes: int, name: str, owner: str) -> None:
    missing = np.flatnonzero(np.bincount(labels, minlength=num_classes) == 0)
    if missing.size:
        raise ValueError(
            f"The '{name}' parameter of {owner} must hold every class 0..{num_classes - 1}; "
            f"class {int(missing[0])} has no points ({missing.size} classes missing)."
        )


class _QuerySupport:
    """Validated query and support points on one device, in one dtype, with their labels."""

    def __init__(self, owner: str, query: Any, query_labels: Any, support: Any,
                 support_labels: Any, num_classes: int | None, device: Any) -> None:
        dev = None if device is None else torch.device(device)
        self.query = _points(query, "query", owner, dev)
        self.support = _points(support, "support", owner, self.query.device)
        if self.query.shape[1] != self.support.shape[1]:
            raise ValueError(
                f"The 'support' parameter of {owner} must have the query's dimension "
                f"{self.query.shape[1]}. Got {self.support.shape[1]} instead."
            )
        if self.support.dtype != self.query.dtype:
            self.query = self.query.double()
            self.support = self.support.double()
        # Distances are computed in units of a power of two near the largest coordinate, so that
        # finite features of any magnitude give finite distances (their squares would overflow
        # float32 from about 1e19 on); the division is exact, so unit-scale features are unchanged.
        self.scale = power_of_two_scale(self.query, self.support)
        self.query = self.query / self.scale
        self.support = self.support / self.scale
        c = _num_classes(num_classes, owner, query_labels, support_labels)
        self.num_classes = c
        self.query_labels = check_labels(query_labels, "query_labels", owner, c,
                                         length=len(self.query))
        self.support_labels = check_labels(support_labels, "support_labels", owner, c,
                                           length=len(self.support))
        _require_every_class(self.query_labels, c, "query_labels", owner)
        _require_every_class(self.support_labels, c, "support_labels", owner)
        # Support sorted by class: with equal class sizes a chunk's columns reshape to (C, K);
        # otherwise groups[j] lists the columns of class j, padded with the index of an extra
        # column so that every class has the same number of entries (see class_reduce).
        order = np.argsort(self.support_labels, kind="stable")
        self.support = self.support[torch.as_tensor(order, device=self.support.device)]
        self.support_labels = self.support_labels[order]
        counts = np.bincount(self.support_labels, minlength=c)
        self.groups = None
        if (counts != counts[0]).any():
            groups = np.full((c, counts.max()), len(order), dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            groups[self.support_labels, np.arange(len(order)) - starts[self.support_labels]] = (
                np.arange(len(order)))
            self.groups = torch.as_tensor(groups, device=self.query.device)

    def chunks(self, chunk_size: int | None) -> Iterator[tuple[slice, torch.Tensor]]:
        """Yield (rows, D) with D[a, b] = ‖query[rows][a] − support[b]‖₂, shape (len(rows), n_s)."""
        n_q, n_s = len(self.query), len(self.support)
        step = chunk_size or max(1, _CHUNK_ELEMENTS // n_s)
        # Centring on the support mean keeps the norms, and so the rounding of cdist, small.
        centre = self.support.mean(dim=0, keepdim=True)
        q, s = self.query - centre, self.support - centre
        for start in range(0, n_q, step):
            rows = slice(start, min(start + step, n_q))
            yield rows, torch.cdist(q[rows], s)

    def class_reduce(self, d: torch.Tensor, how: str) -> torch.Tensor:
        """Reduce each row of ``d`` (n, n_s) over the support points of each class: (n, C).

        ``how="min"`` gives d(u, V^j) (Eq. 11); ``how="sum"`` gives Σ_{v ∈ V^j} d[u, v].
        """
        if self.groups is None:
            grouped = d.view(len(d), self.num_classes, -1)
        else:
            pad = float("inf") if how == "min" else 0.0
            grouped = torch.cat([d, d.new_full((len(d), 1), pad)], dim=1)[:, self.groups]
        return grouped.amin(dim=2) if how == "min" else grouped.sum(dim=2)

    def class_pair_sums(self, rows_values: torch.Tensor, rows: slice,
                        sums: torch.Tensor) -> None:
        """Add per-row class values (n, C) of the queries ``rows`` into ``sums`` (C, C) by query class."""
        labels = torch.as_tensor(self.query_labels[rows], device=sums.device)
        sums.index_add_(0, labels, rows_values.double())


# ---------------------------------------------------------------------------------------- covers
def covers(query: Any, query_labels: Any, support: Any, support_labels: Any,
           r_max: float | None = None, *, num_classes: int | None = None,
           chunk_size: int | None = None, device: Any = None) -> np.ndarray:
    """The cover matrix A = [p(i, j)] of Eq. 12–14, by its closed form.

    p(i, j) = mean over the queries u of class i of max(0, 1 − d(u, V^j) / r_max), with
    d(u, V^j) = min over the support points v of class j of ‖u − v‖₂ (Eq. 11). p(i, i) is the
    self-cover, p(i, j) for i ≠ j the mutual cover.

    Parameters
    ----------
    query : array of shape (n_q, dim)
    query_labels : int array of shape (n_q,)
    support : array of shape (n_s, dim), disjoint from the queries
    support_labels : int array of shape (n_s,)
    r_max : float > 0, optional
        Largest radius of the integral. Default: the largest d(u, V^j) over every query u and
        class j, so that no query is beyond r_max. When every such distance is 0, A is all ones.
    num_classes : int, optional
        C; default the largest label + 1. Every class needs at least one query and one support point.
    chunk_size : int, optional
        Query rows per chunk of the distance matrix; default keeps a chunk at 2^24 entries.
    device : torch device, optional
        Where to compute; default the device of ``query`` (CPU for NumPy input).

    Returns
    -------
    array of shape (C, C), float64, entries in [0, 1]; rows are query classes i, columns support
    classes j.

    Examples
    --------
    >>> covers([[0.0], [3.0]], [0, 1], [[1.0], [3.0]], [0, 1]).round(3).tolist()
    [[0.667, 0.0], [0.333, 1.0]]
    """
    owner = "covers"
    qs = _QuerySupport(owner, query, query_labels, support, support_labels, num_classes, device)
    if r_max is not None:
        r_max = check_float(r_max, "r_max", owner, low=0, low_open=True)
    c = qs.num_classes
    dev = qs.query.device
    # With the default r_max no distance exceeds it, so the clamp vanishes and A follows from the
    # per-class sums of d(u, V^j) and their maximum, in one pass.
    sums = torch.zeros((c, c), dtype=torch.float64, device=dev)
    largest = torch.zeros((), dtype=torch.float64, device=dev)
    for rows, d in qs.chunks(chunk_size):
        dmin = qs.class_reduce(d, "min").double()
        if r_max is None:
            largest = torch.maximum(largest, dmin.max())
        else:
            dmin = (1.0 - dmin / (r_max / qs.scale)).clamp_(min=0.0)
        qs.class_pair_sums(dmin, rows, sums)
    counts = torch.as_tensor(np.bincount(qs.query_labels, minlength=c), dtype=torch.float64,
                             device=dev)
    means = sums / counts[:, None]
    if r_max is not None:
        return means.cpu().numpy()
    if largest == 0:
        return np.ones((c, c))
    return (1.0 - means / largest).cpu().numpy()


def _square(a: Any, name: str, owner: str) -> np.ndarray:
    m = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(
            f"The '{name}' parameter of {owner} must be a square array of shape (C, C). "
            f"Got shape {m.shape} instead."
        )
    return m.astype(np.float64, copy=False)


def self_cover_mean(covers_matrix: Any) -> float:
    """(1/C) Σ_i p(i, i), the mean self-cover (Fig. 2). ``covers_matrix`` has shape (C, C)."""
    a = _square(covers_matrix, "covers_matrix", "self_cover_mean")
    return float(np.mean(np.diag(a)))


def mutual_cover_mean(covers_matrix: Any) -> float:
    """Mean of p(i, j) over i ≠ j, the mean mutual cover (Fig. 2); NaN when C = 1."""
    a = _square(covers_matrix, "covers_matrix", "mutual_cover_mean")
    c = len(a)
    if c == 1:
        return float("nan")
    return float((a.sum() - np.trace(a)) / (c * (c - 1)))


def cover_distance(covers_matrix: Any) -> np.ndarray:
    """D_F = 1 − (A + Aᵀ)/2 (Eq. 15, symmetrised), shape (C, C)."""
    a = _square(covers_matrix, "covers_matrix", "cover_distance")
    return 1.0 - (a + a.T) / 2.0


# ---------------------------------------------------------------------------------------- correlation
class PearsonAccumulator(Accumulator):
    """Pearson's r from float64 sums that merge by addition (n, Σx, Σy, Σx², Σy², Σxy).

    State: ``sums``, shape (6,), on the device of the first batch.

    >>> acc = PearsonAccumulator()
    >>> acc.update(np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    >>> acc.update(np.array([3.0]), np.array([6.0]))
    >>> round(acc.compute(), 12)
    1.0
    """

    states = (State("sums", (6,)),)

    def __init__(self, device: torch.device | str | None = None) -> None:
        super().__init__(device)

    @classmethod
    def from_sums(cls, n: float, sx: float, sy: float, sxx: float, syy: float,
                  sxy: float) -> PearsonAccumulator:
        """An accumulator holding the given sums (n pairs, Σx, Σy, Σx², Σy², Σxy)."""
        acc = cls()
        acc.load_state_dict({"sums": torch.tensor([n, sx, sy, sxx, syy, sxy], dtype=torch.float64)})
        return acc

    def update(self, x: Any, y: Any) -> None:
        """Add the pairs (x[k], y[k]): finite, non-empty arrays or tensors of equal shape."""
        owner = "PearsonAccumulator.update"
        xs, ys = as_tensor(x, "x", owner), as_tensor(y, "y", owner)
        if xs.shape != ys.shape or xs.numel() == 0:
            raise ValueError(f"The 'y' parameter of {owner} must have the non-empty shape of x "
                             f"{tuple(xs.shape)}. Got {tuple(ys.shape)} instead.")
        xs = xs.detach().reshape(-1).to(torch.float64)
        ys = ys.detach().reshape(-1).to(xs.device, torch.float64)
        check_values([], [("x", xs), ("y", ys)], owner)
        self.sums += torch.stack([xs.new_tensor(float(xs.numel())), xs.sum(), ys.sum(),
                                  xs.square().sum(), ys.square().sum(), (xs * ys).sum()]).to(
            self._device_for(xs.device))

    def compute(self) -> float:
        """Pearson's r of every pair added; NaN when either variable is constant."""
        n, sx, sy, sxx, syy, sxy = self.sums.tolist()
        cov = n * sxy - sx * sy
        var = (n * sxx - sx * sx) * (n * syy - sy * sy)
        if n < 2 or var <= 0:
            return float("nan")
        return float(np.clip(cov / np.sqrt(var), -1.0, 1.0))


def cophenetic_correlation(d_feature: Any, d_hierarchy: Any) -> float:
    """CCC: Pearson's r between {D_F(i, j)} and {D_W(i, j)} over the pairs i < j (Eq. 17–18).

    Parameters
    ----------
    d_feature : array of shape (C, C), class distances in feature space (e.g. :func:`cover_distance`)
    d_hierarchy : array of shape (C, C), class distances in the hierarchy (graph distances d_W)

    Returns
    -------
    float in [-1, 1]; NaN when either set of distances is constant or C < 3.
    """
    owner = "cophenetic_correlation"
    f = _square(d_feature, "d_feature", owner)
    w = _square(d_hierarchy, "d_hierarchy", owner)
    if f.shape != w.shape:
        raise ValueError(
            f"The 'd_hierarchy' parameter of {owner} must have the shape of d_feature {f.shape}. "
            f"Got {w.shape} instead."
        )
    iu = np.triu_indices(len(f), k=1)
    acc = PearsonAccumulator()
    if len(iu[0]):  # Pearson's r ignores the scale, whose squares could overflow float64
        acc.update(f[iu] / power_of_two_scale(torch.from_numpy(f)), w[iu])
    return acc.compute()


def class_mean_distances(features: Any, labels: Any, num_classes: int | None = None) -> np.ndarray:
    """‖μ_i − μ_j‖₂ between class means of the features (App. C.3), shape (C, C), float64.

    ``features`` has shape (n, dim) and ``labels`` shape (n,); every class needs one example.
    """
    owner = "class_mean_distances"
    x = _points(features, "features", owner).double()
    scale = power_of_two_scale(x)  # the distances of huge features stay finite
    x = x / scale
    c = _num_classes(num_classes, owner, labels)
    y = check_labels(labels, "labels", owner, c, length=len(x))
    _require_every_class(y, c, "labels", owner)
    counts = torch.as_tensor(np.bincount(y, minlength=c), dtype=torch.float64, device=x.device)
    means = torch.zeros((c, x.shape[1]), dtype=torch.float64, device=x.device)
    means.index_add_(0, torch.as_tensor(y, device=x.device), x)
    means /= counts[:, None]
    return (torch.cdist(means, means) * scale).cpu().numpy()


def example_pair_correlation(query: Any, query_labels: Any, support: Any, support_labels: Any,
                             d_hierarchy: Any, *, chunk_size: int | None = None,
                             device: Any = None) -> float:
    """Direct comparison (App. C.3): Pearson's r between ‖u − v‖₂ and d_W(class u, class v).

    Over every pair of a query u and a support point v of different classes, without materialising
    class distances. Since d_W depends only on the two classes, the sums Pearson's r needs follow
    from the per-class-pair sums S1[i, j] = Σ ‖u − v‖ and S2[i, j] = Σ ‖u − v‖² (u of class i, v of
    class j), accumulated in float64 while the (n_q, n_s) distance matrix is streamed in chunks.

    Parameters
    ----------
    query, support : arrays of shape (n_q, dim) and (n_s, dim)
    query_labels, support_labels : int arrays of shape (n_q,) and (n_s,)
    d_hierarchy : array of shape (C, C), the hierarchy's class distances
    chunk_size, device : as in :func:`covers`

    Returns
    -------
    float; NaN when the distances of one side are constant.
    """
    owner = "example_pair_correlation"
    w = _square(d_hierarchy, "d_hierarchy", owner)
    qs = _QuerySupport(owner, query, query_labels, support, support_labels, len(w), device)
    c = qs.num_classes
    s1 = torch.zeros((c, c), dtype=torch.float64, device=qs.query.device)
    s2 = torch.zeros_like(s1)
    for rows, d in qs.chunks(chunk_size):
        qs.class_pair_sums(qs.class_reduce(d, "sum"), rows, s1)
        qs.class_pair_sums(qs.class_reduce(d.square_(), "sum"), rows, s2)
    s1, s2 = s1.cpu().numpy(), s2.cpu().numpy()
    pairs = np.outer(np.bincount(qs.query_labels, minlength=c),
                     np.bincount(qs.support_labels, minlength=c)).astype(np.float64)
    np.fill_diagonal(pairs, 0.0)
    cross = pairs > 0
    return PearsonAccumulator.from_sums(
        pairs.sum(), s1[cross].sum(), (pairs * w).sum(), s2[cross].sum(), (pairs * w * w).sum(),
        (s1 * w)[cross].sum()).compute()


__all__ = [
    "PearsonAccumulator",
    "class_mean_distances",
    "cophenetic_correlation",
    "cover_distance",
    "covers",
    "example_pair_correlation",
    "mutual_cover_mean",
    "self_cover_mean",
]
