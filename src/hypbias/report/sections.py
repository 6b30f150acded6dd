"""Registry of report sections. A builder takes the run's :class:`RunContext` and returns a
:class:`~hypbias.report.html.Section`, or None when the run holds no data for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from hypbias.analysis.label_spaces import SpaceSet
from hypbias.report.html import Section
from hypbias.rundir import RunDir


@dataclass
class RunContext:
    """A run directory opened for reporting."""

    run: RunDir

    @cached_property
    def metrics(self) -> pd.DataFrame:
        return self.run.metrics

    @cached_property
    def spaces(self) -> SpaceSet:
        from hypbias.experiment import load_spaces

        return load_spaces(self.run)

    @property
    def split(self) -> str:
        """The split the findings are about: ``val`` when tracked."""
        splits = list(self.run.config["track"]["splits"])
        return "val" if "val" in splits else splits[0]

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
    return [s for _, b in sorted(_SECTIONS, key=lambda x: x[0]) if (s := b(ctx)) is not None]
