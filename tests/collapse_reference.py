"""Plain NumPy neural collapse from raw features, one label space at a time (App. A.2).

The straightforward method that ``hypbias.metrics.collapse`` must agree with: it maps the labels
into the space, recomputes group means and the within-group covariance from the raw features, and
takes the pseudoinverse of Σ_B. It reads the features three times per space (group means,
within-group scatter, NC4). Used by tests/test_collapse.py and benchmarks/bench_collapse.py.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

PASSES_PER_SPACE = 3


def reference_collapse(features: np.ndarray, labels: np.ndarray, weight: np.ndarray,
                       bias: np.ndarray, t: np.ndarray | None = None) -> dict[str, float]:
    """NC1–NC4 in the space ``t`` (None: fine classes) from raw features (N, D) and labels (N,)."""
    h = np.asarray(features, dtype=np.float64)
    c = weight.shape[0]
    t = np.arange(c) if t is None else np.asarray(t)
    k = int(t.max()) + 1
    g = t[labels]

    # Superclass classifier: plain means of the member rows (Eq. 34).
    w = np.stack([weight[t == s].mean(axis=0) for s in range(k)])
    b = np.array([bias[t == s].mean() for s in range(k)])

    # Pass 1: group means and the sample-weighted global mean.
    mu = np.stack([h[g == s].mean(axis=0) for s in range(k)])
    mu_g = h.mean(axis=0)
    m = mu - mu_g

    # Pass 2: within-group covariance from centered features.
    centered = h - mu[g]
    sigma_w = centered.T @ centered / len(h)
    sigma_b = m.T @ m / k
    # Σ_B has rank min(K - 1, D): keep exactly that many eigenpairs, as Papyan et al.'s svds(k=C-1).
    lam, vec = np.linalg.eigh(sigma_b)
    rank = min(k - 1, h.shape[1])
    lam, vec = lam[-rank:], vec[:, -rank:]
    pinv_b = (vec / lam) @ vec.T
    nc1 = np.trace(sigma_w @ pinv_b) / k

    def norm_ratio(v: np.ndarray) -> float:
        n = np.linalg.norm(v, axis=1)
        return float(np.std(n, ddof=1) / np.mean(n))

    def pair_cosines(v: np.ndarray) -> np.ndarray:
        n = np.linalg.norm(v, axis=1)
        cos = (v @ v.T) / np.outer(n, n)
        return cos[np.triu_indices(k, 1)]

    def angle_std(v: np.ndarray) -> float:
        # Papyan et al.'s first author's code: std (ddof = 1) over every off-diagonal entry of the
        # cosine matrix, so each pair counts twice.
        n = np.linalg.norm(v, axis=1)
        cos = (v @ v.T) / np.outer(n, n)
        return float(np.std(cos[~np.eye(k, dtype=bool)], ddof=1))

    def max_angle(v: np.ndarray) -> float:
        return float(np.mean(np.abs(pair_cosines(v) + 1.0 / (k - 1))))

    nc3 = np.linalg.norm(w / np.linalg.norm(w) - m / np.linalg.norm(m)) ** 2

    # Pass 3: classifier prediction against nearest group mean.
    pred = np.argmax(h @ w.T + b, axis=1)
    nearest = np.argmin(cdist(h, mu), axis=1)

    return {
        "nc1": float(nc1),
        "nc2_equinorm_means": norm_ratio(m),
        "nc2_equinorm_weights": norm_ratio(w),
        "nc2_equiangular_means": angle_std(m),
        "nc2_equiangular_weights": angle_std(w),
        "nc2_maxangle_means": max_angle(m),
        "nc2_maxangle_weights": max_angle(w),
        "nc3": float(nc3),
        "nc4": float(np.mean(pred != nearest)),
    }
