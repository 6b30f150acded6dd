"""Hierarchy files: JSON, YAML, CSV edge lists and Newick trees; the format follows the extension.

JSON and YAML (``.json``, ``.yaml``, ``.yml``) accept, in either format:

* a nested dict, ``{"animal": {"cat": null, "dog": ["poodle", "husky"]}}`` (see
  :meth:`Hierarchy.from_nested`);
* ``{"classes": [...], "parents": {"cat": "animal", "animal": null}}``, parents as a name or a list;
* ``{"classes": [...], "edges": [["cat", "animal"], ...]}`` (``classes`` optional).

CSV (``.csv``): one ``child,parent`` edge per row, an optional ``child,parent`` header, blank lines
skipped. A child on several rows has several parents (graph view); the first row gives its tree
parent. Classes are the leaves in order of first appearance.

Newick (``.nwk``, ``.newick``): ``((cat,dog)carnivore,(car,bus)vehicle)root;``. Leaves are the
classes in reading order; internal nodes keep their names, unnamed ones are called ``_node1``,
``_node2``, ... in the order of their opening parentheses (skipping names the file uses). Branch
lengths (``:0.5``) and comments (``[...]``) are ignored; quoted names (``'a b'``, with ``''`` for a
quote) are read verbatim; underscores are kept as they are. One tree per file.

Errors name the file and, for CSV and Newick, the line:
``tree.nwk:3: expected ',' or ')', found ';'``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hypbias.errors import HierarchyError
from hypbias.hierarchy.tree import Hierarchy

FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".csv": "csv",
           ".nwk": "newick", ".newick": "newick"}
"""File extensions and the format each one selects."""


def _format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise HierarchyError(f"{path}: unknown hierarchy format {path.suffix!r} "
                             f"(use {', '.join(FORMATS)})")
    return fmt


def read_hierarchy(path: str | Path, classes: Sequence[str] | None = None) -> Hierarchy:
    """Read a hierarchy file; ``classes`` overrides the class order stored in the file."""
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise HierarchyError(f"{src}: no such hierarchy file")
    fmt = _format_of(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise HierarchyError(f"{src}: not UTF-8 text (byte {err.start})") from None
    if fmt == "csv":
        return Hierarchy.from_edges(parse_csv_edges(text, src), classes, source=src)
    if fmt == "newick":
        return Hierarchy.from_edges(parse_newick(text, src), classes, source=src)
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0]
        raise HierarchyError(f"{src}: cannot parse: {first}") from None
    return hierarchy_from_data(data, classes, source=src)


def hierarchy_from_data(data: Any, classes: Sequence[str] | None, *, source: str) -> Hierarchy:
    """Dispatch a parsed JSON/YAML document on its layout (see the module docstring)."""
    if isinstance(data, dict) and ("parents" in data or "edges" in data):
        order = classes if classes is not None else data.get("classes")
        if "parents" in data:
            if order is None:
                raise HierarchyError(f"{source}: a 'parents' layout needs a 'classes' list")
            return Hierarchy.from_parents(data["parents"], order, source=source)
        edges = data["edges"]
        if not isinstance(edges, list) or any(
            not isinstance(e, list | tuple) or len(e) != 2 for e in edges
        ):
            raise HierarchyError(f"{source}: 'edges' must be a list of [child, parent] pairs")
        return Hierarchy.from_edges([tuple(e) for e in edges], order, source=source)
    if isinstance(data, dict | list):
        return Hierarchy.from_nested(data, classes, source=source)
    raise HierarchyError(
        f"{source}: expected a mapping or a list at the top level, got {type(data).__name__}"
    )


# ---------------------------------------------------------------------- CSV
def parse_csv_edges(text: str, source: str) -> list[tuple[str, str]]:
    """``(child, parent)`` pairs of a CSV edge list (see the module docstring)."""
    edges: list[tuple[str, str]] = []
    reader = csv.reader(io.StringIO(text))
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            line = reader.line_num
            if len(cells) != 2:
                raise HierarchyError(f"{source}:{line}: expected 2 fields 'child,parent'; "
                                     f"got {len(cells)}: {','.join(cells)!r}")
            if not edges and [c.lower() for c in cells] == ["child", "parent"]:
                continue
            if not all(cells):
                raise HierarchyError(f"{source}:{line}: empty "
                                     f"{'child' if not cells[0] else 'parent'} name")
            if cells[0] == cells[1]:
                raise HierarchyError(f"{source}:{line}: {cells[0]!r} is its own parent")
            edges.append((cells[0], cells[1]))
    except csv.Error as err:
        raise HierarchyError(f"{source}:{reader.line_num}: {err}") from None
    if not edges:
        raise HierarchyError(f"{source}: no child,parent edges")
    return edges


# ---------------------------------------------------------------------- Newick
_TOKEN = re.compile(r"\s+|\[[^\]]*\]|'(?:[^']|'')*'|[(),:;]|[^\s()\[\]',:;]+")


@dataclass
class _Node:
    name: str | None
    line: int
    children: list[_Node] = field(default_factory=list)


def _newick_tokens(text: str, source: str) -> list[tuple[str, int]]:
    """Tokens of a Newick text with their line numbers; whitespace and comments dropped."""
    tokens, pos, line = [], 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            what = "comment" if text[pos] == "[" else "quoted name" if text[pos] == "'" else "text"
            raise HierarchyError(f"{source}:{line}: unterminated {what}")
        tok = m.group()
        if not tok[0].isspace() and tok[0] != "[":
            tokens.append((tok, line))
        line += tok.count("\n")
        pos = m.end()
    return tokens


def parse_newick(text: str, source: str) -> list[tuple[str, str]]:
    """``(child, parent)`` pairs of a Newick tree, parents before their descendants' edges."""
    tokens = _newick_tokens(text, source)
    k = 0

    def peek() -> tuple[str, int]:
        return tokens[k] if k < len(tokens) else ("end of file", tokens[-1][1] if tokens else 1)

    def fail(expected: str) -> HierarchyError:
        tok, line = peek()
        return HierarchyError(f"{source}:{line}: expected {expected}, found {tok!r}")

    def label() -> str | None:
        """An optional name, then an optional ':length'."""
        nonlocal k
        name = None
        tok, _ = peek()
        if tok not in "(),:;" and tok != "end of file":
            name = tok[1:-1].replace("''", "'") if tok.startswith("'") else tok
            k += 1
        if peek()[0] == ":":
            k += 1
            if peek()[0] in "(),:;" or peek()[0] == "end of file":
                raise fail("a branch length after ':'")
            k += 1
        return name

    # explicit stack of open '(' groups so that deep trees need no recursion
    stack: list[_Node] = []
    root: _Node | None = None
    while root is None:
        tok, line = peek()
        if tok == "(":
            k += 1
            stack.append(_Node(None, line))
            continue
        if not stack:
            raise fail("'(' to open the tree")
        if tok in "),;" or tok == "end of file":
            raise fail("a name or '('")
        stack[-1].children.append(_Node(label(), line))
        while True:  # close every group that ends here
            tok, _ = peek()
            if tok == ",":
                k += 1
                break
            if tok != ")":
                raise fail("',' or ')'")
            k += 1
            node = stack.pop()
            node.name = label()
            if not stack:
                root = node
                break
            stack[-1].children.append(node)
    if peek()[0] != ";":
        raise fail("';' after the tree")
    k += 1
    if k < len(tokens):
        raise fail("nothing after ';' (one tree per file)")
    return _newick_edges(root, source)


def _newick_edges(root: _Node, source: str) -> list[tuple[str, str]]:
    names: dict[str, int] = {}
    order = []
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(node.children))
    for node in order:
        if node.name is None and not node.children:
            raise HierarchyError(f"{source}:{node.line}: a leaf without a name")
        if node.name is not None:
            if node.name in names:
                raise HierarchyError(f"{source}:{node.line}: duplicate name {node.name!r} "
                                     f"(first on line {names[node.name]})")
            names[node.name] = node.line
    counter = 0
    for node in order:
        while node.name is None:
            counter += 1
            if f"_node{counter}" not in names:
                node.name = f"_node{counter}"
    return [(child.name, node.name) for node in order for child in node.children]  # type: ignore[misc]


# ---------------------------------------------------------------------- writing
def write_hierarchy(hierarchy: Hierarchy, path: str | Path) -> None:
    """Write a hierarchy file (atomically) that :func:`read_hierarchy` reads back.

    The format follows the extension: JSON/YAML hold ``{"classes", "parents"}`` (both views);
    CSV holds every graph edge, tree parent first (both views); Newick holds the tree view only.
    """
    from hypbias.io import atomic_write_text

    path = Path(path)
    fmt = _format_of(path)
    if fmt == "json":
        text = json.dumps(hierarchy.to_dict(), indent=1)
    elif fmt == "yaml":
        text = yaml.safe_dump(hierarchy.to_dict(), sort_keys=False)
    elif fmt == "csv":
        text = hierarchy_to_csv(hierarchy)
    else:
        text = hierarchy_to_newick(hierarchy) + "\n"
    atomic_write_text(path, text)


def hierarchy_to_csv(hierarchy: Hierarchy) -> str:
    """``child,parent`` rows with a header: every graph edge, classes first, tree parent first."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["child", "parent"])
    for node in hierarchy.nodes:
        for parent in hierarchy.parents(node):
            writer.writerow([node, parent])
    return buf.getvalue()


_PLAIN_NAME = re.compile(r"[^\s()\[\]',:;]+")


def _newick_name(name: str) -> str:
    if _PLAIN_NAME.fullmatch(name):
        return name
    return "'" + name.replace("'", "''") + "'"


def hierarchy_to_newick(hierarchy: Hierarchy) -> str:
    """The tree view as one Newick string ending in ``;``. Shape of the output: ``(...)root;``."""
    out: dict[str, str] = {}
    # children before parents: reverse of a pre-order traversal of the tree view
    order, stack = [], [hierarchy.name(hierarchy.root)]
    while stack:
        node = stack.pop()
        order.append(node)
        # internal nodes with no class below them in the tree view (a graph-only hypernym) are
        # left out: they would read back as classes
        stack.extend(k for k in hierarchy.children(node) if hierarchy.leaves(k).size)
    for node in reversed(order):
        kids = [k for k in hierarchy.children(node) if k in out]
        inner = "(" + ",".join(out.pop(k) for k in kids) + ")" if kids else ""
        out[node] = inner + _newick_name(node)
    return out[order[0]] + ";"
