"""``hypbias analyze-checkpoints``: a series of checkpoints trained elsewhere, measured and reported.

    run = analyze_series("runs/timm/checkpoint-*.pth.tar", "timm:resnet50",
                         config="imagenet_resnet50", data_dir="/data/imagenet", out="runs/r50")

Layouts, prefixes and epochs are read as :mod:`hypbias.train.state_dicts` describes; every
checkpoint is measured as :mod:`hypbias.train.checkpoint_series` describes. The command and
:func:`hypbias.integrations.checkpoints.analyze_checkpoints` are this function.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hypbias.report import write_report
from hypbias.rundir import RunDir
from hypbias.train.checkpoint_series import analyse_checkpoint_series, series_config
from hypbias.train.state_dicts import expand_checkpoints


def analyze_series(checkpoints: str | Sequence[str], model: str, *, out: str | Path,
                   config: str | Path | None = None, overrides: Sequence[str] = (),
                   data_dir: str | Path | None = None, epochs: Sequence[int] | None = None,
                   ema: bool = True, strip: Sequence[str] = (), report: bool = True,
                   progress: bool = False, overwrite: bool = False) -> RunDir | None:
    """Measure the checkpoint files (glob patterns) and write the run directory ``out`` with its
    report; returns it (None on processes other than rank 0 under ``torchrun``).

    ``model``, ``config``, ``overrides`` and ``data_dir`` build the network and the experiment
    (:func:`~hypbias.train.checkpoint_series.series_config`); ``epochs`` label the files in the
    order the patterns give them (default: from the names); ``ema`` prefers a moving average of the
    weights; ``strip`` removes key prefixes; ``overwrite`` replaces an earlier run in ``out``
    (refused otherwise).
    """
    patterns = [checkpoints] if isinstance(checkpoints, str) else list(checkpoints)
    run = analyse_checkpoint_series(series_config(config, model, overrides, data_dir),
                                    expand_checkpoints(patterns), out, epochs=epochs, ema=ema,
                                    strip=strip, progress=progress, overwrite=overwrite)
    if run is not None and report:
        write_report(run)
    return run


__all__ = ["analyze_series"]
