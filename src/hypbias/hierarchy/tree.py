"""The class hierarchy: a rooted DAG whose leaves are the C classes.

Two views of the same nodes (DESIGN.md §2):

* the *graph* view keeps every parent of a node (WordNet's "graph");
* the *tree* view keeps only the first parent listed for each node (the paper's "WordNet tree").
  Sources that need another rule order a node's parents so that the chosen one comes first.

Leaves are the classes, in the order given, and carry indices ``0 .. C-1``. Heights are measured in
the tree view with leaves at height 0; depths count edges from the root.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path

from hypbias._validation import check_choice
from hypbias.errors import HierarchyError

ROOT_NAME = "<root>"
"""Name of the synthetic root added when a hierarchy has several roots."""

LCA_CONVENTIONS = ("depth", "height")
"""The conventions of :meth:`Hierarchy.lca_distance_matrix`; the first is the default of the
metrics and losses that take an ``lca`` option."""

NodeRef = int | str


class Hierarchy:
    """A class hierarchy with a graph view and a tree view.

    Parameters
    ----------
    parents : mapping of str to sequence of str
        Every node's parents; a root maps to an empty sequence. The first parent of a node is its
        parent in the tree view.
    classes : sequence of str
        The C classes, which must be exactly the leaves. Their order defines class indices.
    source : str
        Where the hierarchy came from (a file path), named in error messages.

    Use the constructors :meth:`from_parents`, :meth:`from_edges`, :meth:`from_nested` or
    :func:`hypbias.hierarchy.read_hierarchy` (files) rather than this initialiser.
    """

    def __init__(self, parents: Mapping[str, Sequence[str]], classes: Sequence[str],
                 *, source: str = "hierarchy") -> None:
        self.source = source
        self.classes: list[str] = list(classes)
        _check_classes(self.classes, source)
        parents = {node: tuple(ps) for node, ps in parents.items()}
        for node, ps in list(parents.items()):
            for p in ps:
                if p not in parents:
                    raise HierarchyError(
                        f"{source}: unknown parent {p!r} of {node!r} (it is not a node of the hierarchy)"
                    )
            if len(set(ps)) != len(ps):
                raise HierarchyError(f"{source}: node {node!r} lists the same parent twice: {ps}")
        _check_acyclic(parents, source)
        roots = [node for node, ps in parents.items() if not ps]
        if not roots:
            raise HierarchyError(f"{source}: the hierarchy has no root (every node has a parent)")
        if len(roots) > 1:
            if ROOT_NAME in parents:
                raise HierarchyError(f"{source}: several roots and a node named {ROOT_NAME!r}")
            parents = {n: (ps if ps else (ROOT_NAME,)) for n, ps in parents.items()}
            parents[ROOT_NAME] = ()
            roots = [ROOT_NAME]
        children: dict[str, list[str]] = {n: [] for n in parents}
        for node, ps in parents.items():
            for p in ps:
                children[p].append(node)
        class_set = set(self.classes)
        for c in self.classes:
            if c not in parents:
                raise HierarchyError(f"{source}: class {c!r} does not appear in the hierarchy")
            if children[c]:
                raise HierarchyError(
                    f"{source}: class {c!r} is not a leaf: it is the parent of {children[c][0]!r}"
                )
        for node, kids in children.items():
            if not kids and node not in class_set:
                raise HierarchyError(
                    f"{source}: leaf {node!r} is missing from the class list"
                )

        internal = [n for n in parents if n not in class_set]
        self.nodes: list[str] = self.classes + internal
        self._index = {n: i for i, n in enumerate(self.nodes)}
        self._graph_parents = [tuple(self._index[p] for p in parents[n]) for n in self.nodes]
        self.root = self._index[roots[0]]
        self._tree_parent = np.array([ps[0] if ps else -1 for ps in self._graph_parents])
        self._tree_children: list[list[int]] = [[] for _ in self.nodes]
        for node in self.nodes:  # children in the order their names were given
            for child in children[node]:
                if self._tree_parent[self._index[child]] == self._index[node]:
                    self._tree_children[self._index[node]].append(self._index[child])
        self._dfs_nodes = self._tree_dfs()
        self._node_height, self._node_leaves = self._tree_heights()
        self._depth = self._tree_depths()

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_parents(cls, parents: Mapping[str, str | Sequence[str] | None],
                     classes: Sequence[str], *, source: str = "parents") -> Hierarchy:
        """Build from ``{child: parent}`` (or ``{child: [parent, ...]}`` for a graph).

        A node mapped to ``None`` is a declared root; then every parent must itself be a key. Without
        declared roots, exactly one parent may be absent from the keys: it is the root.

        >>> h = Hierarchy.from_parents({"cat": "animal", "dog": "animal"}, ["cat", "dog"])
        >>> h.lca_height(0, 1)
        1
        """
        full: dict[str, tuple[str, ...]] = {}
        for child, ps in parents.items():
            if ps is None:
                full[child] = ()
            elif isinstance(ps, str):
                full[child] = (ps,)
            else:
                full[child] = tuple(ps)
        declared = any(ps is None for ps in parents.values())
        missing = list(dict.fromkeys(p for ps in full.values() for p in ps if p not in full))
        if missing and declared:
            raise HierarchyError(
                f"{source}: unknown parent {missing[0]!r} (roots are declared with None, "
                "so every parent must be a node)"
            )
        if len(missing) > 1:
            listed = ", ".join(repr(m) for m in missing[:5])
            raise HierarchyError(
                f"{source}: unknown parents {listed}: a hierarchy has one implicit root; "
                "map a root to None to declare several"
            )
        for m in missing:
            full[m] = ()
        return cls(full, classes, source=source)

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[str, str]], classes: Sequence[str] | None = None,
                   *, source: str = "edges") -> Hierarchy:
        """Build from ``(child, parent)`` pairs; a child listed with several parents is a graph node.

        ``classes`` defaults to the leaves in order of first appearance.
        """
        parents: dict[str, list[str]] = {}
        order: list[str] = []
        for child, parent in edges:
            for name in (child, parent):
                if name not in parents:
                    parents[name] = []
                    order.append(name)
            if parent not in parents[child]:
                parents[child].append(parent)
        if classes is None:
            has_child = {p for ps in parents.values() for p in ps}
            classes = [n for n in order if n not in has_child]
        roots = [n for n, ps in parents.items() if not ps]
        mapping: dict[str, Sequence[str] | None] = {n: (ps if ps else None) for n, ps in parents.items()}
        if len(roots) == 1:
            mapping = {n: ps for n, ps in mapping.items() if ps is not None}
        return cls.from_parents(mapping, classes, source=source)

    @classmethod
    def from_nested(cls, tree: Mapping[str, Any] | Sequence[Any],
                    classes: Sequence[str] | None = None, *, source: str = "nested") -> Hierarchy:
        """Build from a nested dict: ``{"animal": {"cat": None, "dog": ["poodle", "husky"]}}``.

        A value is a dict of children, a list of children (names or dicts), or ``None`` / ``{}`` for a
        leaf. Several top-level keys get a synthetic root. ``classes`` defaults to the leaves in
        reading order. A name may appear only once.
        """
        parents: dict[str, Sequence[str] | None] = {}
        leaves: list[str] = []

        def add(name: Any, parent: str | None, value: Any) -> None:
            if not isinstance(name, str):
                raise HierarchyError(f"{source}: node names must be strings; got {name!r}")
            if name in parents:
                raise HierarchyError(f"{source}: duplicate name {name!r}")
            parents[name] = None if parent is None else [parent]
            if value is None or (isinstance(value, Mapping | list | tuple) and len(value) == 0):
                leaves.append(name)
            elif isinstance(value, Mapping):
                for child, sub in value.items():
                    add(child, name, sub)
            elif isinstance(value, list | tuple):
                for item in value:
                    if isinstance(item, Mapping):
                        for child, sub in item.items():
                            add(child, name, sub)
                    else:
                        add(item, name, None)
            else:
                raise HierarchyError(
                    f"{source}: the value under {name!r} must be a dict, a list or empty; got {value!r}"
                )

        if isinstance(tree, Mapping):
            for name, value in tree.items():
                add(name, None, value)
        else:
            for item in tree:
                if isinstance(item, Mapping):
                    for name, value in item.items():
                        add(name, None, value)
                else:
                    add(item, None, None)
        return cls.from_parents(parents, leaves if classes is None else classes, source=source)

    # ------------------------------------------------------------------ export
    def to_dict(self) -> dict[str, Any]:
        """``{"classes": [...], "parents": {node: [parents...]}}``; round-trips via :meth:`from_dict`."""
        return {
            "classes": list(self.classes),
            "parents": {
                self.nodes[i]: [self.nodes[p] for p in ps]
                for i, ps in enumerate(self._graph_parents)
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "dict") -> Hierarchy:
        """Inverse of :meth:`to_dict`."""
        try:
            parents, classes = data["parents"], data["classes"]
        except KeyError as err:
            raise HierarchyError(f"{source}: missing field {err.args[0]!r}") from None
        return cls({n: tuple(ps or ()) for n, ps in parents.items()}, classes, source=source)

    # ------------------------------------------------------------------ basic queries
    @property
    def num_classes(self) -> int:
        """C, the number of leaves."""
        return len(self.classes)

    @property
    def height(self) -> int:
        """Height of the root in the tree view (leaves have height 0)."""
        return int(self._node_height[self.root])

    def index(self, node: NodeRef) -> int:
        """Index of a node given by name or index."""
        if isinstance(node, int | np.integer):
            if not 0 <= node < len(self.nodes):
                raise IndexError(f"node index {node} out of range [0, {len(self.nodes)})")
            return int(node)
        try:
            return self._index[node]
        except KeyError:
            raise KeyError(f"{node!r} is not a node of {self.source}") from None

    def name(self, node: NodeRef) -> str:
        return self.nodes[self.index(node)]

    def parents(self, node: NodeRef) -> list[str]:
        """All parents of a node (graph view)."""
        return [self.nodes[p] for p in self._graph_parents[self.index(node)]]

    def children(self, node: NodeRef) -> list[str]:
        """Children of a node in the tree view, in the order given."""
        return [self.nodes[c] for c in self._tree_children[self.index(node)]]

    def ancestors(self, node: NodeRef, view: str = "tree") -> list[str]:
        """Ancestors of a node, nearest first.

        ``view="tree"``: the path to the root. ``view="graph"``: every node reachable by parent
        pointers, in order of breadth-first distance.
        """
        i = self.index(node)
        out: list[int] = []
        if view == "tree":
            p = self._tree_parent[i]
            while p >= 0:
                out.append(int(p))
                p = self._tree_parent[p]
        elif view == "graph":
            seen, frontier = {i}, [i]
            while frontier:
                nxt = []
                for n in frontier:
                    for p in self._graph_parents[n]:
                        if p not in seen:
                            seen.add(p)
                            nxt.append(p)
                            out.append(p)
                frontier = nxt
        else:
            raise ValueError(
                f"The 'view' parameter of ancestors must be 'tree' or 'graph'. Got {view!r} instead."
            )
        return [self.nodes[a] for a in out]

    def leaves(self, node: NodeRef, view: str = "tree") -> np.ndarray:
        """Class indices under ``node`` (array of shape (k,), increasing)."""
        i = self.index(node)
        if view == "tree":
            return np.flatnonzero(self._node_leaves[i])
        return np.array([c for c in range(self.num_classes)
                         if c == i or self.nodes[i] in self.ancestors(c, "graph")], dtype=np.int64)

    def depth(self, node: NodeRef) -> int:
        """Edges from the root to ``node`` in the tree view."""
        return int(self._depth[self.index(node)])

    def node_height(self, node: NodeRef) -> int:
        """Longest downward path from ``node`` to a leaf in the tree view (0 for a leaf)."""
        return int(self._node_height[self.index(node)])

    # ------------------------------------------------------------------ pairwise
    def lca(self, i: NodeRef, j: NodeRef) -> str:
        """Lowest common ancestor of two nodes in the tree view."""
        path_i = [self.name(i), *self.ancestors(i)]
        on_j = {self.name(j), *self.ancestors(j)}
        return next(n for n in path_i if n in on_j)

    def lca_height(self, i: NodeRef, j: NodeRef) -> int:
        """Height h(i, j) of the lowest common ancestor of two classes (0 when i == j)."""
        return self.node_height(self.lca(i, j))

    def lca_height_matrix(self) -> np.ndarray:
        """h(i, j) for all class pairs, array of shape (C, C) of int64."""
        return self._node_height[self._lca_matrix()]

    def lca_distance_matrix(self, convention: str = "height", *, name: str = "convention",
                            owner: str = "Hierarchy.lca_distance_matrix") -> np.ndarray:
        """LCA distances between all class pairs, array of shape (C, C) of int64, 0 on the diagonal.

        Two conventions, equal on trees whose leaves all lie at depth H (DESIGN.md §2):

        * ``"height"``: h(i, j), the height of the LCA above its deepest leaf
          (:meth:`lca_height_matrix`);
        * ``"depth"``: H − depth(LCA(i, j)) for i ≠ j, with H the tree height: the distance of the
          published mistake-severity and hierarchical-distance numbers (the ``ilsvrc_distances``
          files released with Bertinetto et al. 2020, "Making Better Mistakes", which give 0 for
          i = j). On a leaf shallower than H it grows with the depth it lacks.

        ``convention`` must be one of :data:`LCA_CONVENTIONS`; ``name`` and ``owner`` word the
        error otherwise, so that a caller's own option (the ``lca`` of a metric or loss) is checked
        here, once.
        """
        check_choice(convention, name, owner, LCA_CONVENTIONS)
        if convention == "height":
            return self.lca_height_matrix()
        out = self.height - self._depth[self._lca_matrix()]
        np.fill_diagonal(out, 0)
        return out

    def _lca_matrix(self) -> np.ndarray:
        """Node index of LCA(i, j) in the tree view for all class pairs, shape (C, C).

        Vectorised: with A the (C, N) leaf-to-tree-ancestor incidence (self included), the number of
        common ancestors of i and j is depth(LCA) + 1, so one matrix product finds every LCA.
        """
        c = self.num_classes
        paths = self._leaf_paths()  # (C, height + 1): ancestor at each depth, -1 past the leaf
        incidence = np.zeros((c, len(self.nodes)), dtype=np.float32)
        rows = np.repeat(np.arange(c), paths.shape[1])
        cols = paths.ravel()
        keep = cols >= 0
        incidence[rows[keep], cols[keep]] = 1.0
        lca_depth = (incidence @ incidence.T).astype(np.int64) - 1
        return paths[np.arange(c)[:, None], lca_depth]

    def graph_distance_matrix(self, view: str = "graph") -> np.ndarray:
        """Shortest undirected path length d_W(i, j) between classes, array of shape (C, C).

        Computed by breadth-first search from every leaf at once (``scipy.sparse.csgraph``).
        """
        if view == "graph":
            edges = [(i, p) for i, ps in enumerate(self._graph_parents) for p in ps]
        elif view == "tree":
            edges = [(i, int(p)) for i, p in enumerate(self._tree_parent) if p >= 0]
        else:
            raise ValueError(
                "The 'view' parameter of graph_distance_matrix must be 'tree' or 'graph'. "
                f"Got {view!r} instead."
            )
        n = len(self.nodes)
        src, dst = np.array(edges, dtype=np.int64).T if edges else (np.zeros(0, int),) * 2
        adj = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)).tocsr()
        dist = shortest_path(adj, directed=False, unweighted=True, indices=np.arange(self.num_classes))
        return dist[:, : self.num_classes].astype(np.int64)

    # ------------------------------------------------------------------ orders and cuts
    def dfs_order(self) -> np.ndarray:
        """Class indices in depth-first order of the tree view, siblings consecutive. Shape (C,)."""
        return np.array([n for n in self._dfs_nodes if n < self.num_classes], dtype=np.int64)

    def superclasses(self, level: int | None = None, n: int | None = None) -> list[str]:
        """Cut the tree view into superclasses that partition the classes; returns node names.

        Exactly one of:

        * ``level=k``: the nodes at depth k (the root's children for k = 1); a leaf shallower than k
          is its own group.
        * ``n=k``: k groups with sizes as equal as the tree allows. Rule: start from the root and
          repeatedly replace one group by its children, always splitting the group with the most
          classes among those whose split keeps the count at most k (ties: the first in DFS order);
          a node with a single child is looked through. Raises ``ValueError`` when k cannot be
          reached, listing the counts that can.

        Groups are returned in depth-first order.
        """
        if (level is None) == (n is None):
            raise ValueError("superclasses needs exactly one of 'level' or 'n'")
        dfs_rank = {node: r for r, node in enumerate(self._dfs_nodes)}
        if level is not None:
            if not isinstance(level, int | np.integer) or level < 0:
                raise ValueError(
                    f"The 'level' parameter of superclasses must be an int >= 0. Got {level!r} instead."
                )
            cut = [i for i in self._dfs_nodes if self._node_leaves[i].any()
                   and (self._depth[i] == level or (i < self.num_classes and self._depth[i] < level))]
            return [self.nodes[i] for i in cut]
        if not isinstance(n, int | np.integer) or not 1 <= n <= self.num_classes:
            raise ValueError(
                f"The 'n' parameter of superclasses must be an int in [1, {self.num_classes}]. "
                f"Got {n!r} instead."
            )
        cut = [self._through_unary(self.root)]
        reached = [1]
        while len(cut) < n:
            options = [g for g in cut if self._kids(g) and len(cut) - 1 + len(self._kids(g)) <= n]
            if not options:
                grow = [g for g in cut if self._kids(g)]
                if grow:  # report the counts a further, overshooting split would give
                    reached.append(len(cut) - 1 + min(len(self._kids(g)) for g in grow))
                raise ValueError(
                    f"superclasses: cannot cut {n} groups from {self.source}; "
                    f"reachable counts along the way include {sorted(set(reached))}"
                )
            best = max(options, key=lambda g: (self._node_leaves[g].sum(), -dfs_rank[g]))
            pos = cut.index(best)
            cut[pos:pos + 1] = [self._through_unary(ch) for ch in self._kids(best)]
            reached.append(len(cut))
        cut.sort(key=dfs_rank.__getitem__)
        return [self.nodes[i] for i in cut]

    def assignment(self, nodes: Sequence[NodeRef]) -> np.ndarray:
        """Group index of every class for a cut given as node names; shape (C,).

        Raises :class:`HierarchyError` unless the nodes' leaf sets (tree view) partition the classes.
        """
        t = np.full(self.num_classes, -1, dtype=np.int64)
        for g, node in enumerate(nodes):
            members = self._node_leaves[self.index(node)]
            overlap = members & (t >= 0)
            if overlap.any():
                c = self.classes[int(np.flatnonzero(overlap)[0])]
                raise HierarchyError(f"{self.source}: class {c!r} falls under two groups of the cut")
            t[members] = g
        if (t < 0).any():
            c = self.classes[int(np.flatnonzero(t < 0)[0])]
            raise HierarchyError(f"{self.source}: class {c!r} is under none of the groups of the cut")
        return t

    def __repr__(self) -> str:
        return (f"Hierarchy({self.num_classes} classes, {len(self.nodes)} nodes, "
                f"height {self.height}, source={self.source!r})")

    # ------------------------------------------------------------------ internals
    def _kids(self, node: int) -> list[int]:
        """Tree children that have classes below them (a graph node can lose all its tree children)."""
        return [k for k in self._tree_children[node] if self._node_leaves[k].any()]

    def _through_unary(self, node: int) -> int:
        while len(self._kids(node)) == 1:
            node = self._kids(node)[0]
        return node

    def _tree_dfs(self) -> list[int]:
        order, stack = [], [self.root]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(reversed(self._tree_children[node]))
        return order

    def _tree_heights(self) -> tuple[np.ndarray, np.ndarray]:
        n, c = len(self.nodes), self.num_classes
        height = np.zeros(n, dtype=np.int64)
        leaves = np.zeros((n, c), dtype=bool)
        leaves[np.arange(c), np.arange(c)] = True
        for node in reversed(self._dfs_nodes):  # children before parents
            kids = self._tree_children[node]
            if kids:
                height[node] = 1 + max(height[k] for k in kids)
                leaves[node] = np.logical_or.reduce(leaves[kids], axis=0)
        return height, leaves

    def _tree_depths(self) -> np.ndarray:
        depth = np.full(len(self.nodes), -1, dtype=np.int64)
        for node in self._dfs_nodes:  # parents before children
            p = self._tree_parent[node]
            depth[node] = 0 if p < 0 else depth[p] + 1
        return depth

    def _leaf_paths(self) -> np.ndarray:
        """Ancestor of every leaf at each depth (root at column 0), padded with -1; (C, height+1)."""
        c = self.num_classes
        max_depth = int(self._depth[:c].max()) if c else 0
        paths = np.full((c, max_depth + 1), -1, dtype=np.int64)
        for leaf in range(c):
            node = leaf
            while node >= 0:
                paths[leaf, self._depth[node]] = node
                node = self._tree_parent[node]
        return paths


def _check_classes(classes: list[str], source: str) -> None:
    seen: dict[str, int] = {}
    for pos, c in enumerate(classes):
        if not isinstance(c, str):
            raise HierarchyError(f"{source}: class names must be strings; got {c!r} at position {pos}")
        if c in seen:
            raise HierarchyError(
                f"{source}: duplicate class name {c!r} (positions {seen[c]} and {pos})"
            )
        seen[c] = pos
    if not classes:
        raise HierarchyError(f"{source}: the class list is empty")


def _check_acyclic(parents: Mapping[str, tuple[str, ...]], source: str) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in parents:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, k = stack.pop()
            if k == 0:
                state[node] = 1
                path.append(node)
            ps = parents[node]
            if k < len(ps):
                stack.append((node, k + 1))
                nxt = ps[k]
                if state.get(nxt) == 1:
                    cycle = [*path[path.index(nxt):], nxt]
                    raise HierarchyError(f"{source}: cycle in the hierarchy: {' -> '.join(cycle)}")
                if not state.get(nxt):
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                path.pop()
