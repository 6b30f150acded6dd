"""Neural collapse NC1–NC4 in the fine space and in any label space, from one pass (App. A.2).

Papyan et al. (2020) define neural collapse on the fine classes H; the paper (§3.3, Eq. 33–34)
extends it to a superclass space S. Every quantity of every space follows from three float64
statistics of the fine classes, accumulated in one pass over the penultimate features:

* ``counts`` n_c, shape (C,);
* ``means`` μ_c, shape (C, D) (zero rows for classes without samples);
* ``scatter`` N Σ_W(H) = Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ, shape (D, D), pooled over classes.

Means and centred scatter, not raw sums and moments: Σ_i h_i h_iᵀ − Σ_c n_c μ_c μ_cᵀ loses about
‖μ‖² · 1e-16 to cancellation, a relative error of 4e-5 in NC1 once features sit 1e6 from the
origin; centred statistics keep it at the rounding of the features themselves. Two sets of
statistics merge exactly (Chan, Golub and LeVeque 1979): with n = n_a + n_b and δ = μ_b − μ_a per
class, μ = μ_a + δ n_b / n and the scatter gains Σ_c (n_a n_b / n) δ δᵀ. Then in a space S
(DESIGN.md §2)

    Σ_W(S) = Σ_W(H) + (1/N) Σ_c n_c (μ_c − μ_{s(c)})(μ_c − μ_{s(c)})ᵀ,

with the superclass mean μ_s weighted by samples. NC4 needs one more pass, shared by all spaces
(:func:`nearest_mean_mismatch`): at most two passes per checkpoint however many spaces.

The pure functions (:func:`variability_collapse`, :func:`equinorm`, :func:`angle_equality`,
:func:`self_duality`, :func:`superclass_classifier`) take float64 tensors;
:class:`ClassStatistics` only holds state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hypbias._validation import check_int
from hypbias.labelspace import LabelSpace
from hypbias.metrics._inputs import as_tensor, check_values, features_and_labels, finite_features
from hypbias.metrics.base import Accumulator, State


# ---------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class SpaceStatistics:
    """Class statistics of one label space with K groups, derived from the fine ones.

    Attributes
    ----------
    counts : tensor of shape (K,)
        Samples per group, n_s.
    means : tensor of shape (K, D)
        Group means μ_s, weighted by samples (Eq. 33 with sample weights, DESIGN.md §2).
    global_mean : tensor of shape (D,)
        μ_G, the mean of all samples (the same in every space).
    fine_within : tensor of shape (D, D)
        Σ_W(H), the within-class covariance of the fine classes.
    spread : tensor of shape (C, D), or None in the fine space
        Rows sqrt(n_c / N) (μ_c − μ_{s(c)}), so that Σ_W(S) = Σ_W(H) + spreadᵀ spread.
    """

    counts: torch.Tensor
    means: torch.Tensor
    global_mean: torch.Tensor
    fine_within: torch.Tensor
    spread: torch.Tensor | None

    @property
    def num_groups(self) -> int:
        """K, the number of groups (C in the fine space)."""
        return self.counts.shape[0]

    @property
    def centered_means(self) -> torch.Tensor:
        """M = [μ_s − μ_G] as rows, shape (K, D)."""
        return self.means - self.global_mean

    @property
    def within_covariance(self) -> torch.Tensor:
        """Σ_W of this space (Eq. 26), shape (D, D)."""
        if self.spread is None:
            return self.fine_within
        return self.fine_within + self.spread.T @ self.spread

    @property
    def between_covariance(self) -> torch.Tensor:
        """Σ_B = (1/K) Σ_s (μ_s − μ_G)(μ_s − μ_G)ᵀ (Eq. 25), shape (D, D)."""
        m = self.centered_means
        return m.T @ m / self.num_groups

    def within_quadratic(self, directions: torch.Tensor) -> torch.Tensor:
        """diag(Vᵀ Σ_W V) for directions V of shape (D, r), without forming Σ_W of the space.

        Returns a tensor of shape (r,). Costs D²r + CDr instead of the CD² that Σ_W(S) would.
        """
        q = (directions * (self.fine_within @ directions)).sum(dim=0)
        if self.spread is not None:
            q = q + (self.spread @ directions).square().sum(dim=0)
        return q


class ClassStatistics(Accumulator):
    """Streaming per-class statistics of penultimate features, in float64.

    Accumulates counts n_c, class means μ_c and the pooled within-class scatter
    Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ (module docstring); from them follow the global mean and
    Σ_W exactly, in the fine space and in any label space (:meth:`compute`). Batches
    (:meth:`update`), shards (:meth:`merge`) and processes (:meth:`all_reduce`) combine by Chan et
    al.'s pairwise formula, exact up to float64 rounding whatever the order.

    Parameters
    ----------
    num_classes : int
        C, the number of fine classes.
    dim : int
        D, the feature dimension.
    device : torch.device or str, optional
        Where the state lives. By default it follows the first batch given to :meth:`update`
        (CPU for NumPy input), so features on a GPU are accumulated there.

    Notes
    -----
    A batch adds Σ_i (h_i − a_{y_i})(h_i − μ'_{y_i})ᵀ to the scatter, where μ' are the updated
    means and a the previous means (for a class new in the batch, its first sample): the batch
    form of Welford's update, one (D, n) × (n, D) product as for raw moments. Every
    difference is taken before squaring, so the precision does not depend on how far the features
    sit from the origin (relative NC1 error 4e-5 with raw moments at an offset of 1e6, ~1e-10 with
    these; tests/test_collapse.py).

    Examples
    --------
    >>> stats = ClassStatistics(num_classes=3, dim=2)
    >>> stats.update(np.array([[0.0, 1.0], [2.0, 1.0], [5.0, 5.0]]), np.array([0, 0, 2]))
    >>> stats.counts.tolist(), stats.means[0].tolist()
    ([2.0, 0.0, 1.0], [1.0, 1.0])
    """

    states = (State("counts", ("num_classes",)),
              State("means", ("num_classes", "dim"), reduce="custom"),
              State("scatter", ("dim", "dim"), reduce="custom"))

    def __init__(self, num_classes: int, dim: int,
                 device: torch.device | str | None = None) -> None:
        self.num_classes = check_int(num_classes, "num_classes", "ClassStatistics", low=1)
        self.dim = check_int(dim, "dim", "ClassStatistics", low=1)
        super().__init__(device)

    def signature(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "dim": self.dim}

    def update(self, features: Any, labels: Any) -> None:
        """Add a batch.

        Parameters
        ----------
        features : tensor or array of shape (n, D), n >= 1
            Penultimate features (any float dtype, any device), finite.
        labels : tensor or array of int, shape (n,)
            Fine labels in [0, C).
        """
        self._add(*features_and_labels(features, labels, self.dim, self.num_classes,
                                       "ClassStatistics.update"))

    def _add(self, h: torch.Tensor, y: torch.Tensor) -> None:
        """:meth:`update` without the checks, for batches already validated (by the tracker):
        float features (n, D), integer labels (n,) in [0, C), on any devices."""
        dev = self._device_for(h.device)
        h, y = h.to(dev, torch.float64), y.to(dev, torch.int64)
        batch_counts = torch.bincount(y, minlength=self.num_classes).to(torch.float64)
        shift = self._shift(h, y, batch_counts > 0)
        total = self.counts + batch_counts
        d = h - shift[y]
        step = torch.zeros_like(self.means).index_add_(0, y, d) / total.clamp(min=1)[:, None]
        cross = d.T @ (d - step[y])  # Σ (h − a)(h − μ')ᵀ with μ' = a + step
        self.scatter += (cross + cross.T) / 2
        self.counts, self.means = total, shift + step

    def _shift(self, h: torch.Tensor, y: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Per class, the reference a of :meth:`update`, shape (C, D).

        The current mean for classes seen before; for classes new in this batch their first sample
        (any point of the class keeps the differences small); 0 for classes absent from both.
        """
        n = torch.arange(len(y), device=y.device)
        first = torch.full((self.num_classes,), len(y) - 1, device=y.device).scatter_reduce_(
            0, y, n, "amin")
        fresh = torch.where(present[:, None], h[first], 0.0)
        return torch.where((self.counts > 0)[:, None], self.means, fresh)

    def merge_custom(self, other: ClassStatistics) -> None:
        """Chan et al.'s pairwise merge of the means and scatters (counts are summed afterwards)."""
        counts = other.counts.to(self._device)
        total = self.counts + counts
        weight = counts / total.clamp(min=1)  # n_b / n, 0 where neither has samples
        delta = other.means.to(self._device) - self.means
        spread = delta * (self.counts * weight).sqrt()[:, None]  # rows sqrt(n_a n_b / n) δ
        self.scatter = self.scatter + other.scatter.to(self._device) + spread.T @ spread
        self.means = self.means + delta * weight[:, None]

    # ------------------------------------------------------------------ derived
    @property
    def num_samples(self) -> int:
        """N, the number of samples seen."""
        return int(self.counts.sum())

    @property
    def global_mean(self) -> torch.Tensor:
        """μ_G, the mean of all samples, shape (D,)."""
        return self.counts @ self.means / self.counts.sum()

    @property
    def within_covariance(self) -> torch.Tensor:
        """Σ_W(H) = (1/N) Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ (Eq. 26), shape (D, D)."""
        return self.scatter / self.counts.sum()

    def compute(self, space: LabelSpace | None = None) -> SpaceStatistics:
        """Statistics of the fine space (``space=None``) or of ``space``, from the fine ones.

        In a space S, n_s = Σ_{c∈s} n_c, μ_s = Σ_{c∈s} n_c μ_c / n_s (sample-weighted) and
        Σ_W(S) = Σ_W(H) + (1/N) Σ_c n_c (μ_c − μ_{s(c)})(μ_c − μ_{s(c)})ᵀ (DESIGN.md §2);
        no data is read again.
        """
        if space is None:
            return SpaceStatistics(self.counts, self.means, self.global_mean,
                                   self.within_covariance, None)
        _check_space(space, self.num_classes, "ClassStatistics.compute")
        onehot = _membership(space, self.means)
        counts = self.counts @ onehot
        means = (onehot.T @ (self.means * self.counts[:, None])) / counts[:, None]
        # Classes without samples have zero counts, so their rows of the spread vanish.
        spread = (self.means - onehot @ means) * (self.counts / self.counts.sum()).sqrt()[:, None]
        return SpaceStatistics(counts, means, self.global_mean, self.within_covariance, spread)

    def __repr__(self) -> str:
        return (f"ClassStatistics({self.num_classes} classes, dim {self.dim}, "
                f"{self.num_samples} samples, device {self._device})")


def _membership(space: LabelSpace, like: torch.Tensor) -> torch.Tensor:
    """The (C, K) membership matrix of ``space`` with the dtype and device of ``like``."""
    return torch.from_numpy(space.one_hot()).to(like)


def _check_space(space: Any, num_classes: int, owner: str) -> LabelSpace:
    if not isinstance(space, LabelSpace) or space.num_classes != num_classes:
        got = (f"a LabelSpace of {space.num_classes} classes" if isinstance(space, LabelSpace)
               else type(space).__name__)
        raise ValueError(
            f"The 'space' parameter of {owner} must be a LabelSpace of {num_classes} classes or "
            f"None. Got {got} instead."
        )
    if space.num_groups < 2:
        raise ValueError(
            f"The 'space' parameter of {owner} must have at least 2 groups for neural collapse. "
            f"Got {space.num_groups} instead."
        )
    return space


def _check_spaces(spaces: Any, owner: str) -> None:
    """Refuse ``spaces`` unless it is a non-empty mapping (its values are checked one by one)."""
    if not isinstance(spaces, Mapping) or not spaces:
        raise ValueError(
            f"The 'spaces' parameter of {owner} must be a non-empty mapping of names to "
            f"LabelSpace or None. Got {spaces!r} instead."
        )


def _require_samples(stats: SpaceStatistics, where: str) -> None:
    empty = torch.nonzero(stats.counts == 0).flatten().tolist()
    if empty:
        raise ValueError(
            f"Neural collapse needs samples of every group; group {empty[0]} of {where} has none "
            f"({len(empty)} of {stats.num_groups} groups are empty)."
        )


def _check_classifier(stats: ClassStatistics, weight: Any, bias: Any,
                      owner: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """W (C, D) and b (C,) as float64 tensors on the statistics' device."""
    if not isinstance(stats, ClassStatistics):
        raise ValueError(
            f"The 'stats' parameter of {owner} must be a ClassStatistics. "
            f"Got {type(stats).__name__} instead."
        )
    c, d = stats.num_classes, stats.dim
    w = as_tensor(weight, "weight", owner).detach()
    if tuple(w.shape) != (c, d):
        raise ValueError(
            f"The 'weight' parameter of {owner} must have shape ({c}, {d}) to match the "
            f"statistics. Got {tuple(w.shape)} instead."
        )
    w = w.to(stats.device, torch.float64)
    if bias is None:
        check_values([], [("weight", w)], owner)
        return w, None
    b = as_tensor(bias, "bias", owner).detach()
    if tuple(b.shape) != (c,):
        raise ValueError(
            f"The 'bias' parameter of {owner} must have shape ({c},) to match the statistics. "
            f"Got {tuple(b.shape)} instead."
        )
    b = b.to(stats.device, torch.float64)
    check_values([], [("weight", w), ("bias", b)], owner)  # one host transfer for both
    return w, b


# ---------------------------------------------------------------------------- pure metrics
def superclass_classifier(weight: torch.Tensor, bias: torch.Tensor | None,
                          space: LabelSpace) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Superclass weights and biases: w_s = mean of w_c over c ∈ s (Eq. 34), likewise b_s.

    Parameters
    ----------
    weight : tensor of shape (C, D)
    bias : tensor of shape (C,), or None
    space : LabelSpace with C classes and K groups

    Returns
    -------
    (tensor of shape (K, D), tensor of shape (K,) or None)
    """
    onehot = _membership(space, weight)
    sizes = onehot.sum(dim=0)
    w = (onehot.T @ weight) / sizes[:, None]
    if bias is None:
        return w, None
    return w, (bias @ onehot.to(bias)) / sizes.to(bias)


def _between_eigen(centered_means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-zero eigenpairs of Σ_B = MᵀM / K: eigenvalues (r,) and unit eigenvectors (D, r).

    Σ_B has rank at most K − 1 because Σ_s n_s (μ_s − μ_G) = 0; eigenvalues below
    max(K, D) · eps · λ_max count as zero. When K ≤ D the K×K Gram matrix is decomposed instead of
    the D×D Σ_B.
    """
    k, d = centered_means.shape
    m = centered_means
    gram = k <= d
    lam, vecs = torch.linalg.eigh(m @ m.T / k if gram else m.T @ m / k)
    tol = lam[-1].clamp(min=0) * max(k, d) * torch.finfo(lam.dtype).eps
    keep = int((lam > tol).sum().clamp(max=k - 1))
    lam, vecs = lam[lam.shape[0] - keep:], vecs[:, vecs.shape[1] - keep:]
    if gram:  # eigenvectors u of MMᵀ/K map to unit eigenvectors Mᵀu / sqrt(Kλ) of Σ_B
        vecs = m.T @ vecs / (k * lam).sqrt()
    return lam, vecs


def variability_collapse(stats: SpaceStatistics) -> float:
    """NC1 = tr(Σ_W Σ_B†) / K with the Moore–Penrose pseudoinverse (App. A.2, Papyan et al.).

    With Σ_B = Σ_k λ_k v_k v_kᵀ, tr(Σ_W Σ_B†) = Σ_k v_kᵀ Σ_W v_k / λ_k, so Σ_W of a superclass
    space is never formed. NaN when all group means coincide (Σ_B = 0).
    """
    lam, vecs = _between_eigen(stats.centered_means)
    if lam.numel() == 0:
        return float("nan")
    return float((stats.within_quadratic(vecs) / lam).sum() / stats.num_groups)


def _std_mean(values: torch.Tensor) -> tuple[float, float]:
    """Sample standard deviation (ddof = 1; NaN for fewer than 2 values) and mean."""
    mean = float(values.mean())
    if values.numel() < 2:
        return float("nan"), mean
    return float(values.std(correction=1)), mean


def equinorm(vectors: torch.Tensor) -> float:
    """NC2 norm equality: std_s ‖v_s‖ / mean_s ‖v_s‖ (Eq. 29–30; std with ddof = 1).

    ``vectors`` has shape (K, D): the centered means μ_s − μ_G or the classifier rows w_s.
    """
    std, mean = _std_mean(torch.linalg.vector_norm(vectors, dim=1))
    return std / mean


def _pair_cosines(vectors: torch.Tensor) -> torch.Tensor:
    """Cosines between the rows of ``vectors`` (K, D), one per pair s < s', shape (K(K−1)/2,)."""
    unit = vectors / torch.linalg.vector_norm(vectors, dim=1, keepdim=True)
    upper = torch.triu_indices(unit.shape[0], unit.shape[0], offset=1, device=unit.device)
    return (unit @ unit.T)[upper[0], upper[1]]


def angle_equality(vectors: torch.Tensor) -> tuple[float, float]:
    """NC2 angle metrics of the rows of ``vectors`` (K, D), from one cosine matrix.

    Returns
    -------
    equiangularity : float
        Sample std (ddof = 1) over all K(K − 1) off-diagonal entries of the cosine matrix, each
        pair s ≠ s' counted twice, as the code of the paper's first author (and DESIGN.md §2)
        computes it; 0 for K = 2, where the one pair's two entries are equal.
    max_angle : float
        Mean over pairs s ≠ s' of |cos(s, s') + 1/(K − 1)| (Papyan et al.).
    """
    cos = _pair_cosines(vectors)
    off_diagonal = torch.cat([cos, cos])  # entries (s, s') and (s', s) of the symmetric matrix
    return _std_mean(off_diagonal)[0], float((cos + 1.0 / (vectors.shape[0] - 1)).abs().mean())


def self_duality(weight: torch.Tensor, centered_means: torch.Tensor) -> float:
    """NC3 = ‖W/‖W‖_F − M/‖M‖_F‖_F² (Eq. 31); ``weight`` and ``centered_means`` of shape (K, D)."""
    diff = weight / torch.linalg.norm(weight) - centered_means / torch.linalg.norm(centered_means)
    return float(diff.square().sum())


# ---------------------------------------------------------------------------- public API
def neural_collapse(stats: ClassStatistics, weight: Any, bias: Any = None,
                    space: LabelSpace | None = None) -> dict[str, float]:
    """NC1–NC3 of the fine space or of a label space, from fine class statistics (App. A.2).

    In a space S with K groups: μ_s is the sample-weighted mean of the samples of s (the paper's
    Eq. 33 averages class means without weights; DESIGN.md §2 weights them by samples, which makes
    μ_s the mean of the features of s and keeps Σ_W(S) exact), w_s and b_s are means of the member
    rows (Eq. 34), and every formula holds with K in place of C.

    Parameters
    ----------
    stats : ClassStatistics
        Fine statistics of the train split's penultimate features.
    weight : tensor or array of shape (C, D)
        W of the last linear layer.
    bias : tensor or array of shape (C,), optional
        b of the last linear layer. NC1–NC3 do not use it; it is validated so that this function
        takes the same classifier arguments as :func:`nearest_mean_mismatch`.
    space : LabelSpace with C classes and K >= 2 groups, or None for the fine space

    Returns
    -------
    dict of float with keys ``nc1``, ``nc2_equinorm_means``, ``nc2_equinorm_weights``,
    ``nc2_equiangular_means``, ``nc2_equiangular_weights``, ``nc2_maxangle_means``,
    ``nc2_maxangle_weights``, ``nc3``.
    """
    owner = "neural_collapse"
    w, _ = _check_classifier(stats, weight, bias, owner)
    return _space_collapse(stats, w, space, owner)


def neural_collapse_in_spaces(stats: ClassStatistics, weight: Any, bias: Any,
                              spaces: Mapping[str, LabelSpace | None]) -> dict[str, dict[str, float]]:
    """:func:`neural_collapse` of every space of ``spaces``, the classifier checked once.

    Parameters
    ----------
    stats, weight, bias : as for :func:`neural_collapse`
    spaces : mapping of name to LabelSpace, or to None for the fine space

    Returns
    -------
    dict mapping each name of ``spaces`` to the dict :func:`neural_collapse` returns for it.
    """
    owner = "neural_collapse_in_spaces"
    w, _ = _check_classifier(stats, weight, bias, owner)
    _check_spaces(spaces, owner)
    return {name: _space_collapse(stats, w, space, owner) for name, space in spaces.items()}


def _space_collapse(stats: ClassStatistics, w: torch.Tensor, space: LabelSpace | None,
                    owner: str) -> dict[str, float]:
    """NC1–NC3 of ``space`` from the checked float64 classifier ``w`` (C, D)."""
    if space is not None:
        _check_space(space, stats.num_classes, owner)
        w, _ = superclass_classifier(w, None, space)
    group = stats.compute(space)
    _require_samples(group, "the fine space" if space is None else repr(space))
    m = group.centered_means
    angles_m, angles_w = angle_equality(m), angle_equality(w)
    return {
        "nc1": variability_collapse(group),
        "nc2_equinorm_means": equinorm(m),
        "nc2_equinorm_weights": equinorm(w),
        "nc2_equiangular_means": angles_m[0],
        "nc2_equiangular_weights": angles_w[0],
        "nc2_maxangle_means": angles_m[1],
        "nc2_maxangle_weights": angles_w[1],
        "nc3": self_duality(w, m),
    }


class NearestMeanMismatch(Accumulator):
    """Streaming NC4 (Eq. 32) for several label spaces: the second pass, fed batch by batch.

    Per space S with K groups, a sample counts as a mismatch when argmax_s ⟨w_s, h⟩ + b_s (w_s, b_s
    by Eq. 34) differs from argmin_s ‖h − μ_s‖ (sample-weighted means from ``stats``). The
    classifiers and means of all spaces are stacked into one (2 Σ K, D) matrix, so a chunk of
    features costs one float64 matrix product on its own device, however many spaces. Features
    are centred on the global mean first, which changes neither decision and keeps the distances
    free of cancellation when features sit far from the origin.

    State: ``mismatches`` (one count per space) and ``total``, int64, summed over shards.

    Parameters
    ----------
    stats : ClassStatistics
        Fine statistics of the same data (final means, from the first pass).
    weight : tensor or array of shape (C, D)
    bias : tensor or array of shape (C,), or None for a layer without bias
    spaces : mapping of name to LabelSpace, or to None for the fine space
    chunk_size : int
        Rows per matrix product (bounds memory at chunk_size × 2 Σ K float64 values).
    device : torch.device or str, optional
        Where the state lives; by default that of ``stats`` until the first batch, then the batch's.
    """

    states = (State("mismatches", ("num_spaces",), torch.int64), State("total", (), torch.int64))
    buffers = ("_proto", "_offset", "_center")

    def __init__(self, stats: ClassStatistics, weight: Any, bias: Any,
                 spaces: Mapping[str, LabelSpace | None], *, chunk_size: int = 4096,
                 device: torch.device | str | None = None) -> None:
        owner = "NearestMeanMismatch"
        self.chunk_size = check_int(chunk_size, "chunk_size", owner, low=1)
        w, b = _check_classifier(stats, weight, bias, owner)
        _check_spaces(spaces, owner)
        self._center = stats.global_mean
        b = (torch.zeros_like(w[:, 0]) if b is None else b) + w @ self._center
        self._stack(stats, w, b, spaces, owner)
        self.names = list(spaces)
        self.num_spaces = len(self.names)
        self.dim = stats.dim
        super().__init__(device)

    def _stack(self, stats: ClassStatistics, w: torch.Tensor, b: torch.Tensor,
               spaces: Mapping[str, LabelSpace | None], owner: str) -> None:
        """Rows: every space's classifier, then every space's centred means (‖h‖² drops out)."""
        classifiers, centers, sizes = [], [], []
        for name, space in spaces.items():
            if space is not None:
                _check_space(space, stats.num_classes, owner)
            ws, bs = (w, b) if space is None else superclass_classifier(w, b, space)
            group = stats.compute(space)
            _require_samples(group, f"space '{name}'")
            means = group.means - self._center
            classifiers.append((ws, bs))
            centers.append((-2.0 * means, means.square().sum(dim=1)))
            sizes.append(group.num_groups)
        self._proto = torch.cat([c[0] for c in classifiers] + [c[0] for c in centers])
        self._offset = torch.cat([c[1] for c in classifiers] + [c[1] for c in centers])
        self._bounds = np.cumsum([0, *sizes]).tolist()

    def signature(self) -> dict[str, Any]:
        return {"spaces": self.names, "groups": self._bounds}

    def update(self, features: Any) -> None:
        """Count a batch of features of shape (n, D) (any float dtype, any device), finite."""
        h = finite_features(features, self.dim, "NearestMeanMismatch.update")
        dev = self._device_for(h.device)
        split = self._bounds[-1]
        for chunk in h.to(dev).split(self.chunk_size):
            scores = torch.addmm(self._offset, chunk.to(torch.float64) - self._center,
                                 self._proto.T)
            for i in range(self.num_spaces):
                lo, hi = self._bounds[i], self._bounds[i + 1]
                pred = scores[:, lo:hi].argmax(dim=1)
                nearest = scores[:, split + lo:split + hi].argmin(dim=1)
                self.mismatches[i] += (pred != nearest).sum()
        self.total += h.shape[0]

    def compute(self) -> dict[str, float]:
        """NC4 share in [0, 1] per space name."""
        counts = torch.cat([self.mismatches, self.total[None]]).tolist()
        if counts[-1] == 0:
            raise ValueError("NearestMeanMismatch has counted no samples.")
        return {name: counts[i] / counts[-1] for i, name in enumerate(self.names)}


def nearest_mean_mismatch(stats: ClassStatistics, weight: Any, bias: Any,
                          batches: Iterable[Any], spaces: Mapping[str, LabelSpace | None], *,
                          chunk_size: int = 4096, all_reduce: bool = False) -> dict[str, float]:
    """NC4 of every space in one pass over ``batches`` (Eq. 32; see :class:`NearestMeanMismatch`).

    Parameters
    ----------
    stats : ClassStatistics
        Fine statistics of the same data (final means).
    weight : tensor or array of shape (C, D)
    bias : tensor or array of shape (C,), or None for a layer without bias
    batches : iterable of (features, labels) pairs or of features
        Features of shape (n, D); labels are not needed and are ignored.
    spaces : mapping of name to LabelSpace, or to None for the fine space
    chunk_size : int
        Rows per matrix product.
    all_reduce : bool
        Sum the counts over ``torch.distributed`` processes (every process must call).

    Returns
    -------
    dict mapping each name of ``spaces`` to the share of samples whose classifier prediction
    differs from the nearest group mean, in [0, 1].
    """
    counter = NearestMeanMismatch(stats, weight, bias, spaces, chunk_size=chunk_size)
    for batch in batches:
        counter.update(batch[0] if isinstance(batch, (tuple, list)) else batch)
    if all_reduce:
        counter.all_reduce()
    return counter.compute()
