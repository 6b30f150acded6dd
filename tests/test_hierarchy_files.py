"""Hierarchy files: CSV edge lists and Newick trees, round trips in every format, one-line errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypbias import Hierarchy
from hypbias.errors import HierarchyError
from hypbias.hierarchy import read_hierarchy, write_hierarchy
from hypbias.hierarchy.files import hierarchy_to_newick, parse_newick


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------- CSV
def test_csv_edges_with_and_without_header(tmp_path):
    body = "cat,carnivore\ndog,carnivore\n\ncarnivore,animal\nbus, vehicle\nvehicle,thing\n" \
           "animal,thing\n"
    for text in (body, "child,parent\n" + body, "Child,Parent\r\n" + body.replace("\n", "\r\n")):
        h = read_hierarchy(write(tmp_path, "h.csv", text))
        assert h.classes == ["cat", "dog", "bus"]
        assert h.parents("bus") == ["vehicle"]
        assert h.ancestors("cat") == ["carnivore", "animal", "thing"]
        assert h.source == str(tmp_path / "h.csv")


def test_csv_several_parents_make_a_graph_node_first_row_is_the_tree_parent(tmp_path):
    h = read_hierarchy(write(tmp_path, "g.csv", "dog,canine\ndog,pet\ncat,pet\ncanine,animal\n"
                                                "pet,animal\n"))
    assert h.parents("dog") == ["canine", "pet"]
    assert h.ancestors("dog") == ["canine", "animal"]
    assert set(h.ancestors("dog", view="graph")) == {"canine", "pet", "animal"}


def test_csv_quoted_names(tmp_path):
    h = read_hierarchy(write(tmp_path, "q.csv", '"big, red bus",vehicle\ncar,vehicle\n'))
    assert h.classes == ["big, red bus", "car"]


@pytest.mark.parametrize(("text", "message"), [
    ("a,b\nb,c\nc,a\nx,a\n", "cycle in the hierarchy: "),
    ("child,parent\na,b\nc,d,e\n", ":3: expected 2 fields 'child,parent'; got 3: 'c,d,e'"),
    ("a,b\n,c\n", ":2: empty child name"),
    ("a,b\nc,\n", ":2: empty parent name"),
    ("a,a\n", ":1: 'a' is its own parent"),
    ("child,parent\n\n", ": no child,parent edges"),
])
def test_csv_errors_name_the_file_and_line(tmp_path, text, message):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(HierarchyError) as err:
        read_hierarchy(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}") and message in msg and "\n" not in msg


# ---------------------------------------------------------------------- Newick
def test_newick_names_lengths_comments_quotes(tmp_path):
    text = "(\n  (cat:0.5,dog:1e-3)carnivore:2 [a comment],\n  ('red bus','it''s':1)vehicle\n)root;\n"
    h = read_hierarchy(write(tmp_path, "t.nwk", text))
    assert h.classes == ["cat", "dog", "red bus", "it's"]
    assert h.name(h.root) == "root"
    assert h.parents("it's") == ["vehicle"] and h.parents("vehicle") == ["root"]


def test_newick_unnamed_internal_nodes_get_fresh_names():
    edges = parse_newick("((a,b),(c,_node1));", "x.nwk")
    # numbered by their opening parenthesis, skipping names already taken
    assert edges == [("_node3", "_node2"), ("_node4", "_node2"), ("a", "_node3"),
                     ("b", "_node3"), ("c", "_node4"), ("_node1", "_node4")]


@pytest.mark.parametrize(("text", "message"), [
    ("((a,b)c", ":1: expected ',' or ')', found 'end of file'"),
    ("(a,b)\n);", ":2: expected ';' after the tree, found ')'"),
    ("(a,,b);", ":1: expected a name or '(', found ','"),
    ("\n\n(a,b);c", ":3: expected nothing after ';' (one tree per file), found 'c'"),
    ("(a,b)x;\n(c,d)y;", ":2: expected nothing after ';'"),
    ("((a,b)x,\n(c,a)y);", ":2: duplicate name 'a' (first on line 1)"),
    ("(a:,b);", ":1: expected a branch length after ':', found ','"),
    ("(\n'a,b);", ":2: unterminated quoted name"),
    ("(a,b) [open", ":1: unterminated comment"),
    ("a;", ":1: expected '(' to open the tree, found 'a'"),
    ("(a,());", ":1: expected a name or '(', found ')'"),
])
def test_newick_errors_name_the_file_and_line(tmp_path, text, message):
    path = write(tmp_path, "bad.nwk", text)
    with pytest.raises(HierarchyError) as err:
        read_hierarchy(path)
    assert str(err.value).startswith(f"{path}{message}")


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(HierarchyError, match=r"h.txt: unknown hierarchy format '.txt' \(use .json"):
        read_hierarchy(write(tmp_path, "h.txt", "a,b\n"))
    with pytest.raises(HierarchyError, match=r"nope.csv: no such hierarchy file"):
        read_hierarchy(tmp_path / "nope.csv")


# ---------------------------------------------------------------------- round trips
@st.composite
def random_trees(draw) -> Hierarchy:
    """A random rooted tree: node k > 0 hangs under a random earlier node."""
    n = draw(st.integers(2, 25))
    parents = [None] + [draw(st.integers(0, k - 1)) for k in range(1, n)]
    has_child = {p for p in parents if p is not None}
    names = [f"n{k}" for k in range(n)]
    classes = [names[k] for k in range(n) if k not in has_child]
    return Hierarchy.from_parents(
        {names[k]: (None if p is None else names[p]) for k, p in enumerate(parents)}, classes)


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".csv", ".nwk"])
@given(tree=random_trees())
def test_round_trip_every_format(tmp_path_factory, suffix, tree):
    path = tmp_path_factory.mktemp("rt") / f"tree{suffix}"
    write_hierarchy(tree, path)
    back = read_hierarchy(path, classes=tree.classes)
    assert back.to_dict() == tree.to_dict()


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".csv"])
def test_graph_round_trip_keeps_every_parent_in_order(tmp_path, suffix):
    h = Hierarchy.from_parents({"dog": ["canine", "pet"], "cat": ["pet"], "canine": "animal",
                                "pet": "animal"}, ["dog", "cat"])
    write_hierarchy(h, tmp_path / f"g{suffix}")
    assert read_hierarchy(tmp_path / f"g{suffix}").to_dict() == h.to_dict()


def test_newick_writes_the_tree_view_without_graph_only_nodes():
    h = Hierarchy.from_parents({"dog": ["canine", "pet"], "cat": ["feline"], "canine": "animal",
                                "feline": "animal", "pet": "animal", "odd name": "animal"},
                               ["dog", "cat", "odd name"])
    assert hierarchy_to_newick(h) == "((dog)canine,(cat)feline,'odd name')animal;"
