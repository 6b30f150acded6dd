"""Covers by the closed form, against the straightforward reading of Eq. 12–14; and UMAP cost.

Part 1, C = 100 and 1000 classes, K = 25 query and support points per class, dimension 10:

* ours: :func:`hypbias.metrics.covers`, the closed form mean_u max(0, 1 − d(u, V^j)/r_max) over the
  (query × support) distance matrix streamed in chunks of query rows;
* straightforward: the full distance matrix at once, d(u, V^j) class by class, then
  P_r(i, j) = P(d(u, V^j) < r) on a grid of 100 radii in [0, r_max] and the trapezoid rule.

Printed: time of each and their ratio, peak memory above the starting point (resident set size,
sampled every 2 ms, which sees NumPy and torch allocations alike), and the largest difference
(which is the straightforward version's grid error: at most 1/200 per query with 100 radii).

Part 2: UMAP (umap-learn, single-threaded and seeded as in the analysis) per layer-epoch on
2·C·K points of dimension 256 (overlapping classes), for several C·K, with the scaling exponent
fitted on log-log axes.

Run: ``python benchmarks/bench_covers.py`` (about 2 minutes on 2 CPU cores) or ``--quick``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from _measure import measure
from hypbias.analysis import embed
from hypbias.metrics.manifold import covers


def straightforward_covers(query: np.ndarray, query_labels: np.ndarray, support: np.ndarray,
                           support_labels: np.ndarray, num_classes: int,
                           radii: int = 100) -> np.ndarray:
    """Eq. 12–14 as written: full distances, Eq. 11 per class, P_r on a radius grid, integral."""
    dist = torch.cdist(torch.from_numpy(query), torch.from_numpy(support)).numpy()
    dmin = np.empty((len(query), num_classes))
    for j in range(num_classes):
        dmin[:, j] = dist[:, support_labels == j].min(axis=1)
    del dist
    r_max = dmin.max()
    grid = np.linspace(0.0, r_max, radii)
    counts = np.bincount(query_labels, minlength=num_classes)[:, None]
    p_r = np.empty((radii, num_classes, num_classes))
    for k, r in enumerate(grid):
        inside = (dmin < r).astype(np.float64)
        p_r[k] = np.add.reduceat(inside, np.r_[0, np.cumsum(counts[:-1, 0])], axis=0) / counts
    return np.trapezoid(p_r, grid, axis=0) / r_max


def sample(num_classes: int, k: int, dim: int, spread: float = 3.0,
           seed: int = 0) -> tuple[np.ndarray, ...]:
    """Clustered float32 points, K query and K support per class, sorted by class.

    Class centres are N(0, spread²) per coordinate around unit noise; a small spread makes
    classes overlap as layer features do (well-separated clusters give UMAP a disconnected graph,
    whose per-component layout is slower and untypical).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim)).astype(np.float32) * spread
    labels = np.repeat(np.arange(num_classes), k)
    query = centres[labels] + rng.normal(size=(len(labels), dim)).astype(np.float32)
    support = centres[labels] + rng.normal(size=(len(labels), dim)).astype(np.float32)
    return query, labels, support, labels


def bench_covers(sizes: list[tuple[int, int]], naive_up_to: int) -> None:
    print("covers, dim 10: closed form (chunked) vs full matrix + 100-radius integral")
    print(f"{'C':>5} {'K':>3} {'ours s':>8} {'naive s':>8} {'ratio':>7} {'ours MiB':>9} "
          f"{'naive MiB':>10} {'max |diff|':>11}")
    for c, k in sizes:
        q, yq, s, ys = sample(c, k, 10)
        ours, t_ours, m_ours = measure(lambda: covers(q, yq, s, ys))  # noqa: B023
        if c * k <= naive_up_to:
            naive, t_naive, m_naive = measure(
                lambda: straightforward_covers(q, yq, s, ys, c))  # noqa: B023
            diff = np.abs(ours - naive).max()
            print(f"{c:>5} {k:>3} {t_ours:>8.2f} {t_naive:>8.2f} {t_naive / t_ours:>6.1f}x "
                  f"{m_ours:>9.0f} {m_naive:>10.0f} {diff:>11.2e}")
        else:
            print(f"{c:>5} {k:>3} {t_ours:>8.2f} {'-':>8} {'-':>7} {m_ours:>9.0f} {'-':>10} {'-':>11}")


def bench_umap(sizes: list[tuple[int, int]]) -> None:
    print("\nUMAP per layer-epoch (umap-learn, n_jobs=1, seeded, 10 dims, inputs of dim 256)")
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    embed(rng.normal(size=(300, 256)).astype(np.float32), n_epochs=10)
    print(f"  one-off JIT compilation per process: {time.perf_counter() - t0:.1f} s")
    points, seconds = [], []
    for c, k in sizes:
        q, _, s, _ = sample(c, k, 256, spread=0.5)
        feats = np.concatenate([q, s])
        t0 = time.perf_counter()
        embed(feats)
        t = time.perf_counter() - t0
        points.append(len(feats))
        seconds.append(t)
        print(f"  C={c:>4} K={k:>2}: {len(feats):>6} points  {t:6.2f} s  "
              f"{t / len(feats) * 1e3:.2f} ms/point")
    if len(points) > 1:
        slope = np.polyfit(np.log(points), np.log(seconds), 1)[0]
        print(f"  time ~ (C·K)^{slope:.2f} over this range")


def main() -> None:
    warnings.simplefilter("ignore")  # umap-learn's notes on disconnected graphs, TensorFlow
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (seconds)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.quick:
        bench_covers([(100, 25)], naive_up_to=10**9)
        bench_umap([(20, 25), (40, 25)])
    else:
        bench_covers([(100, 25), (1000, 25), (1000, 50)], naive_up_to=25_000)
        bench_umap([(20, 25), (50, 25), (100, 25)])


if __name__ == "__main__":
    main()
