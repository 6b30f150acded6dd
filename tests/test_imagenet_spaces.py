"""The paper's ImageNet label spaces (App. B.2) against WordNet 3.0, and their assignment rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hypbias import Hierarchy, LabelSpace
from hypbias.errors import DataError, HierarchyError
from hypbias.hierarchy import IMAGENET_CLASS_INDEX, load_class_index, load_wordnet, wordnet
from hypbias.labelspace import imagenet_group_sizes, imagenet_label_space

DEBIAN = Path("/usr/share/wordnet/data.noun")
CLASS_INDEX = IMAGENET_CLASS_INDEX
needs_wordnet = pytest.mark.skipif(
    not DEBIAN.is_file(),
    reason="needs Debian's WordNet 3.0 (/usr/share/wordnet/data.noun: apt-get install "
           "wordnet-base)",
)
ANIMAL, ARTIFACT = "n00015388", "n00021939"


@pytest.fixture(scope="module")
def imagenet() -> Hierarchy:
    if not DEBIAN.is_file():
        pytest.skip("needs Debian's WordNet 3.0")
    return wordnet([wnid for wnid, _ in load_class_index(CLASS_INDEX)], source=DEBIAN)


def under(wnids: list[str], synset: str) -> np.ndarray:
    """Classes with ``synset`` in their hypernym closure, by a plain walk over the parsed synsets."""
    nouns = load_wordnet(DEBIAN)
    hits = []
    for w in wnids:
        seen, stack = set(), [w]
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(nouns.synset(node).hypernyms)
        hits.append(synset in seen)
    return np.array(hits)


# ---------------------------------------------------------------------- Debian's WordNet 3.0
@needs_wordnet
def test_s3_sizes_are_the_papers(imagenet):
    assert imagenet_group_sizes(imagenet, "imagenet_s3") == {
        "misc": 80, "artifacts": 522, "animals": 398}
    space = imagenet_label_space(imagenet, "imagenet_s3")
    animals, artifacts = under(imagenet.classes, ANIMAL), under(imagenet.classes, ARTIFACT)
    assert not (animals & artifacts).any()
    expected = np.where(animals, 2, np.where(artifacts, 1, 0))
    np.testing.assert_array_equal(space.t, expected)
    assert space.names == ["misc", "artifacts", "animals"]


@needs_wordnet
def test_nine_top_level_counts_are_the_papers(imagenet):
    sizes = imagenet_group_sizes(imagenet, "imagenet_top9")
    assert list(sizes.values()) == [2, 10, 16, 0, 7, 3, 42, 522, 398]
    assert list(sizes) == ["plant", "geological formation", "natural object", "sport", "fungus",
                           "person", "misc", "artifacts", "animals"]
    space = imagenet_label_space(imagenet, "imagenet_top9")
    assert "sport" not in space.names and space.num_groups == 8  # the empty group is dropped
    sandbar = imagenet.classes.index("n09421951")
    assert space.names[space.t[sandbar]] == "geological formation"
    # in the graph, natural object holds 17 (sandbar too), as the README of the class index says
    assert under(imagenet.classes, "n00019128").sum() == 17


@needs_wordnet
def test_s7_sizes_are_the_papers(imagenet):
    assert imagenet_group_sizes(imagenet, "imagenet_s7") == {
        "chordates": 207, "domestic animals": 123, "other animals": 68, "instrumentality": 358,
        "covering": 85, "other artifacts": 79, "misc": 80}
    s7, s3 = (imagenet_label_space(imagenet, n) for n in ("imagenet_s7", "imagenet_s3"))
    for g in range(s7.num_groups):  # S7 refines S3
        assert len(np.unique(s3.t[s7.members(g)])) == 1
    game_birds = under(imagenet.classes, "n02153203")
    assert game_birds.sum() == 7
    assert {s7.names[g] for g in s7.t[game_birds]} == {"other animals"}


@needs_wordnet
def test_animals18_refines_the_animal_groups_of_s7(imagenet):
    sizes = imagenet_group_sizes(imagenet, "imagenet_animals18")
    assert sizes.pop("not animals") == 602
    assert len(sizes) == 18 and sum(sizes.values()) == 398
    assert min(sizes.values()) >= 5 and round(398 / 18) == 22
    a18, s7 = (imagenet_label_space(imagenet, n) for n in ("imagenet_animals18", "imagenet_s7"))
    for g in range(a18.num_groups - 1):  # the last group is "not animals"
        assert len(np.unique(s7.t[a18.members(g)])) == 1
    animals = [c for c, a in zip(imagenet.classes, under(imagenet.classes, ANIMAL), strict=True)
               if a]
    only = imagenet_label_space(wordnet(animals, source=DEBIAN), "imagenet_animals18")
    assert only.num_groups == 18 and "not animals" not in only.names


@needs_wordnet
def test_level_cut_is_depth_six_of_the_tree(imagenet):
    space = imagenet_label_space(imagenet, "imagenet_level6")
    assert space == LabelSpace.from_hierarchy(imagenet, level=6)
    assert space.num_groups == 76  # the paper's tree gives 72; see hypbias.labelspace.imagenet
    for g, node in enumerate(space.names):
        assert imagenet.depth(node) == 6 or (imagenet.depth(node) < 6 and node in imagenet.classes)
        np.testing.assert_array_equal(space.members(g), imagenet.leaves(node))
    assert imagenet_group_sizes(imagenet, "imagenet_level6")[ANIMAL] == 398


# ---------------------------------------------------------------------- assignment rules
@pytest.fixture
def small_wordnet() -> Hierarchy:
    """Hand-made WordNet-like graph: a dog under both chordate and domestic animal, a game bird
    under game and bird, an instrumentality that is also a covering, and a plant."""
    parents = {
        "n00001740": [], "n00015388": ["n00001740"], "n00021939": ["n00001740"],
        "n00017222": ["n00001740"],
        "n01466257": ["n00015388"], "n01317541": ["n00015388"], "n02152991": ["n00015388"],
        "n01503061": ["n01466257"], "n02153203": ["n01503061", "n02152991"],
        "dog": ["n01466257", "n01317541"], "sparrow": ["n01503061"], "grouse": ["n02153203"],
        "n03575240": ["n00021939"], "n03122748": ["n00021939"],
        "armour": ["n03575240", "n03122748"], "roof": ["n03122748"], "vase": ["n00021939"],
        "tree": ["n00017222"],
    }
    classes = ["dog", "sparrow", "grouse", "armour", "roof", "vase", "tree"]
    return Hierarchy.from_parents(parents, classes)


def test_first_claiming_group_wins_and_excludes_apply(small_wordnet):
    s7 = imagenet_label_space(small_wordnet, "imagenet_s7")
    got = dict(zip(small_wordnet.classes, (s7.names[g] for g in s7.t), strict=True))
    assert got == {"dog": "domestic animals", "sparrow": "chordates", "grouse": "other animals",
                   "armour": "instrumentality", "roof": "covering", "vase": "other artifacts",
                   "tree": "misc"}
    s3 = imagenet_label_space(small_wordnet, "imagenet_s3")
    assert s3.sizes.tolist() == [1, 3, 3] and s3.names == ["misc", "artifacts", "animals"]


def test_empty_groups_are_dropped_but_reported(small_wordnet):
    sizes = imagenet_group_sizes(small_wordnet, "imagenet_top9")
    assert sizes == {"plant": 1, "geological formation": 0, "natural object": 0, "sport": 0,
                     "fungus": 0, "person": 0, "misc": 0, "artifacts": 3, "animals": 3}
    space = imagenet_label_space(small_wordnet, "imagenet_top9")
    assert space.names == ["plant", "artifacts", "animals"]
    assert space.t.tolist() == [2, 2, 2, 1, 1, 1, 0]


def test_errors(small_wordnet):
    with pytest.raises(ValueError, match=r"The 'name' parameter of imagenet_label_space must be "
                                         r"one of 'imagenet_s3', .* Got 's3' instead."):
        imagenet_label_space(small_wordnet, "s3")
    plain = Hierarchy.from_nested({"a": ["x", "y"]})
    with pytest.raises(HierarchyError, match=r"^nested: the ImageNet label spaces need a WordNet "
                                             r"hierarchy whose nodes are wnids"):
        imagenet_label_space(plain, "imagenet_s3")


# ---------------------------------------------------------------------- class index files
def test_class_index_round_trip(tmp_path):
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"1": ["n02", "b"], "0": ["n01", "a"]}))
    assert load_class_index(path) == [("n01", "a"), ("n02", "b")]


@pytest.mark.parametrize(("content", "message"), [
    ("[1, 2]", "a class index maps '<index>' to [wnid, name]; got a list"),
    ('{"0": ["n01", "a"], "2": ["n02", "b"]}', "index 1 is missing (indices must be 0..1)"),
    ('{"0": ["n01"]}', "entry 0 must be [wnid, name]; got ['n01']"),
    ('{"0": ', "not valid JSON: Expecting value (line 1)"),
])
def test_malformed_class_index(tmp_path, content, message):
    path = tmp_path / "index.json"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        load_class_index(path)
    assert str(err.value) == f"{path}: {message}"
