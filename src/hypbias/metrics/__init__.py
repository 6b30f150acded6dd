"""Metrics computed from sufficient statistics: confusion matrices, class statistics, covers.

Every streaming metric is an :class:`Accumulator` (declared state; reset, merge, all_reduce,
state_dict, to and pickling written once in :mod:`hypbias.metrics.base`).
"""

from hypbias.metrics.accuracy import (
    convergence_epoch,
    group_confusion,
    label_space_accuracy,
    relative_accuracy,
    relative_gain,
    residual_relative_error,
)
from hypbias.metrics.base import Accumulator, State
from hypbias.metrics.collapse import (
    ClassStatistics,
    NearestMeanMismatch,
    SpaceStatistics,
    nearest_mean_mismatch,
    neural_collapse,
    neural_collapse_in_spaces,
)
from hypbias.metrics.confusion import ConfusionMatrix
from hypbias.metrics.hierarchical import (
    HierarchicalMistakes,
    hierarchical_topk_distance,
    mistake_severity,
)
from hypbias.metrics.manifold import (
    PearsonAccumulator,
    class_mean_distances,
    cophenetic_correlation,
    cover_distance,
    covers,
    example_pair_correlation,
    mutual_cover_mean,
    self_cover_mean,
)

__all__ = [
    "Accumulator",
    "ClassStatistics",
    "ConfusionMatrix",
    "HierarchicalMistakes",
    "NearestMeanMismatch",
    "PearsonAccumulator",
    "SpaceStatistics",
    "State",
    "class_mean_distances",
    "convergence_epoch",
    "cophenetic_correlation",
    "cover_distance",
    "covers",
    "example_pair_correlation",
    "group_confusion",
    "hierarchical_topk_distance",
    "label_space_accuracy",
    "mistake_severity",
    "mutual_cover_mean",
    "nearest_mean_mismatch",
    "neural_collapse",
    "neural_collapse_in_spaces",
    "relative_accuracy",
    "relative_gain",
    "residual_relative_error",
    "self_cover_mean",
]
