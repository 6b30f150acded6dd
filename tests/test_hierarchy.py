"""Hierarchy: constructors, pairwise matrices against straightforward computations, cuts, errors."""

from __future__ import annotations

import itertools
import json
from collections import deque

import numpy as np
import pytest

from hypbias import Hierarchy
from hypbias.data import synthetic_hierarchy
from hypbias.errors import HierarchyError
from hypbias.hierarchy import read_hierarchy


def bfs_distance(h: Hierarchy, a: str, b: str, view: str = "graph") -> int:
    """Plain breadth-first search over undirected edges, one pair at a time."""
    nbrs: dict[str, set[str]] = {n: set() for n in h.nodes}
    for n in h.nodes:
        ps = h.parents(n) if view == "graph" else h.parents(n)[:1]
        for p in ps:
            nbrs[n].add(p)
            nbrs[p].add(n)
    seen, queue = {a: 0}, deque([a])
    while queue:
        n = queue.popleft()
        for m in nbrs[n]:
            if m not in seen:
                seen[m] = seen[n] + 1
                queue.append(m)
    return seen[b]


def naive_lca_height(h: Hierarchy, i: int, j: int) -> int:
    path_i = [h.classes[i], *h.ancestors(i)]
    path_j = set([h.classes[j], *h.ancestors(j)])
    lca = next(n for n in path_i if n in path_j)
    return h.node_height(lca)


def test_from_parents_basic(small_tree):
    h = Hierarchy.from_parents({"x": "a1", "y": "a1", "z": "a1", "w": "a2", "a1": "a", "a2": "a",
                                "u": "b", "v": "b", "a": None, "b": None},
                               ["x", "y", "z", "w", "u", "v"])
    assert h.num_classes == 6
    assert h.height == 3  # synthetic root over a, b
    np.testing.assert_array_equal(h.lca_height_matrix(), small_tree.lca_height_matrix())


def test_constructors_agree(small_tree, tmp_path):
    edges = [(c, p) for c in small_tree.nodes for p in small_tree.parents(c)]
    by_edges = Hierarchy.from_edges(edges, small_tree.classes)
    path = tmp_path / "h.yaml"
    path.write_text("a:\n  a1: [x, y, z]\n  a2: [w]\nb: [u, v]\n")
    from_file = read_hierarchy(str(path))
    jpath = tmp_path / "h.json"
    jpath.write_text(json.dumps(small_tree.to_dict()))
    for other in (by_edges, from_file, read_hierarchy(str(jpath)),
                  Hierarchy.from_dict(small_tree.to_dict())):
        assert other.classes == small_tree.classes
        np.testing.assert_array_equal(other.lca_height_matrix(), small_tree.lca_height_matrix())
        np.testing.assert_array_equal(other.graph_distance_matrix(), small_tree.graph_distance_matrix())


def test_lca_height_matrix_matches_pairwise():
    h = synthetic_hierarchy([3, 2, 4])
    m = h.lca_height_matrix()
    for i, j in itertools.product(range(h.num_classes), repeat=2):
        assert m[i, j] == naive_lca_height(h, i, j) == h.lca_height(i, j)
    assert (np.diag(m) == 0).all()


def test_lca_heights_unbalanced(small_tree):
    m = small_tree.lca_height_matrix()
    x, w, u, v = (small_tree.classes.index(n) for n in "xwuv")
    assert m[x, w] == 2  # LCA 'a' has height 2 (a -> a1 -> x)
    assert m[u, v] == 1
    assert m[x, u] == 3  # the synthetic root


def test_graph_distance_matches_bfs_with_multiple_parents():
    parents = {"cat": ["feline", "pet"], "dog": ["canine", "pet"], "wolf": "canine",
               "feline": "carnivore", "canine": "carnivore", "carnivore": "animal", "pet": "animal"}
    h = Hierarchy.from_parents(parents, ["cat", "dog", "wolf"])
    for view in ("graph", "tree"):
        d = h.graph_distance_matrix(view=view)
        for a, b in itertools.product(h.classes, repeat=2):
            assert d[h.index(a), h.index(b)] == bfs_distance(h, a, b, view), (view, a, b)
    assert h.graph_distance_matrix()[0, 1] == 2  # cat - pet - dog
    assert h.graph_distance_matrix(view="tree")[0, 1] == 4
    assert h.ancestors("cat") == ["feline", "carnivore", "animal"]
    assert set(h.ancestors("cat", view="graph")) == {"feline", "pet", "carnivore", "animal"}


def test_dfs_order_keeps_siblings_together():
    rng = np.random.default_rng(0)
    h = synthetic_hierarchy([3, 4])
    perm = [h.classes[i] for i in rng.permutation(h.num_classes)]
    shuffled = Hierarchy.from_parents({c: h.parents(c)[0] for c in h.nodes if h.parents(c)}, perm)
    order = shuffled.dfs_order()
    assert sorted(order.tolist()) == list(range(12))
    groups = [shuffled.parents(int(i))[0] for i in order]
    # each parent's classes form one contiguous run
    runs = [g for k, g in enumerate(groups) if k == 0 or g != groups[k - 1]]
    assert len(runs) == len(set(groups)) == 3


def test_superclasses_level_and_n(small_tree):
    assert small_tree.superclasses(level=1) == ["a", "b"]
    assert small_tree.superclasses(level=2) == ["a1", "a2", "u", "v"]
    assert small_tree.superclasses(level=5) == small_tree.classes
    assert small_tree.superclasses(n=1) == ["<root>"]
    assert small_tree.superclasses(n=3) == ["a1", "w", "b"]  # a2 has one child: looked through
    assert small_tree.superclasses(n=4) == ["a1", "w", "u", "v"]
    h = synthetic_hierarchy([4, 5, 5])
    for n in (4, 8, 12, 16, 20, 100):
        cut = h.superclasses(n=n)
        sizes = np.bincount(h.assignment(cut))
        assert len(cut) == n and sizes.sum() == 100
        assert sizes.max() - sizes.min() <= 20  # splits take the largest group first
    with pytest.raises(ValueError, match="cannot cut 5 groups"):
        h.superclasses(n=5)
    with pytest.raises(ValueError, match="exactly one of"):
        h.superclasses()


def test_assignment_checks_partition(small_tree):
    t = small_tree.assignment(["a", "b"])
    assert t.tolist() == [0, 0, 0, 0, 1, 1]
    with pytest.raises(HierarchyError, match="class 'x' falls under two groups"):
        small_tree.assignment(["a", "a1", "b"])
    with pytest.raises(HierarchyError, match="class 'u' is under none"):
        small_tree.assignment(["a"])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Hierarchy.from_parents({"x": "a", "a": "b", "b": "a"}, ["x"]),
         r"^parents: cycle in the hierarchy: a -> b -> a$"),
        (lambda: Hierarchy.from_parents({"x": "a", "a": "b", "b": "x"}, ["x"]),
         r"cycle in the hierarchy: .* -> .*"),
        (lambda: Hierarchy.from_parents({"x": "a", "y": "b"}, ["x", "y"]),
         r"unknown parents 'a', 'b'"),
        (lambda: Hierarchy.from_parents({"x": "a", "a": None, "y": "zz"}, ["x", "y"]),
         r"unknown parent 'zz'"),
        (lambda: Hierarchy.from_parents({"x": "r", "y": "r"}, ["x", "y", "x"]),
         r"duplicate class name 'x' \(positions 0 and 2\)"),
        (lambda: Hierarchy.from_parents({"x": "r", "y": "x"}, ["x", "y"]),
         r"class 'x' is not a leaf: it is the parent of 'y'"),
        (lambda: Hierarchy.from_parents({"x": "r", "y": "r"}, ["x"]),
         r"leaf 'y' is missing from the class list"),
        (lambda: Hierarchy.from_parents({"x": "r"}, ["x", "q"]),
         r"class 'q' does not appear in the hierarchy"),
        (lambda: Hierarchy.from_nested({"a": ["x", "y"], "b": ["x"]}),
         r"duplicate name 'x'"),
    ],
)
def test_bad_hierarchies_give_one_line_errors(build, message):
    with pytest.raises(HierarchyError, match=message) as info:
        build()
    assert "\n" not in str(info.value)


def test_cycle_is_detected_in_graph_view():
    with pytest.raises(HierarchyError, match="cycle in the hierarchy: a -> b -> c -> a$"):
        Hierarchy.from_parents({"x": ["a"], "a": ["root", "b"], "b": "c", "c": "a", "root": None}, ["x"])


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [x, y\n")
    with pytest.raises(HierarchyError, match=f"{bad}: cannot parse"):
        read_hierarchy(str(bad))
    cyc = tmp_path / "cyc.json"
    cyc.write_text(json.dumps({"classes": ["x"], "parents": {"x": "a", "a": "b", "b": "a"}}))
    with pytest.raises(HierarchyError, match=f"{cyc}: "):
        read_hierarchy(str(cyc))
    with pytest.raises(HierarchyError, match="no such hierarchy file"):
        read_hierarchy(str(tmp_path / "missing.json"))


def test_cuts_skip_graph_nodes_without_tree_leaves():
    """'pet' keeps its graph children but loses them in the tree view (first parents elsewhere)."""
    parents = {"cat": ["feline", "pet"], "dog": ["canine", "pet"], "feline": "animal",
               "canine": "animal", "pet": "animal", "cow": "bovine", "bovine": "animal"}
    h = Hierarchy.from_parents(parents, ["cat", "dog", "cow"])
    assert h.children("pet") == []
    assert h.superclasses(n=3) == ["cat", "dog", "cow"]  # single-child nodes are looked through
    assert h.superclasses(level=1) == ["feline", "canine", "bovine"]
    assert h.assignment(h.superclasses(n=2 + 1)).tolist() == [0, 1, 2]
