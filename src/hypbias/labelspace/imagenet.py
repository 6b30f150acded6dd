"""The paper's ImageNet label spaces (App. B.2), cut from a WordNet hierarchy.

Every space but ``imagenet_level6`` is a list of named groups of WordNet synsets. A group *claims*
a class when one of its ``include`` synsets is the class or one of its ancestors in the graph view
(hypernym and instance-hypernym pointers) and none of its ``exclude`` synsets is; a class goes to
the first group that claims it. Working on the graph rather than on one tree makes the groups
independent of the tree rule, and lets a group follow the paper's tree where WordNet files a
synset under two parents (dogs under *domestic animal*, game birds apart from the chordates).

On the 1000 ILSVRC-2012 classes and WordNet 3.0 this gives the paper's sizes exactly:

* ``imagenet_s3``: misc 80 / artifacts 522 / animals 398 (the S3 of Sec. 4.1).
* ``imagenet_top9``: the nine top-level synsets of the paper's tree, plant 2, geological
  formation 10, natural object 16, sport 0, fungus 7, person 3, misc 42, artifacts 522,
  animals 398. ``sandbar`` (n09421951) lies under both geological formation and natural object in
  WordNet (bar → ridge → natural elevation, and bar → barrier → mechanism); the paper's tree files
  it under geological formation, which comes first here.
* ``imagenet_s7``: chordates 207, domestic animals 123, other animals 68 (invertebrates 61 and
  game birds 7); instrumentality 358, covering 85 (the 5 classes that are both go to
  instrumentality), other artifacts 79 (commodity, decoration, ...); misc 80.
* ``imagenet_animals18``: the animals in 18 groups averaging 22 classes, as App. B.2 describes
  ("domestic cat", "reptile", "terrier", ...). The paper does not list its 18 groups; ours refine
  the three animal groups of S7: six of domestic animals (terrier 26, hound 19, sporting dog 17,
  working dog 30, other dogs 26, domestic cat 5), eight of chordates (wild carnivores 35,
  primates 20, ungulates 17, other mammals 23, aquatic birds 24, other birds 28, reptiles 36,
  fish and amphibians 24) and four of other animals (game birds 7, insects 27, other arthropods
  20, other invertebrates 14). Classes that are not animals form a 19th group, ``not animals``,
  which disappears when the dataset holds animals only (the setting of the paper's Table 3).
* ``imagenet_level6``: the unbalanced cut at one level of the WordNet tree (App. C.1.3, Table 4):
  the nodes at depth 6 of the tree view of :func:`hypbias.hierarchy.wordnet.wordnet` (entity is at
  depth 0, animal at depth 6). This gives 76 groups where the paper reports 72: the paper cuts
  Russakovsky et al.'s ImageNet tree, which files some synsets under other parents than our
  longest-chain rule does, and no level of a tree derived from WordNet 3.0 alone gives 72 (depths
  5, 6 and 7 give 32, 76 and 193 groups). Its largest groups are animal 398, device 122 and
  conveyance 72.

A group that holds no class is dropped from the :class:`LabelSpace` (which has no empty groups);
:func:`imagenet_group_sizes` reports every group, empty ones included (``sport`` has 0 classes,
so ``imagenet_top9`` has 8 groups on ImageNet-1k).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hypbias._validation import check_choice
from hypbias.errors import HierarchyError
from hypbias.hierarchy.tree import Hierarchy
from hypbias.labelspace.space import LabelSpace

ENTITY = "n00001740"
ANIMAL = "n00015388"
ARTIFACT = "n00021939"
TOP_LEVEL = {
    "plant": "n00017222",
    "geological formation": "n09287968",
    "natural object": "n00019128",
    "sport": "n00523513",
    "fungus": "n12992868",
    "person": "n00007846",
}
"""The top-level synsets of the paper's tree other than artifact and animal (App. B.2)."""

LEVEL_CUT_DEPTH = 6
"""Depth of the tree view cut by ``imagenet_level6``."""


@dataclass(frozen=True)
class Group:
    """A named group of classes: those under an ``include`` synset and under no ``exclude`` one."""

    name: str
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()


_S7 = (
    # chordates less the domestic animals and game birds, which the paper's tree files elsewhere
    Group("chordates", ("n01466257",), ("n01317541", "n02153203")),
    Group("domestic animals", ("n01317541",)),
    Group("other animals", (ANIMAL,)),
    Group("instrumentality", ("n03575240",)),
    Group("covering", ("n03122748",)),
    Group("other artifacts", (ARTIFACT,)),
    Group("misc", (ENTITY,)),
)

_ANIMALS18 = (
    Group("terrier", ("n02092468",)),
    Group("hound", ("n02087551",)),
    Group("sporting dog", ("n02098550",)),
    Group("working dog", ("n02103406",)),
    Group("other dogs", ("n02084071",)),
    Group("domestic cat", ("n02121808",)),
    Group("wild carnivores", ("n02075296",)),
    Group("primates", ("n02469914",)),
    Group("ungulates", ("n02370806",)),
    Group("other mammals", ("n01861778",)),
    Group("aquatic birds", ("n01844917",)),
    Group("other birds", ("n01503061",), ("n02153203",)),
    Group("reptiles", ("n01661091",)),
    Group("fish and amphibians", ("n02512053", "n01627424")),
    Group("game birds", ("n02153203",)),
    Group("insects", ("n02159955",)),
    Group("other arthropods", ("n01767661",)),
    Group("other invertebrates", ("n01905661",)),
    Group("not animals", (ENTITY,), (ANIMAL,)),
)

SPACES: dict[str, tuple[Group, ...]] = {
    "imagenet_s3": (
        Group("misc", (ENTITY,), (ARTIFACT, ANIMAL)),
        Group("artifacts", (ARTIFACT,)),
        Group("animals", (ANIMAL,)),
    ),
    "imagenet_top9": (
        *(Group(name, (wnid,)) for name, wnid in TOP_LEVEL.items()),
        Group("misc", (ENTITY,), (*TOP_LEVEL.values(), ARTIFACT, ANIMAL)),
        Group("artifacts", (ARTIFACT,)),
        Group("animals", (ANIMAL,)),
    ),
    "imagenet_s7": _S7,
    "imagenet_animals18": _ANIMALS18,
}
"""The group lists of the named spaces (first claiming group wins)."""

SPACE_NAMES = (*SPACES, "imagenet_level6")
"""Every name :func:`imagenet_label_space` accepts."""


def _require_wordnet(hierarchy: Hierarchy) -> None:
    if ENTITY not in hierarchy.nodes:
        raise HierarchyError(
            f"{hierarchy.source}: the ImageNet label spaces need a WordNet hierarchy whose nodes "
            f"are wnids (see hypbias.hierarchy.wordnet); entity {ENTITY} is not a node"
        )


def _assign(hierarchy: Hierarchy, groups: tuple[Group, ...]) -> np.ndarray:
    """Index of the first group claiming each class, array of shape (C,)."""
    t = np.empty(hierarchy.num_classes, dtype=np.int64)
    for c, name in enumerate(hierarchy.classes):
        above = {name, *hierarchy.ancestors(c, view="graph")}
        t[c] = next(g for g, group in enumerate(groups)
                    if above.intersection(group.include) and not above.intersection(group.exclude))
    return t


def imagenet_group_sizes(hierarchy: Hierarchy, name: str) -> dict[str, int]:
    """Classes per group of a named space, empty groups included, in the space's group order."""
    check_choice(name, "name", "imagenet_group_sizes", SPACE_NAMES)
    _require_wordnet(hierarchy)
    if name == "imagenet_level6":
        space = imagenet_label_space(hierarchy, name)
        return dict(zip(space.names, space.sizes.tolist(), strict=True))
    groups = SPACES[name]
    sizes = np.bincount(_assign(hierarchy, groups), minlength=len(groups))
    return {group.name: int(n) for group, n in zip(groups, sizes, strict=True)}


def imagenet_label_space(hierarchy: Hierarchy, name: str) -> LabelSpace:
    """One of the paper's ImageNet label spaces (see the module docstring for each derivation).

    Parameters
    ----------
    hierarchy : a WordNet hierarchy (:func:`hypbias.hierarchy.wordnet.wordnet`) over any wnids.
    name : one of ``imagenet_s3``, ``imagenet_top9``, ``imagenet_s7``, ``imagenet_animals18``,
        ``imagenet_level6``.

    Returns
    -------
    LabelSpace over the hierarchy's classes; groups without classes are dropped. Group names are
    readable names for the hand-made spaces and wnids for ``imagenet_level6``.
    """
    check_choice(name, "name", "imagenet_label_space", SPACE_NAMES)
    _require_wordnet(hierarchy)
    if name == "imagenet_level6":
        return LabelSpace.from_hierarchy(hierarchy, level=LEVEL_CUT_DEPTH)
    groups = SPACES[name]
    t = _assign(hierarchy, groups)
    used = np.unique(t)
    renumber = np.full(len(groups), -1, dtype=np.int64)
    renumber[used] = np.arange(len(used))
    return LabelSpace(renumber[t], names=[groups[g].name for g in used])


def wordnet_spaces(hierarchy: Hierarchy) -> dict[str, LabelSpace]:
    """The paper's ImageNet spaces that have at least two groups on these classes."""
    spaces = {name: imagenet_label_space(hierarchy, name) for name in SPACE_NAMES}
    return {name: space for name, space in spaces.items() if space.num_groups >= 2}
