"""Report sections, one module each in this folder, registered with :func:`register_section`.

A builder takes the run's :class:`RunContext` and returns a :class:`~hypbias.report.html.Section`,
or None when the run holds no data for it. :func:`build_sections` imports every module of the folder
first, so a new section is a new file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from hypbias._registry import import_submodules
from hypbias.labelspace.spaceset import SpaceSet
from hypbias.report.html import Section
from hypbias.rundir import RunDir


@dataclass
class RunContext:
    """A run directory opened for reporting."""

    run: RunDir

    @cached_property
    def metrics(self) -> pd.DataFrame:
        return self.run.metrics

    @property
    def spaces(self) -> SpaceSet:
        return self.run.spaces

    @property
    def split(self) -> str:
        """The split the findings are about: ``val`` when tracked."""
        return self.run.main_split

    def has_metric(self, *names: str) -> bool:
        return bool(self.metrics.metric.isin(names).any())


Builder = Callable[[RunContext], "Section | None"]
_SECTIONS: list[tuple[int, Builder]] = []


def register_section(order: int) -> Callable[[Builder], Builder]:
    """Decorator: sections appear in increasing ``order``."""

    def deco(builder: Builder) -> Builder:
        _SECTIONS.append((order, builder))
        return builder

    return deco


def build_sections(ctx: RunContext) -> list[Section]:
    """Every registered section that has data in this run, in increasing order."""
    import_submodules(__name__)
    return [s for _, b in sorted(_SECTIONS, key=lambda x: x[0]) if (s := b(ctx)) is not None]
