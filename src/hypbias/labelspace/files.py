"""Choosing a label space of a hierarchy by cut or by name, and writing it to a file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path

from hypbias.errors import ConfigError, HierarchyError
from hypbias.hierarchy.tree import Hierarchy
from hypbias.io import atomic_write_text
from hypbias.labelspace.space import LabelSpace


def select_space(hierarchy: Hierarchy, spaces: Mapping[str, LabelSpace], *,
                 level: int | None = None, n: int | None = None,
                 name: str | None = None) -> LabelSpace | None:
    """The space cut at tree depth ``level``, of ``n`` superclasses, or named ``name`` among
    ``spaces`` (at most one of the three); None when none is asked for."""
    try:
        if level is not None:
            return LabelSpace.from_hierarchy(hierarchy, level=level)
        if n is not None:
            return LabelSpace.from_hierarchy(hierarchy, n=n)
    except ValueError as err:
        raise HierarchyError(str(err)) from None
    if name is None:
        return None
    if name not in spaces:
        raise ConfigError(f"--space {name!r}: this source defines {', '.join(spaces) or 'none'}")
    return spaces[name]


def write_space(hierarchy: Hierarchy, space: LabelSpace, out: Path) -> None:
    """A label space as ``class,group`` CSV rows or a JSON ``{"class": "group"}`` mapping."""
    pairs = [(c, space.names[g]) for c, g in zip(hierarchy.classes, space.t, strict=True)]
    suffix = out.suffix.lower()
    if suffix == ".json":
        atomic_write_text(out, json.dumps(dict(pairs), indent=1))
    elif suffix == ".csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([("class", "group"), *pairs])
        atomic_write_text(out, buf.getvalue())
    else:
        raise ConfigError(f"{out}: a label space is exported as .json or .csv; got {suffix!r}")


__all__ = ["select_space", "write_space"]
