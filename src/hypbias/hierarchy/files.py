"""Hierarchy files: JSON and YAML.

Accepted layouts (the same in both formats):

* a nested dict, ``{"animal": {"cat": null, "dog": ["poodle", "husky"]}}`` (see
  :meth:`Hierarchy.from_nested`);
* ``{"classes": [...], "parents": {"cat": "animal", "animal": null}}``, parents as a name or a list;
* ``{"classes": [...], "edges": [["cat", "animal"], ...]}`` (``classes`` optional).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hypbias.errors import HierarchyError
from hypbias.hierarchy.tree import Hierarchy


def read_hierarchy(path: str | Path, classes: Sequence[str] | None = None) -> Hierarchy:
    """Read a hierarchy file; ``classes`` overrides the class order stored in the file."""
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise HierarchyError(f"{src}: no such hierarchy file")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise HierarchyError(f"{src}: unknown hierarchy format {suffix!r} (use .json, .yaml or .yml)")
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0]
        raise HierarchyError(f"{src}: cannot parse: {first}") from None
    return hierarchy_from_data(data, classes, source=src)


def hierarchy_from_data(data: Any, classes: Sequence[str] | None, *, source: str) -> Hierarchy:
    """Dispatch a parsed document on its layout (see the module docstring)."""
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
    raise HierarchyError(f"{source}: expected a mapping or a list at the top level, got {type(data).__name__}")


def write_hierarchy(hierarchy: Hierarchy, path: str | Path) -> None:
    """Write ``{"classes", "parents"}`` JSON (atomically) that :func:`read_hierarchy` reads back."""
    from hypbias.io import atomic_write_text

    atomic_write_text(path, json.dumps(hierarchy.to_dict(), indent=1))
