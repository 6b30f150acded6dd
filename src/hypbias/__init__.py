"""hypbias: how a deep classifier learns a class hierarchy while it trains.

Implements the framework of *Hypernym Bias* (Malashin, Yachnaya, Mullin, AISTATS 2025) and the
hierarchical losses of *Making Better Mistakes* (Bertinetto et al., CVPR 2020).

The public names below are imported on first use, so ``import hypbias`` (and ``hypbias --help``)
does not load torch; ``hb.Tracker`` loads the tracker, the metrics and the label spaces, never the
training loop, the datasets, the models or the report.

>>> import hypbias as hb
>>> h = hb.Hierarchy.from_nested({"animal": ["cat", "dog"], "vehicle": ["car", "bus"]})
>>> hb.LabelSpace.from_hierarchy(h, level=1).sizes.tolist()
[2, 2]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hypbias._version import __version__

_EXPORTS = {
    "Hierarchy": "hypbias.hierarchy.tree",
    "read_hierarchy": "hypbias.hierarchy.files",
    "LabelSpace": "hypbias.labelspace.space",
    "SpaceSet": "hypbias.labelspace.spaceset",
    "build_spaces": "hypbias.labelspace.spaceset",
    "Tracker": "hypbias.train.tracker",
    "TrackerComponent": "hypbias.train.tracker",
    "convergence_epoch": "hypbias.metrics.accuracy",
    "label_space_accuracy": "hypbias.metrics.accuracy",
    "relative_accuracy": "hypbias.metrics.accuracy",
    "relative_gain": "hypbias.metrics.accuracy",
    "residual_relative_error": "hypbias.metrics.accuracy",
    "metrics": "hypbias.metrics",
}
"""Public name -> the module that defines it."""

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use
    from hypbias import metrics
    from hypbias.hierarchy.files import read_hierarchy
    from hypbias.hierarchy.tree import Hierarchy
    from hypbias.labelspace.space import LabelSpace
    from hypbias.labelspace.spaceset import SpaceSet, build_spaces
    from hypbias.metrics.accuracy import (
        convergence_epoch,
        label_space_accuracy,
        relative_accuracy,
        relative_gain,
        residual_relative_error,
    )
    from hypbias.train.tracker import Tracker, TrackerComponent


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hypbias' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if module.__name__ == f"hypbias.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [  # noqa: RUF022  (the lazy names, in the order of _EXPORTS)
    "__version__",
    "Hierarchy",
    "read_hierarchy",
    "LabelSpace",
    "SpaceSet",
    "build_spaces",
    "Tracker",
    "TrackerComponent",
    "convergence_epoch",
    "label_space_accuracy",
    "relative_accuracy",
    "relative_gain",
    "residual_relative_error",
    "metrics",
]
