"""Class hierarchies: the tree/graph structure and the sources it is read from.

Sources: hierarchy files (:func:`read_hierarchy`: JSON, YAML, CSV edges, Newick), WordNet 3.0
(:func:`wordnet`), and the paper's ImageNet label spaces cut from it (:func:`imagenet_label_space`).
"""

from hypbias.hierarchy.tree import Hierarchy  # noqa: I001  (first: the modules below import it)
from hypbias.hierarchy.files import read_hierarchy, write_hierarchy
from hypbias.hierarchy.imagenet import (
    IMAGENET_CLASS_INDEX,
    imagenet_group_sizes,
    imagenet_label_space,
    load_class_index,
)
from hypbias.hierarchy.wordnet import load_wordnet, synset_names, wordnet

__all__ = [
    "IMAGENET_CLASS_INDEX",
    "Hierarchy",
    "imagenet_group_sizes",
    "imagenet_label_space",
    "load_class_index",
    "load_wordnet",
    "read_hierarchy",
    "synset_names",
    "wordnet",
    "write_hierarchy",
]
