"""Class hierarchies: the tree/graph structure and the sources it is read from."""

from hypbias.hierarchy.files import read_hierarchy, write_hierarchy
from hypbias.hierarchy.tree import Hierarchy

__all__ = ["Hierarchy", "read_hierarchy", "write_hierarchy"]
