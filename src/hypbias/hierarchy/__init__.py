"""Class hierarchies: the tree/graph structure and the sources it is read from.

Sources: hierarchy files (:func:`read_hierarchy`: JSON, YAML, CSV edges, Newick), WordNet 3.0
(:func:`wordnet`) and the ImageNet-1k class index shipped with hypbias
(:data:`IMAGENET_CLASS_INDEX`, :func:`load_class_index`), and hierarchies learned by clustering a
class distance (:func:`learn_hierarchy`, :mod:`hypbias.hierarchy.learned`). The paper's ImageNet
label spaces cut from WordNet live in :mod:`hypbias.labelspace`.
"""

from hypbias.hierarchy.class_index import IMAGENET_CLASS_INDEX, load_class_index
from hypbias.hierarchy.files import read_hierarchy, write_hierarchy
from hypbias.hierarchy.learned import (
    adjusted_rand_index,
    class_mean_distance,
    confusion_distance,
    learn_hierarchy,
    learned_cut,
)
from hypbias.hierarchy.tree import Hierarchy
from hypbias.hierarchy.wordnet import load_wordnet, synset_names, wordnet

__all__ = [
    "IMAGENET_CLASS_INDEX",
    "Hierarchy",
    "adjusted_rand_index",
    "class_mean_distance",
    "confusion_distance",
    "learn_hierarchy",
    "learned_cut",
    "load_class_index",
    "load_wordnet",
    "read_hierarchy",
    "synset_names",
    "wordnet",
    "write_hierarchy",
]
