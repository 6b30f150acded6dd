"""Hierarchical cross-entropy, forward + backward: ours vs the implementation it replaced.

Ours (``hypbias.losses.HierarchicalCrossEntropy``) computes log p of every node bottom-up, each node
a log-sum-exp of its children (O(N · nodes)). The reference, kept below as it was, computes one
grouped log-sum-exp over all C classes per depth of the tree (O(N · C · height)).

The tree is WordNet-shaped: C = 1000 classes, unbalanced, unary chains, height ~15, leaves at many
depths. Prints the median time of both, their ratio, and the largest absolute difference of the
loss and of the gradient, for both weightings.

    OMP_NUM_THREADS=1 python benchmarks/bench_hxe.py
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch
import torch.nn.functional as F

from hypbias.hierarchy.tree import Hierarchy
from hypbias.losses import HierarchicalCrossEntropy

C, BATCH, REPEATS = 1000, 256, 30


def wordnet_shaped_tree(num_classes: int, seed: int = 0) -> Hierarchy:
    """An unbalanced random tree: uneven splits, unary chains, leaves at depths ~3 to 15."""
    rng = np.random.default_rng(seed)
    names = (f"n{i}" for i in itertools.count())

    def subtree(n: int, depth: int) -> dict | None:
        if n == 1 and (depth >= 14 or rng.random() < 0.6):
            return None
        if n == 1 or rng.random() < 0.15:  # a unary node, as WordNet has many
            return {next(names): subtree(n, depth + 1)}
        k = int(min(n, rng.integers(2, 9)))
        cuts = np.sort(rng.choice(np.arange(1, n), size=k - 1, replace=False))
        sizes = np.diff(np.concatenate([[0], cuts, [n]]))
        return {next(names): subtree(int(s), depth + 1) for s in sizes}

    return Hierarchy.from_nested(subtree(num_classes, 0))


# ------------------------------------------------------------------ the reference (before)


def reference_group_logsumexp(log_p: torch.Tensor, index: torch.Tensor,
                              num_groups: int) -> torch.Tensor:
    idx = index.expand_as(log_p)
    shift = log_p.new_full((log_p.shape[0], num_groups), -torch.inf)
    shift = shift.scatter_reduce(1, idx, log_p.detach(), reduce="amax")
    scaled = torch.exp(log_p - shift.gather(1, idx))
    summed = log_p.new_zeros((log_p.shape[0], num_groups)).scatter_add(1, idx, scaled)
    return shift + torch.log(summed)


class ReferenceHXE(torch.nn.Module):
    """HierarchicalCrossEntropy as it was before this benchmark (one grouped LSE per depth)."""

    def __init__(self, h: Hierarchy, alpha: float, weighting: str) -> None:
        super().__init__()
        paths = [[c, *(h.index(a) for a in h.ancestors(c)[:-1])] for c in range(h.num_classes)]
        max_depth = max(len(p) for p in paths)
        cuts = np.array([[p[max(len(p) - d, 0)] for p in paths]
                         for d in range(1, max_depth + 1)], dtype=np.int64)
        group_of: list[dict[int, int]] = []
        offsets = [0]
        cut_index = np.empty_like(cuts)
        for d, cut in enumerate(cuts):
            nodes, cut_index[d] = np.unique(cut, return_inverse=True)
            group_of.append({int(n): offsets[-1] + g for g, n in enumerate(nodes)})
            offsets.append(offsets[-1] + len(nodes))
        if weighting == "height_literal":
            weights = np.exp(-alpha * np.array([h.node_height(v) for v in range(len(h.nodes))],
                                               dtype=np.float64))
        else:
            depth = np.array([h.depth(v) for v in range(len(h.nodes))], dtype=np.float64)
            in_tree = np.array([h.leaves(v).size > 0 for v in range(len(h.nodes))])
            weights = np.exp(-alpha * depth) / np.exp(-alpha * depth)[in_tree].sum()
        cols = np.zeros((h.num_classes, max_depth), dtype=np.int64)
        coef = np.zeros((h.num_classes, max_depth), dtype=np.float64)
        for c, path in enumerate(paths):
            w = np.array([weights[v] for v in path])
            coef[c, : len(path)] = w - np.concatenate([[0.0], w[:-1]])
            cols[c, : len(path)] = [group_of[len(path) - 1 - i][v] for i, v in enumerate(path)]
        self.cut_index = torch.as_tensor(cut_index)
        self.path_columns = torch.as_tensor(cols)
        self.path_coef = torch.as_tensor(coef, dtype=torch.float32)
        self.group_counts = [offsets[d + 1] - offsets[d] for d in range(max_depth)]

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=1)
        tables = [reference_group_logsumexp(log_p, self.cut_index[d], n)
                  for d, n in enumerate(self.group_counts)]
        node_logp = torch.cat(tables, dim=1).gather(1, self.path_columns[targets])
        return -(self.path_coef[targets].to(node_logp.dtype) * node_logp).sum(dim=1).mean()


# ------------------------------------------------------------------ measurement


def step(loss: torch.nn.Module, logits: torch.Tensor, y: torch.Tensor
         ) -> tuple[torch.Tensor, torch.Tensor]:
    x = logits.clone().requires_grad_(True)
    value = loss(x, y)
    value.backward()
    return value.detach(), x.grad


def median_ms(loss: torch.nn.Module, logits: torch.Tensor, y: torch.Tensor) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        step(loss, logits, y)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main() -> None:
    h = wordnet_shaped_tree(C)
    depths = np.array([h.depth(c) for c in range(C)])
    in_tree = sum(1 for v in range(len(h.nodes)) if h.leaves(v).size)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); tree: C = {C}, "
          f"{in_tree} nodes, height {h.height}, leaf depths {depths.min()}-{depths.max()} "
          f"(median {int(np.median(depths))}); batch {BATCH}, forward + backward, "
          f"median of {REPEATS}")
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(BATCH, C, generator=g)
    y = torch.randint(0, C, (BATCH,), generator=g)
    print(f"{'weighting':>15} {'alpha':>6} | {'ours ms':>8} {'ref ms':>8} {'ratio':>6} | "
          f"{'max |dloss|':>11} {'max |dgrad|':>11}")
    for weighting, alpha in (("depth", 0.1), ("depth", 0.5), ("height_literal", 0.5)):
        ours = HierarchicalCrossEntropy(h, alpha, weighting=weighting)
        ref = ReferenceHXE(h, alpha, weighting)
        (value, grad), (ref_value, ref_grad) = step(ours, logits, y), step(ref, logits, y)
        for loss in (ours, ref):  # warm-up
            step(loss, logits, y)
        t_ours, t_ref = median_ms(ours, logits, y), median_ms(ref, logits, y)
        print(f"{weighting:>15} {alpha:>6} | {t_ours:8.2f} {t_ref:8.2f} {t_ref / t_ours:5.1f}x | "
              f"{abs(value - ref_value).item():11.2e} {(grad - ref_grad).abs().max().item():11.2e}")


if __name__ == "__main__":
    main()
