"""Metrics computed from sufficient statistics: confusion matrices, class statistics, covers."""

from hypbias.metrics.accuracy import (
    convergence_epoch,
    group_confusion,
    label_space_accuracy,
    relative_accuracy,
    relative_gain,
    residual_relative_error,
)
from hypbias.metrics.collapse import (
    ClassStatistics,
    NearestMeanMismatch,
    SpaceStatistics,
    nearest_mean_mismatch,
    neural_collapse,
)
from hypbias.metrics.confusion import ConfusionMatrix
from hypbias.metrics.hierarchical import (
    HierarchicalMistakes,
    hierarchical_topk_distance,
    mistake_severity,
)

__all__ = [
    "ClassStatistics",
    "ConfusionMatrix",
    "HierarchicalMistakes",
    "NearestMeanMismatch",
    "SpaceStatistics",
    "convergence_epoch",
    "group_confusion",
    "hierarchical_topk_distance",
    "label_space_accuracy",
    "mistake_severity",
    "nearest_mean_mismatch",
    "neural_collapse",
    "relative_accuracy",
    "relative_gain",
    "residual_relative_error",
]
