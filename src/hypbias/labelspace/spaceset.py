"""The label spaces of an experiment: its hypernym spaces S_n and their random draws R_n.

Naming (DESIGN.md §4): ``H`` the fine space; ``S<n>`` the hypernym space with n groups (a space the
dataset defines keeps its own name); ``R<n>#<k>`` the k-th random isomorphic draw of ``S<n>``; ``R<n>``
the mean over the draws.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hypbias.hierarchy.tree import Hierarchy
from hypbias.labelspace.space import LabelSpace

FINE = "H"
"""The name of the fine space."""

_RANDOM = re.compile(r"^R(\d+|\[.*\])$")


def random_name(hypernym: str) -> str:
    """The name of the random counterparts of a hypernym space: ``S4`` -> ``R4``, ``x`` -> ``R[x]``."""
    return "R" + hypernym[1:] if hypernym[:1] == "S" and hypernym[1:].isdigit() else f"R[{hypernym}]"


def hypernym_of(random: str) -> str:
    """Inverse of :func:`random_name`: ``R4`` -> ``S4``, ``R[x]`` -> ``x`` (a draw ``R4#3`` -> ``S4``)."""
    family = random.split("#")[0]
    return family[2:-1] if family.startswith("R[") else "S" + family[1:]


def is_random_space(name: str) -> bool:
    """Whether a space name is a random draw (``R4#3``) or the mean over draws (``R4``)."""
    return "#" in name or bool(_RANDOM.match(name))


def space_order(names: Sequence[str], *, random: bool = True) -> list[str]:
    """Distinct names in display order: H, the hypernym spaces, then (unless ``random=False``) the
    random spaces, each group in its given order."""
    names = list(dict.fromkeys(names))
    hyper = [n for n in names if n != FINE and not is_random_space(n)]
    rand = [n for n in names if is_random_space(n)] if random else []
    return [FINE] * (FINE in names) + hyper + rand


@dataclass
class SpaceSet:
    """The label spaces of an experiment.

    Attributes
    ----------
    hypernyms : dict name -> LabelSpace, the S spaces in the configured order.
    randoms : dict S-name -> list of (R-name, LabelSpace), its random isomorphic draws.
    """

    hypernyms: dict[str, LabelSpace] = field(default_factory=dict)
    randoms: dict[str, list[tuple[str, LabelSpace]]] = field(default_factory=dict)

    @staticmethod
    def random_name(hypernym: str) -> str:
        """See :func:`random_name`."""
        return random_name(hypernym)

    def all(self) -> dict[str, LabelSpace]:
        """Every space by name (hypernyms, then every random draw)."""
        out = dict(self.hypernyms)
        for draws in self.randoms.values():
            out.update(dict(draws))
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Name -> assignment array ``t``, for ``spaces.npz``."""
        return {name: space.t for name, space in self.all().items()}

    def layout(self) -> dict[str, list[str]]:
        """Hypernym name -> names of its random draws (the order matters), for ``spaces.json``."""
        return {name: [r for r, _ in self.randoms.get(name, [])] for name in self.hypernyms}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], layout: Mapping[str, list[str]]) -> SpaceSet:
        """Inverse of :meth:`to_arrays` and :meth:`layout`."""
        out = cls()
        for name, draws in layout.items():
            out.hypernyms[name] = LabelSpace(arrays[name])
            out.randoms[name] = [(r, LabelSpace(arrays[r])) for r in draws]
        return out


def build_spaces(hierarchy: Hierarchy, specs: Sequence[Any], random_draws: int, seed: int,
                 named: Mapping[str, LabelSpace] | None = None) -> SpaceSet:
    """Resolve the configured hypernym spaces and draw their random isomorphic counterparts.

    Parameters
    ----------
    hierarchy : the class hierarchy.
    specs : each an int n (``Hierarchy.superclasses(n=n)``), a string ``"level:k"``, or the name of a
        space in ``named``.
    random_draws : random isomorphic draws per hypernym space.
    seed : draw k of the i-th space uses seed ``seed + 1000 * i + k``.
    named : spaces defined by the dataset (e.g. CIFAR-100's ``S20``).
    """
    named = dict(named or {})
    out = SpaceSet()
    for spec in specs:
        if isinstance(spec, bool) or not isinstance(spec, int | str):
            raise ValueError(
                f"spaces.hypernyms: entries must be ints, 'level:k' or space names. Got {spec!r}."
            )
        if isinstance(spec, int):
            space = LabelSpace.from_hierarchy(hierarchy, n=spec)
            name = f"S{space.num_groups}"
        elif spec.startswith("level:"):
            space = LabelSpace.from_hierarchy(hierarchy, level=int(spec.partition(":")[2]))
            name = f"S{space.num_groups}"
        elif spec in named:
            space, name = named[spec], spec
        else:
            known = ", ".join(sorted(named)) or "none"
            raise ValueError(
                f"spaces.hypernyms: unknown space {spec!r} (the dataset defines: {known}; "
                "or use an int n or 'level:k')"
            )
        if name in out.hypernyms:
            continue
        out.hypernyms[name] = space
    for i, (name, space) in enumerate(out.hypernyms.items()):
        rname = out.random_name(name)
        out.randoms[name] = [(f"{rname}#{k}", space.random_isomorphic(seed + 1000 * i + k))
                             for k in range(random_draws)]
    return out


__all__ = ["FINE", "SpaceSet", "build_spaces", "hypernym_of", "is_random_space", "random_name",
           "space_order"]
