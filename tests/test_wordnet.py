"""WordNet: WNDB parsing by byte offset, graph and tree views, search order, errors.

The fabricated ``data.noun`` (tests/fabricate.py) runs everywhere; the tests marked with
``needs_wordnet`` compare against Debian's WordNet 3.0 and an independent full-file parse.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest

from fabricate import MINI_CLASSES, MINI_WORDNET, write_wndb
from hypbias.errors import HierarchyError
from hypbias.hierarchy import IMAGENET_CLASS_INDEX
from hypbias.hierarchy.wordnet import (
    find_data_noun,
    load_wordnet,
    synset_names,
    tree_parent_order,
    wordnet,
)

DEBIAN = Path("/usr/share/wordnet/data.noun")
CLASS_INDEX = IMAGENET_CLASS_INDEX
wn_module = importlib.import_module("hypbias.hierarchy.wordnet")  # the package's `wordnet` is the
# function of that name
needs_wordnet = pytest.mark.skipif(
    not DEBIAN.is_file(),
    reason="needs Debian's WordNet 3.0 (/usr/share/wordnet/data.noun: apt-get install "
           "wordnet-base)",
)


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    return write_wndb(tmp_path_factory.mktemp("wordnet"))


def reference_parse(path: Path) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every synset of a data.noun, read line by line: {wnid: (lemmas, @/@i hypernym wnids)}."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            f = line.split(" | ")[0].split()
            n = int(f[3], 16)
            words = tuple(f[4:4 + 2 * n:2])
            k = 4 + 2 * n
            ptrs = [f[k + 1 + 4 * j:k + 5 + 4 * j] for j in range(int(f[k]))]
            out["n" + f[0]] = (words, tuple("n" + p[1] for p in ptrs if p[0] in ("@", "@i")))
    return out


def pointer_targets(pointers: tuple[str, ...]) -> list[str]:
    return [p[2:] if p.startswith("@i") else p[1:] for p in pointers]


# ---------------------------------------------------------------------- fabricated WordNet
def test_mini_synsets_match_the_written_entries(mini):
    nouns = load_wordnet(mini)
    assert nouns.path == mini.resolve()
    for wnid, (words, pointers) in MINI_WORDNET.items():
        syn = nouns.synset(wnid)
        assert syn.words == words
        assert list(syn.hypernyms) == pointer_targets(pointers)
    assert nouns.name("n09287968") == "geological formation"
    assert nouns.synset("n09472597").hypernyms == ("n09287968", "n09366317")  # '@' then '@i'


def test_graph_view_holds_every_pointer_among_the_ancestors(mini):
    h = wordnet(MINI_CLASSES, source=mini)
    assert h.classes == list(MINI_CLASSES)
    assert set(h.nodes) == set(MINI_WORDNET)
    for node in h.nodes:
        assert sorted(h.parents(node)) == sorted(pointer_targets(MINI_WORDNET[node][1]))
    assert h.name(h.root) == "n00001740"


def test_tree_view_takes_the_parent_with_the_longest_chain(mini):
    h = wordnet(MINI_CLASSES, source=mini)
    # bar: ridge (5 edges up to entity, listed first) vs barrier (6 edges): barrier wins
    assert h.ancestors("n09421951")[:2] == ["n09214060", "n09214581"]
    # volcano: geological formation (3) vs the instance pointer natural elevation (4)
    assert h.ancestors("n09472597")[0] == "n09366317"
    # dog: mammal (depth 8) before domestic animal (depth 7)
    assert h.ancestors("n02084071")[0] == "n01861778"
    assert "n09287968" in h.ancestors("n09421951", view="graph")


def test_tree_rule_breaks_ties_by_pointer_order():
    parents = {"root": (), "a": ("root",), "b": ("root",), "x": ("b", "a"), "y": ("a", "b")}
    order = tree_parent_order(parents)
    assert order["x"] == ("b", "a")
    assert order["y"] == ("a", "b")
    deeper = {**parents, "c": ("a",), "z": ("b", "c")}
    assert tree_parent_order(deeper)["z"] == ("c", "b")


def test_readable_names(mini):
    names = synset_names(["n02084071", "n00001740", "not-a-wnid"], source=mini)
    assert names == {"n02084071": "dog", "n00001740": "entity"}


@pytest.mark.parametrize("wnid", ["n99999999", "n00001741", "x00001740", "n0001740", 17])
def test_unknown_wnid_is_a_one_line_error(mini, wnid):
    with pytest.raises(HierarchyError) as err:
        wordnet([wnid], source=mini)
    msg = str(err.value)
    assert msg == (f"{mini.resolve()}: {wnid!r} is not a WordNet noun synset (a wnid is 'n' "
                   "followed by the 8-digit offset of a line of data.noun)")


def test_a_class_under_another_class_is_refused(mini):
    with pytest.raises(HierarchyError, match=r"class n01861778 \(mammal\) is a hypernym of class "
                                             r"n02084071 \(dog\); classes must be leaves"):
        wordnet(["n02084071", "n01861778"], source=mini)


def test_malformed_line_is_reported_with_its_offset(tmp_path):
    path = write_wndb(tmp_path, {"n00000100": (("entity",), ())})
    data = path.read_bytes().replace(b" 000 |", b" 0x1 |")
    path.write_bytes(data)
    with pytest.raises(HierarchyError, match=r"malformed synset line at byte offset 100"):
        wordnet(["n00000100"], source=path)


def test_file_is_read_once_and_again_after_a_change(tmp_path):
    path = write_wndb(tmp_path, {"n00000100": (("entity",), ())})
    first = load_wordnet(tmp_path)
    assert load_wordnet(path) is first
    path.write_bytes(path.read_bytes().replace(b"entity", b"entitx"))
    os.utime(path, ns=(1, 1))
    assert load_wordnet(path).name("n00000100") == "entitx"


# ---------------------------------------------------------------------- where WordNet is found
def test_search_order_source_env_then_nltk(tmp_path, monkeypatch):
    env_dir, nltk_root = tmp_path / "env", tmp_path / "nltk"
    write_wndb(env_dir, {"n00000100": (("entity",), ())})
    write_wndb(nltk_root / "corpora" / "wordnet", {"n00000100": (("entity",), ())})
    monkeypatch.setenv("NLTK_DATA", str(nltk_root))
    monkeypatch.delenv("WORDNET_DIR", raising=False)
    assert find_data_noun() == nltk_root / "corpora" / "wordnet" / "data.noun"
    monkeypatch.setenv("WORDNET_DIR", str(env_dir))
    assert find_data_noun() == env_dir / "data.noun"
    assert find_data_noun(nltk_root / "corpora" / "wordnet") == \
        nltk_root / "corpora" / "wordnet" / "data.noun"


def test_missing_wordnet_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(wn_module, "wordnet_search_dirs", lambda: [tmp_path])
    with pytest.raises(HierarchyError) as err:
        wordnet(["n00001740"])
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("WordNet 3.0 not found")
    for hint in ("apt-get install wordnet-base", "nltk.download('wordnet')", "WORDNET_DIR"):
        assert hint in msg
    with pytest.raises(HierarchyError, match=r"nowhere: no WordNet data.noun there; install WordNet 3.0"):
        wordnet(["n00001740"], source=tmp_path / "nowhere")


# ---------------------------------------------------------------------- Debian's WordNet 3.0
@needs_wordnet
def test_imagenet_synsets_match_an_independent_full_parse():
    wnids = [v[0] for v in json.loads(CLASS_INDEX.read_text()).values()]
    reference = reference_parse(DEBIAN)
    h = wordnet(wnids, source=DEBIAN)
    assert h.num_classes == 1000
    for node in h.nodes:
        words, hypernyms = reference[node]
        assert load_wordnet(DEBIAN).synset(node).words == words
        assert sorted(h.parents(node)) == sorted(hypernyms)
    # the graph view is the whole upward closure: every reachable synset is a node
    closure, stack = set(), list(wnids)
    while stack:
        node = stack.pop()
        if node not in closure:
            closure.add(node)
            stack.extend(reference[node][1])
    assert set(h.nodes) == closure


@needs_wordnet
def test_debian_sandbar_routes():
    h = wordnet(["n09421951", "n01440764"], source=DEBIAN)
    graph = h.ancestors("n09421951", view="graph")
    assert "n09287968" in graph and "n00019128" in graph  # geological formation, natural object
    tree = h.ancestors("n09421951")
    assert "n00019128" in tree and "n09287968" not in tree
