"""Text views of a hierarchy for ``hypbias hierarchy show|stats``: the tree and its statistics."""

from __future__ import annotations

import numpy as np

from hypbias._validation import check_int
from hypbias.data.hierarchy_sources import WNID
from hypbias.errors import HierarchyError
from hypbias.hierarchy.tree import Hierarchy
from hypbias.hierarchy.wordnet import synset_names
from hypbias.labelspace.space import LabelSpace


def display_names(hierarchy: Hierarchy) -> dict[str, str]:
    """Display names: ``wnid name`` for WordNet synsets, the node name otherwise.

    Names come from the hierarchy's own WordNet, else from the one found by the usual search (a
    run directory's ``hierarchy.json`` does not say which); without WordNet, wnids stay bare.
    """
    wnids = [n for n in hierarchy.nodes if WNID.fullmatch(n)]
    if not wnids:
        return {n: n for n in hierarchy.nodes}
    source = hierarchy.source.partition(":")[2] if hierarchy.source.startswith("wordnet:") \
        else None
    try:
        names = synset_names(wnids, source=source)
    except HierarchyError:
        names = {}
    return {n: f"{n} {names[n]}" if n in names else n for n in hierarchy.nodes}


def render_tree(hierarchy: Hierarchy, depth: int = 4, max_children: int = 12) -> str:
    """The tree view, one node per line with its class count, indented two spaces per level.

    Nodes deeper than ``depth`` are not expanded; a node lists at most ``max_children`` children
    (those with the most classes first) and then ``... N more (M classes)``. Internal nodes with
    no class below them in the tree view (graph-only hypernyms) are left out.
    """
    check_int(depth, "depth", "render_tree", low=0)
    check_int(max_children, "max_children", "render_tree", low=1)
    label = display_names(hierarchy)
    size = {n: int(hierarchy.leaves(n).size) for n in hierarchy.nodes}
    lines: list[str] = []
    # stack entries: (node name, depth) or (None, depth, marker text) for '... N more' lines
    stack: list[tuple[str | None, int, str]] = [(hierarchy.name(hierarchy.root), 0, "")]
    while stack:
        node, d, marker = stack.pop()
        if node is None:
            lines.append("  " * d + marker)
            continue
        kids = sorted((k for k in hierarchy.children(node) if size[k]), key=lambda k: -size[k])
        text = "  " * d + label[node] + (f" ({size[node]})" if kids else "")
        if kids and d >= depth:
            text += " ..."
            kids = []
        lines.append(text)
        shown, rest = kids[:max_children], kids[max_children:]
        if rest:
            n = sum(size[k] for k in rest)
            stack.append((None, d + 1, f"... {len(rest)} more ({n} class{'es' * (n != 1)})"))
        stack.extend((k, d + 1, "") for k in reversed(shown))
    return "\n".join(lines)


def render_stats(hierarchy: Hierarchy, space: LabelSpace | None) -> str:
    """Counts, depths and branching of the hierarchy; group sizes of ``space`` when given."""
    c = hierarchy.num_classes
    depths = np.array([hierarchy.depth(i) for i in range(c)])
    kids = [len(hierarchy.children(n)) for n in hierarchy.nodes[c:]]
    kids = [k for k in kids if k]
    multi = sum(1 for n in hierarchy.nodes if len(hierarchy.parents(n)) > 1)
    lines = [
        f"source: {hierarchy.source}",
        f"classes: {c}   nodes: {len(hierarchy.nodes)}   tree height: {hierarchy.height}",
        f"class depth: min {depths.min()}, mean {depths.mean():.2f}, max {depths.max()}",
        f"branching (tree view, internal nodes): mean {np.mean(kids):.2f}, max {max(kids)}",
        f"nodes with several parents (graph view): {multi}",
    ]
    if space is not None:
        label = display_names(hierarchy)
        sizes = space.sizes
        lines.append(f"label space: {space.num_groups} groups, sizes min {sizes.min()}, "
                     f"mean {sizes.mean():.1f}, max {sizes.max()}")
        width = max(len(label.get(n, n)) for n in space.names)
        lines += [f"  {label.get(n, n):<{width}}  {s}" for n, s in zip(space.names, sizes,
                                                                       strict=True)]
    return "\n".join(lines)


__all__ = ["display_names", "render_stats", "render_tree"]
