"""``hypbias blur RUN_DIR``: the frequency analysis of App. C.5 on a run's saved checkpoints.

Each chosen checkpoint classifies the validation images blurred with Gaussians of growing σ
(:func:`~hypbias.analysis.blur.blur_confusions`, batched on the device); the rows
``blur_accuracy@sigma=<σ>``, ``blur_relative_accuracy@sigma=<σ>`` and
``blur_relative_gain@sigma=<σ>`` of H and every hypernym space replace earlier blur rows of the
run's metrics table, and the report gains its frequency-analysis section (Fig. 17–18).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

import torch

from hypbias.analysis.blur import BLUR_METRICS, blur_confusions, blur_rows, blur_sigmas, check_images
from hypbias.analysis.metric_names import split_metric
from hypbias.errors import DataError
from hypbias.experiment.base import open_run, replace_rows
from hypbias.metrics.rows import MetricRow
from hypbias.rundir import RunDir
from hypbias.train.checkpoint import check_config, checkpoints, load_evaluated_weights, read_checkpoint
from hypbias.train.config import Config
from hypbias.train.head import logits_of
from hypbias.train.loop import DeviceMode, batches, build_bundle, build_model, resolve_device

SPLIT = "val"
"""The split whose images are blurred."""


def is_blur_metric(name: str) -> bool:
    """Whether a metric name is one of the rows of :func:`~hypbias.analysis.blur.blur_rows`."""
    base, params = split_metric(name)
    return base in BLUR_METRICS and "sigma" in params


def blur_checkpoints(run_dir: str | Path, sigmas: Iterable[float] | None = None,
                     epochs: Sequence[int] | Literal["all"] | None = None, *, device: str | None = None,
                     progress: bool = True, report: bool = True) -> RunDir:
    """Evaluate saved checkpoints of a run on blurred validation images (``hypbias blur``).

    Parameters
    ----------
    run_dir : a run directory of image data with ``checkpoints/epoch_XXX.pt`` (``train.save_every``)
    sigmas : σ in pixels besides the unblurred 0 (default :data:`~hypbias.analysis.blur.DEFAULT_SIGMAS`)
    epochs : the checkpoints' epochs, or ``"all"``; default an early one (the first after epoch 0)
        and the last
    device : where to evaluate; default the run's ``train.device``

    Earlier blur rows of the run are replaced; its other rows are kept. A DataError (one line) for
    data that are not images, a run without checkpoints or an epoch without one.
    """
    from tqdm.auto import tqdm

    run, config = open_run(run_dir)
    bundle = build_bundle(config)
    check_images(bundle.input_shape, str(run.path))
    sigmas = blur_sigmas(sigmas)
    chosen = choose_checkpoints(run, epochs)
    dev = resolve_device(device or config.train.device, config.origins)
    model = build_model(config.model, bundle, config.origins).to(dev)
    forward = evaluation_forward(model, config, dev)
    spaces = {"H": None, **run.spaces.hypernyms}
    rows: list[MetricRow] = []
    for path in tqdm(chosen, desc="blurred checkpoints", disable=not progress):
        payload = read_checkpoint(path)
        check_config(payload, path, config)
        epoch = load_evaluated_weights(payload, model)
        conf = blur_confusions(model, batches(bundle.split(SPLIT), config.track.eval_batch_size,
                                              device=dev), sigmas, bundle.num_classes, forward=forward)
        rows += blur_rows(conf, sigmas, spaces, epoch=epoch, split=SPLIT)
    replace_rows(run, config, is_blur_metric, rows)
    if report:
        from hypbias.report import write_report

        write_report(run)
    return run


def choose_checkpoints(run: RunDir, epochs: Sequence[int] | Literal["all"] | None) -> list[Path]:
    """The checkpoint files of ``epochs`` (``"all"``: every one; None: the first after epoch 0 and
    the last)."""
    found = {int(p.stem.split("_")[1]): p for p in checkpoints(run.checkpoints)}
    if not found:
        raise DataError(f"{run.checkpoints}: no epoch_XXX.pt checkpoints to blur "
                        "(train the run with --set train.save_every=K)")
    if epochs == "all":
        epochs = list(found)
    elif epochs is None:
        later = [e for e in found if e > 0]
        epochs = sorted({later[0], later[-1]}) if later else list(found)
    missing = [e for e in epochs if e not in found]
    if missing:
        raise DataError(f"{run.checkpoints}: no checkpoint of epoch {missing[0]} (epochs saved: "
                        f"{', '.join(map(str, found))})")
    return [found[e] for e in sorted(set(epochs))]


def evaluation_forward(model: torch.nn.Module, config: Config,
                       device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's logits as the loop evaluates them (:class:`~hypbias.train.loop.DeviceMode`:
    bf16 autocast and channels_last on CUDA when the run used them)."""
    mode = DeviceMode.of(config.train, device)
    mode.prepare(model)

    def forward(x: torch.Tensor) -> torch.Tensor:
        with mode.autocast():
            return logits_of(model(mode.inputs(x))).float()

    return forward


__all__ = ["blur_checkpoints", "choose_checkpoints", "evaluation_forward", "is_blur_metric"]
