"""Neural collapse in H and 10 label spaces: one pass of fine statistics vs recomputing per space.

Ours: one pass accumulates ClassStatistics, NC1–NC3 of every space follow from it
(``neural_collapse``), and one more pass gives NC4 of every space (``nearest_mean_mismatch``).
Straightforward: for each space, map the labels and recompute group means, Σ_W and NC4 from the raw
features (tests/collapse_reference.py, three reads of the features per space).

Prints, per (C, D): wall time of both and their ratio, passes over the features, peak resident
memory above the start of each method, and the largest relative difference of any metric.

    python benchmarks/bench_collapse.py            # C in {100, 1000} x D in {512, 2048}, ~2 min
    python benchmarks/bench_collapse.py --quick    # C = 100, D = 512 only
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from hypbias.labelspace import LabelSpace
from hypbias.metrics.collapse import ClassStatistics, nearest_mean_mismatch, neural_collapse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _measure import measure
from collapse_reference import PASSES_PER_SPACE, reference_collapse

BATCH = 1024


class Batches:
    """The features in batches of ``BATCH`` rows; counts how many times they are read in full."""

    def __init__(self, features: np.ndarray, labels: np.ndarray) -> None:
        self.features, self.labels, self.passes = features, labels, 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.passes += 1
        for i in range(0, len(self.labels), BATCH):
            yield (torch.from_numpy(self.features[i:i + BATCH]),
                   torch.from_numpy(self.labels[i:i + BATCH]))


def make_problem(c: int, d: int, per_class: int, seed: int = 0):
    """Unbalanced Gaussian classes (float32 features), a linear head and 10 label spaces."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(per_class // 2, 3 * per_class // 2 + 1, size=c)
    labels = rng.permutation(np.repeat(np.arange(c), counts))
    means = rng.normal(size=(c, d))
    features = (means[labels] + rng.normal(size=(len(labels), d))).astype(np.float32)
    weight = means + 0.3 * rng.normal(size=(c, d))
    bias = 0.1 * rng.normal(size=c)
    spaces: dict[str, LabelSpace | None] = {"H": None}
    for n in (2, 4, 8, 16, 32):
        hyper = LabelSpace(np.arange(c) * n // c)
        spaces[f"S{n}"] = hyper
        spaces[f"R{n}#0"] = hyper.random_isomorphic(seed + n)
    return features, labels, weight, bias, spaces


def ours(data: Batches, weight: np.ndarray, bias: np.ndarray,
         spaces: dict[str, LabelSpace | None]) -> dict[str, dict[str, float]]:
    stats = ClassStatistics(len(weight), weight.shape[1])
    for features, labels in data:
        stats.update(features, labels)
    out = {name: neural_collapse(stats, weight, bias, space) for name, space in spaces.items()}
    for name, value in nearest_mean_mismatch(stats, weight, bias, data, spaces).items():
        out[name]["nc4"] = value
    return out


def straightforward(features: np.ndarray, labels: np.ndarray, weight: np.ndarray,
                    bias: np.ndarray, spaces: dict[str, LabelSpace | None]):
    return {name: reference_collapse(features, labels, weight, bias,
                                     None if space is None else space.t)
            for name, space in spaces.items()}


def largest_difference(a: dict, b: dict) -> tuple[float, str]:
    """Largest |a − b| / max(|b|, 1e-6) over every space and metric, and where it occurs.

    The floor keeps metrics that are zero in theory (max-angle and equiangularity with 2 groups)
    from dividing rounding noise by rounding noise. Both NaN counts as equal.
    """
    worst, where = 0.0, ""
    for space, metrics in b.items():
        for key, value in metrics.items():
            if np.isnan(value) and np.isnan(a[space][key]):
                continue
            diff = abs(a[space][key] - value) / max(abs(value), 1e-6)
            if not diff <= worst:
                worst, where = diff, f"{space}/{key}"
    return worst, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only C = 100, D = 512")
    parser.add_argument("--per-class", type=int, default=4,
                        help="mean samples per class (N ≈ C × per-class, min 2000)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/LAPACK threads of both methods (default 1: on a shared machine "
                             "multithreaded LAPACK times vary tenfold)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("threadpoolctl is not installed: NumPy keeps its default BLAS threads")
    else:
        threadpool_limits(args.threads)
    grid = [(100, 512)] if args.quick else [(100, 512), (100, 2048), (1000, 512), (1000, 2048)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), float64 state, "
          f"batches of {BATCH}; 10 label spaces + H")
    header = (f"{'C':>5} {'D':>5} {'N':>6} | {'ours s':>7} {'straight s':>10} {'ratio':>6} | "
              f"{'passes':>9} | {'peak MiB ours/straight':>22} | max rel diff")
    print(header)
    print("-" * len(header))
    warm = make_problem(64, 16, 4)  # first calls initialise BLAS/LAPACK thread pools
    ours(Batches(warm[0], warm[1]), *warm[2:])
    straightforward(*warm)
    for c, d in grid:
        per_class = max(args.per_class, -(-2000 // c))
        features, labels, weight, bias, spaces = make_problem(c, d, per_class)
        data = Batches(features, labels)
        got, t_ours, mem_ours = measure(lambda: ours(data, weight, bias, spaces))  # noqa: B023
        ref, t_ref, mem_ref = measure(
            lambda: straightforward(features, labels, weight, bias, spaces))  # noqa: B023
        diff, where = largest_difference(got, ref)
        passes = f"{data.passes}/{PASSES_PER_SPACE * len(spaces)}"
        print(f"{c:>5} {d:>5} {len(labels):>6} | {t_ours:>7.2f} {t_ref:>10.2f} "
              f"{t_ref / t_ours:>5.1f}x | {passes:>9} | {mem_ours:>10.0f} / {mem_ref:<9.0f} | "
              f"{diff:.1e} ({where})", flush=True)


if __name__ == "__main__":
    main()
