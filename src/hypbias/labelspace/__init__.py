"""Label spaces: maps T: H -> X from the C fine classes to groups (DESIGN.md §2).

* :class:`LabelSpace`: one map, given as an integer array ``t`` of length C;
* :class:`SpaceSet` and :func:`build_spaces`: an experiment's hypernym spaces S_n and their random
  isomorphic draws R_n;
* :func:`imagenet_label_space`: the paper's named ImageNet spaces (App. B.2), cut from WordNet.
"""

from hypbias.labelspace.imagenet import (
    SPACE_NAMES as IMAGENET_SPACE_NAMES,
)
from hypbias.labelspace.imagenet import (
    imagenet_group_sizes,
    imagenet_label_space,
    wordnet_spaces,
)
from hypbias.labelspace.space import LabelSpace
from hypbias.labelspace.spaceset import (
    FINE,
    SpaceSet,
    build_spaces,
    hypernym_of,
    is_random_space,
    random_name,
    space_order,
)

__all__ = [
    "FINE",
    "IMAGENET_SPACE_NAMES",
    "LabelSpace",
    "SpaceSet",
    "build_spaces",
    "hypernym_of",
    "imagenet_group_sizes",
    "imagenet_label_space",
    "is_random_space",
    "random_name",
    "space_order",
    "wordnet_spaces",
]
