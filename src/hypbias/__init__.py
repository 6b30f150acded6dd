"""hypbias: how a deep classifier learns a class hierarchy while it trains.

Implements the framework of *Hypernym Bias* (Malashin, Yachnaya, Mullin, AISTATS 2025) and the
hierarchical losses of *Making Better Mistakes* (Bertinetto et al., CVPR 2020).

>>> import hypbias as hb
>>> h = hb.Hierarchy.from_nested({"animal": ["cat", "dog"], "vehicle": ["car", "bus"]})
>>> hb.LabelSpace.from_hierarchy(h, level=1).sizes.tolist()
[2, 2]
"""

from hypbias import metrics
from hypbias.hierarchy import Hierarchy
from hypbias.labelspace import LabelSpace
from hypbias.metrics import (
    convergence_epoch,
    label_space_accuracy,
    relative_accuracy,
    relative_gain,
    residual_relative_error,
)
from hypbias.train.tracker import Tracker, TrackerComponent

__version__ = "0.1.0"

__all__ = [
    "Hierarchy",
    "LabelSpace",
    "Tracker",
    "TrackerComponent",
    "__version__",
    "convergence_epoch",
    "label_space_accuracy",
    "metrics",
    "relative_accuracy",
    "relative_gain",
    "residual_relative_error",
]
