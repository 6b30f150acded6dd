"""Neural collapse NC1–NC4 in the fine space and in any label space, from one pass (App. A.2).

Papyan et al. (2020) define neural collapse on the fine classes H; the paper (§3.3, Eq. 33–34)
extends it to a superclass space S. Every quantity of every space follows from three float64
sufficient statistics of the fine classes, accumulated in one pass over the penultimate features:

* ``counts`` n_c, shape (C,);
* ``sums`` Σ_{i: y_i = c} h_i, shape (C, D);
* ``second_moment`` Σ_i h_i h_iᵀ, shape (D, D), pooled over all classes.

All three add over batches, shards and processes, so merging is exact. Then
N Σ_W(H) = Σ_i h_i h_iᵀ − Σ_c n_c μ_c μ_cᵀ, and in a space S (DESIGN.md §2)

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
import torch.distributed as dist

from hypbias._validation import check_int
from hypbias.labelspace import LabelSpace

_STATE = ("counts", "sums", "second_moment")


def _as_tensor(value: Any, name: str, owner: str) -> torch.Tensor:
    """``value`` as a tensor (NumPy arrays and lists are converted on the CPU)."""
    if isinstance(value, torch.Tensor):
        return value
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"The '{name}' parameter of {owner} must be a numeric array or tensor. "
            f"Got dtype {arr.dtype} instead."
        )
    return torch.as_tensor(np.ascontiguousarray(arr))


def _check_features(features: Any, dim: int, owner: str) -> torch.Tensor:
    h = _as_tensor(features, "features", owner)
    if h.ndim != 2 or h.shape[1] != dim or not h.is_floating_point():
        raise ValueError(
            f"The 'features' parameter of {owner} must be a float array of shape (n, {dim}). "
            f"Got shape {tuple(h.shape)} and dtype {h.dtype} instead."
        )
    return h


def _check_labels(labels: Any, n: int, num_classes: int, owner: str) -> torch.Tensor:
    y = _as_tensor(labels, "labels", owner)
    if y.ndim != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(
            f"The 'labels' parameter of {owner} must be a 1-d integer array. "
            f"Got shape {tuple(y.shape)} and dtype {y.dtype} instead."
        )
    if y.shape[0] != n:
        raise ValueError(
            f"The 'labels' parameter of {owner} must have length {n} to match the features. "
            f"Got {y.shape[0]} instead."
        )
    if n:
        low, high = (int(v) for v in torch.aminmax(y))
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"The 'labels' parameter of {owner} must hold values in [0, {num_classes}). "
                f"Got values in [{low}, {high}] instead."
            )
    return y


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


class ClassStatistics:
    """Streaming per-class statistics of penultimate features, in float64.

    Accumulates counts, per-class sums and the pooled second moment Σ_i h_i h_iᵀ (module
    docstring); from them follow class means, the global mean and Σ_W exactly, in the fine space
    and in any label space (:meth:`compute`). State adds over batches (:meth:`update`), shards
    (:meth:`merge`) and processes (:meth:`all_reduce`).

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
    Σ_W comes from raw moments, so its absolute rounding error is about 1e-16 · ‖μ‖²: relative to
    Σ_W that is negligible unless features are ~1e7 times farther from the origin than they
    spread within a class.

    Examples
    --------
    >>> stats = ClassStatistics(num_classes=3, dim=2)
    >>> stats.update(np.array([[0.0, 1.0], [2.0, 1.0], [5.0, 5.0]]), np.array([0, 0, 2]))
    >>> stats.counts.tolist(), stats.means[0].tolist()
    ([2.0, 0.0, 1.0], [1.0, 1.0])
    """

    def __init__(self, num_classes: int, dim: int,
                 device: torch.device | str | None = None) -> None:
        self.num_classes = check_int(num_classes, "num_classes", "ClassStatistics", low=1)
        self.dim = check_int(dim, "dim", "ClassStatistics", low=1)
        self._follow = device is None
        self._device = torch.device("cpu" if device is None else device)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget every sample (the device is kept)."""
        c, d = self.num_classes, self.dim
        opts = {"dtype": torch.float64, "device": self._device}
        self.counts = torch.zeros(c, **opts)
        self.sums = torch.zeros(c, d, **opts)
        self.second_moment = torch.zeros(d, d, **opts)
        self._fresh = True
        self._within: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        """The device of the state."""
        return self._device

    def to(self, device: torch.device | str) -> ClassStatistics:
        """Move the state to ``device``; later batches are moved there. Returns ``self``."""
        self._follow = False
        self._move(torch.device(device))
        return self

    def _move(self, device: torch.device) -> None:
        self._device = device
        for name in _STATE:
            setattr(self, name, getattr(self, name).to(device))
        self._within = None

    def update(self, features: Any, labels: Any) -> None:
        """Add a batch.

        Parameters
        ----------
        features : tensor or array of shape (n, D)
            Penultimate features (any float dtype, any device).
        labels : tensor or array of int, shape (n,)
            Fine labels in [0, C).
        """
        owner = "ClassStatistics.update"
        h = _check_features(features, self.dim, owner)
        y = _check_labels(labels, h.shape[0], self.num_classes, owner)
        if self._fresh and self._follow and h.device != self._device:
            self._move(h.device)
        h = h.to(self._device, torch.float64)
        y = y.to(self._device, torch.int64)
        self.counts += torch.bincount(y, minlength=self.num_classes).to(torch.float64)
        self.sums.index_add_(0, y, h)
        self.second_moment.addmm_(h.T, h)
        self._fresh = False
        self._within = None

    def merge(self, other: ClassStatistics) -> ClassStatistics:
        """Add the state of ``other`` (another shard of the same data). Returns ``self``."""
        if not isinstance(other, ClassStatistics) or (other.num_classes, other.dim) != (
            self.num_classes, self.dim
        ):
            got = (f"{other.num_classes} classes and dim {other.dim}"
                   if isinstance(other, ClassStatistics) else type(other).__name__)
            raise ValueError(
                "The 'other' parameter of ClassStatistics.merge must be a ClassStatistics with "
                f"{self.num_classes} classes and dim {self.dim}. Got {got} instead."
            )
        for name in _STATE:
            getattr(self, name).add_(getattr(other, name).to(self._device))
        self._fresh = self._fresh and other._fresh
        self._within = None
        return self

    def all_reduce(self) -> None:
        """Sum the state over all processes when ``torch.distributed`` is initialised.

        Every process must call it. With the NCCL backend a state still on the CPU is moved to
        the current CUDA device first. Without an initialised process group it does nothing.
        """
        if not (dist.is_available() and dist.is_initialized()):
            return
        if dist.get_backend() == "nccl" and self._device.type != "cuda":
            self._move(torch.device("cuda", torch.cuda.current_device()))
        for name in _STATE:
            dist.all_reduce(getattr(self, name), op=dist.ReduceOp.SUM)
        self._fresh = False
        self._within = None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The state as CPU tensors: ``counts`` (C,), ``sums`` (C, D), ``second_moment`` (D, D)."""
        return {name: getattr(self, name).detach().cpu().clone() for name in _STATE}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the state by ``state`` (as written by :meth:`state_dict`)."""
        shapes = {"counts": (self.num_classes,), "sums": (self.num_classes, self.dim),
                  "second_moment": (self.dim, self.dim)}
        missing = [name for name in _STATE if name not in state]
        if missing:
            raise ValueError(
                f"The 'state' parameter of ClassStatistics.load_state_dict lacks the key "
                f"'{missing[0]}'. Got keys {sorted(state)} instead."
            )
        tensors = {}
        for name, shape in shapes.items():
            value = _as_tensor(state[name], name, "ClassStatistics.load_state_dict")
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"The '{name}' entry of ClassStatistics.load_state_dict must have shape "
                    f"{shape}. Got {tuple(value.shape)} instead."
                )
            tensors[name] = value.to(self._device, torch.float64).clone()
        for name, value in tensors.items():
            setattr(self, name, value)
        self._fresh = False
        self._within = None

    # ------------------------------------------------------------------ derived
    @property
    def num_samples(self) -> int:
        """N, the number of samples seen."""
        return int(self.counts.sum())

    @property
    def means(self) -> torch.Tensor:
        """Class means μ_c (Eq. 24), shape (C, D); NaN rows for classes without samples."""
        return self.sums / self.counts[:, None]

    @property
    def global_mean(self) -> torch.Tensor:
        """μ_G, the mean of all samples, shape (D,)."""
        return self.sums.sum(dim=0) / self.counts.sum()

    @property
    def within_covariance(self) -> torch.Tensor:
        """Σ_W(H) = (1/N) Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ (Eq. 26), shape (D, D); cached."""
        if self._within is None:
            seen = self.counts > 0
            sums = self.sums[seen]
            scatter = self.second_moment - sums.T @ (sums / self.counts[seen, None])
            self._within = scatter / self.counts.sum()
        return self._within

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
        onehot = _membership(space, self.sums)
        counts = self.counts @ onehot
        means = (onehot.T @ self.sums) / counts[:, None]
        # Classes without samples have zero sums, so clamping their count gives them weight 0.
        fine_means = self.sums / self.counts.clamp(min=1)[:, None]
        spread = (fine_means - onehot @ means) * (self.counts / self.counts.sum()).sqrt()[:, None]
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
    w = _as_tensor(weight, "weight", owner).detach()
    if tuple(w.shape) != (c, d):
        raise ValueError(
            f"The 'weight' parameter of {owner} must have shape ({c}, {d}) to match the "
            f"statistics. Got {tuple(w.shape)} instead."
        )
    w = w.to(stats.device, torch.float64)
    if bias is None:
        return w, None
    b = _as_tensor(bias, "bias", owner).detach()
    if tuple(b.shape) != (c,):
        raise ValueError(
            f"The 'bias' parameter of {owner} must have shape ({c},) to match the statistics. "
            f"Got {tuple(b.shape)} instead."
        )
    return w, b.to(stats.device, torch.float64)


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
    w = (onehot.T @ weight) / onehot.sum(dim=0)[:, None]
    if bias is None:
        return w, None
    onehot = _membership(space, bias)
    return w, (bias @ onehot) / onehot.sum(dim=0)


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
        Sample std (ddof = 1) of the cosines, each pair s < s' counted once (the cosine matrix is
        symmetric); NaN for K = 2.
    max_angle : float
        Mean over pairs s ≠ s' of |cos(s, s') + 1/(K − 1)| (Papyan et al.).
    """
    cos = _pair_cosines(vectors)
    return _std_mean(cos)[0], float((cos + 1.0 / (vectors.shape[0] - 1)).abs().mean())


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


class NearestMeanMismatch:
    """Streaming NC4 (Eq. 32) for several label spaces: the second pass, fed batch by batch.

    Per space S with K groups, a sample counts as a mismatch when argmax_s ⟨w_s, h⟩ + b_s (w_s, b_s
    by Eq. 34) differs from argmin_s ‖h − μ_s‖ (sample-weighted means from ``stats``). The
    classifiers and means of all spaces are stacked into one (2 Σ K, D) matrix, so a chunk of
    features costs one float64 matrix product on its own device, however many spaces.

    Parameters
    ----------
    stats : ClassStatistics
        Fine statistics of the same data (final means, from the first pass).
    weight : tensor or array of shape (C, D)
    bias : tensor or array of shape (C,), or None for a layer without bias
    spaces : mapping of name to LabelSpace, or to None for the fine space
    chunk_size : int
        Rows per matrix product (bounds memory at chunk_size × 2 Σ K float64 values).
    """

    def __init__(self, stats: ClassStatistics, weight: Any, bias: Any,
                 spaces: Mapping[str, LabelSpace | None], *, chunk_size: int = 4096) -> None:
        owner = "NearestMeanMismatch"
        self.chunk_size = check_int(chunk_size, "chunk_size", owner, low=1)
        w, b = _check_classifier(stats, weight, bias, owner)
        if b is None:
            b = torch.zeros(stats.num_classes, dtype=torch.float64, device=stats.device)
        if not isinstance(spaces, Mapping) or not spaces:
            raise ValueError(
                f"The 'spaces' parameter of {owner} must be a non-empty mapping of names to "
                f"LabelSpace or None. Got {spaces!r} instead."
            )
        classifiers, centers, sizes = [], [], []
        for name, space in spaces.items():
            if space is None:
                ws, bs = w, b
            else:
                _check_space(space, stats.num_classes, owner)
                ws, bs = superclass_classifier(w, b, space)
            group = stats.compute(space)
            _require_samples(group, f"space '{name}'")
            classifiers.append((ws, bs))
            centers.append((-2.0 * group.means, group.means.square().sum(dim=1)))
            sizes.append(group.num_groups)
        # Rows: every space's classifier, then every space's means (‖h‖² drops out of argmin).
        self._proto = torch.cat([c[0] for c in classifiers] + [c[0] for c in centers])
        self._offset = torch.cat([c[1] for c in classifiers] + [c[1] for c in centers])
        self._bounds = np.cumsum([0, *sizes]).tolist()
        self.names = list(spaces)
        self.dim = stats.dim
        self.reset()

    def reset(self) -> None:
        """Forget the counts (the classifiers and means are kept)."""
        self.mismatches = torch.zeros(len(self.names), dtype=torch.int64,
                                      device=self._proto.device)
        self.total = torch.zeros((), dtype=torch.int64, device=self._proto.device)

    def update(self, features: Any) -> None:
        """Count a batch of features of shape (n, D) (any float dtype, any device)."""
        h = _check_features(features, self.dim, "NearestMeanMismatch.update")
        if h.device != self._proto.device:  # follow the batches, like ClassStatistics
            self._proto, self._offset = self._proto.to(h.device), self._offset.to(h.device)
            self.mismatches, self.total = self.mismatches.to(h.device), self.total.to(h.device)
        split = self._bounds[-1]
        for chunk in h.split(self.chunk_size):
            scores = torch.addmm(self._offset, chunk.to(torch.float64), self._proto.T)
            for i in range(len(self.names)):
                lo, hi = self._bounds[i], self._bounds[i + 1]
                pred = scores[:, lo:hi].argmax(dim=1)
                nearest = scores[:, split + lo:split + hi].argmin(dim=1)
                self.mismatches[i] += (pred != nearest).sum()
        self.total += h.shape[0]

    def merge(self, other: NearestMeanMismatch) -> NearestMeanMismatch:
        """Add the counts of ``other`` (built for the same spaces). Returns ``self``."""
        if not isinstance(other, NearestMeanMismatch) or other.names != self.names:
            raise ValueError(
                "The 'other' parameter of NearestMeanMismatch.merge must count the spaces "
                f"{self.names}. Got {getattr(other, 'names', type(other).__name__)} instead."
            )
        self.mismatches += other.mismatches.to(self.mismatches.device)
        self.total += other.total.to(self.total.device)
        return self

    def all_reduce(self) -> None:
        """Sum the counts over processes when ``torch.distributed`` is initialised (all call)."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        counts = torch.cat([self.mismatches, self.total[None]])
        dist.all_reduce(counts, op=dist.ReduceOp.SUM)
        self.mismatches, self.total = counts[:-1], counts[-1]

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
