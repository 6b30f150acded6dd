"""Checkpoints trained elsewhere, from Python: the ``hypbias analyze-checkpoints`` command.

    run = analyze_checkpoints("runs/timm/checkpoint-*.pth.tar", "timm:resnet50",
                              config="imagenet_resnet50", data_dir="/data/imagenet", out="runs/r50")

It is :func:`hypbias.experiment.series.analyze_series`: layouts, prefixes and epochs are read as
:mod:`hypbias.train.state_dicts` describes; every checkpoint is measured as
:mod:`hypbias.train.checkpoint_series` describes.
"""

from __future__ import annotations

from hypbias.experiment.series import analyze_series as analyze_checkpoints

__all__ = ["analyze_checkpoints"]
