"""LCA distances of a small unbalanced tree from its root-to-leaf paths alone (no hypbias code).

``NESTED`` (10 classes c0..c9, height 4; leaves at depths 2 to 4)::

    root ─ a ─ a1 ─ c0, c1, c2        root ─ b ─ b1 ─ b11 ─ c4, c5
             └ a2 ─ c3                          └ c6
    root ─ c ─ c7, c8, c9
"""

from __future__ import annotations

from typing import Any

import numpy as np

NESTED = {"a": {"a1": ["c0", "c1", "c2"], "a2": ["c3"]},
          "b": {"b1": {"b11": ["c4", "c5"]}, "c6": None},
          "c": ["c7", "c8", "c9"]}


def leaf_paths(tree: Any = NESTED, prefix: tuple[str, ...] = ("root",)) -> dict[str, tuple[str, ...]]:
    """Root-to-leaf paths of a nested dict/list tree, by leaf name."""
    out = {}
    items = tree.items() if isinstance(tree, dict) else ((leaf, None) for leaf in tree)
    for name, sub in items:
        out.update(leaf_paths(sub, (*prefix, name)) if sub else {name: (*prefix, name)})
    return out


def reference_lca_distances(convention: str) -> np.ndarray:
    """(10, 10) distances of NESTED's leaves: LCA height ("height") or H − depth(LCA) ("depth")."""
    paths = leaf_paths()
    leaves = [paths[f"c{i}"] for i in range(10)]
    tree_height = max(len(p) for p in leaves) - 1

    def height(node: str) -> int:  # the longest way down to a leaf
        return max(p[::-1].index(node) for p in leaves if node in p)

    out = np.zeros((10, 10), dtype=np.int64)
    for i, p in enumerate(leaves):
        for j, q in enumerate(leaves):
            if i != j:
                common = next(k for k in range(len(p)) if k >= len(q) or p[k] != q[k])
                out[i, j] = height(p[common - 1]) if convention == "height" else (
                    tree_height - (common - 1))
    return out
