"""Metrics computed from sufficient statistics: confusion matrices, class statistics, covers."""

from hypbias.metrics.accuracy import (
    convergence_epoch,
    group_confusion,
    label_space_accuracy,
    relative_accuracy,
    relative_gain,
    residual_relative_error,
)

__all__ = [
    "convergence_epoch",
    "group_confusion",
    "label_space_accuracy",
    "relative_accuracy",
    "relative_gain",
    "residual_relative_error",
]
