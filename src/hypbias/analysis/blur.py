"""Frequency analysis (paper App. C.5, Fig. 16–18): accuracy on Gaussian-blurred images.

If hypernyms were recognised from low image frequencies, learned first, and hyponyms from high
ones, learned later, an early checkpoint would lose less of its accuracy under blur than a late
one. The analysis evaluates a checkpoint on its evaluation images blurred with Gaussian kernels of
growing σ, in H and every label space, and compares with the unblurred accuracy of the same
checkpoint.

* :func:`gaussian_blur`: separable Gaussian convolution of a batch (N, C, H, W) on its device; the
  kernel is exp(−x² / 2σ²) normalised to sum 1, truncated at radius ⌊4σ + ½⌋ (scipy.ndimage's
  convention), borders replicated. The kernel sums to 1, so blurring commutes with the per-channel
  affine standardisation of the loaders: blurring standardised images equals standardising blurred
  ones.
* :func:`blur_confusions`: one pass over the evaluation batches, each batch blurred at every σ and
  classified; returns one fine confusion matrix per σ.
* :func:`blur_rows`: from those, rows ``blur_accuracy@sigma=<σ>`` (A(X) in percent),
  ``blur_relative_accuracy@sigma=<σ>`` (A_σ(X) / A_0(X)) and ``blur_relative_gain@sigma=<σ>``
  ((A_σ(X) − B(X)) / (A_0(X) − B(X)), B the chance accuracy with set imbalance, Eq. 9 with the
  unblurred accuracy in place of the best one: the G of Fig. 17–18). σ = 0 is the unblurred
  reference and is always measured.

σ is carried in the metric name (:mod:`hypbias.analysis.metric_names`), so ``metrics.csv`` keeps its
columns; :func:`blur_table` reads it back into a ``sigma`` column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from hypbias._validation import check_float, check_int
from hypbias.analysis.metric_names import metric_param, param_metric
from hypbias.errors import DataError
from hypbias.labelspace import LabelSpace
from hypbias.metrics.accuracy import label_space_accuracy
from hypbias.metrics.rows import MetricRow, metric_row

TRUNCATE = 4.0
"""Kernel radius in units of σ (scipy.ndimage's default)."""

DEFAULT_SIGMAS = (0.5, 1.0, 2.0, 4.0)
"""σ in pixels measured by default, besides the unblurred σ = 0."""

BLUR_METRICS = ("blur_accuracy", "blur_relative_accuracy", "blur_relative_gain")
"""Base names of the rows of :func:`blur_rows`."""


def check_images(input_shape: Sequence[int], source: str) -> tuple[int, int, int]:
    """The (channels, height, width) of image inputs, or a one-line DataError for other data."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise DataError(f"{source}: the frequency analysis blurs images of shape (channels, height, "
                        f"width); these inputs have shape {shape}, so there is nothing to blur")
    return shape  # type: ignore[return-value]


def blur_sigmas(sigmas: Iterable[Any] | None = None) -> list[float]:
    """0 (the unblurred reference) followed by the distinct positive σ of ``sigmas``, ascending."""
    values = DEFAULT_SIGMAS if sigmas is None else list(sigmas)
    checked = {check_float(s, "sigmas", "blur_sigmas", low=0) for s in values}
    return [0.0, *sorted(checked - {0.0})]


def kernel_radius(sigma: float, truncate: float = TRUNCATE) -> int:
    """r = ⌊truncate·σ + ½⌋; the kernel is 2r + 1 pixels wide (the paper speaks of kernel sizes)."""
    sigma = check_float(sigma, "sigma", "gaussian_kernel", low=0)
    truncate = check_float(truncate, "truncate", "gaussian_kernel", low=0, low_open=True)
    return math.floor(truncate * sigma + 0.5)


def gaussian_kernel(sigma: float, truncate: float = TRUNCATE, *, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """The normalised 1-d Gaussian of shape (2r + 1,) (:func:`kernel_radius`); [1] for σ = 0."""
    radius = kernel_radius(sigma, truncate)
    sigma = float(sigma)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2) if sigma > 0 else (x == 0).double()
    return (k / k.sum()).to(dtype=dtype, device=device)


def gaussian_blur(images: torch.Tensor, sigma: float, truncate: float = TRUNCATE) -> torch.Tensor:
    """Blur a batch of images (N, C, H, W) with a Gaussian of ``sigma`` pixels, on its device.

    Two 1-d convolutions (rows, then columns), one filter per channel, borders replicated.
    Floating images keep their dtype; integer images (uint8) are blurred in float32, rounded and
    clipped back to their type. ``sigma = 0`` returns ``images`` itself.
    """
    if images.ndim != 4:
        raise ValueError(f"The 'images' parameter of gaussian_blur must have shape (N, C, H, W). "
                         f"Got shape {tuple(images.shape)} instead.")
    if check_float(sigma, "sigma", "gaussian_blur", low=0) == 0.0:
        return images
    work = images if images.is_floating_point() else images.float()
    k = gaussian_kernel(sigma, truncate, dtype=work.dtype, device=work.device)
    r, c = len(k) // 2, work.shape[1]
    out = F.conv2d(F.pad(work, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1),
                   groups=c)
    out = F.conv2d(F.pad(out, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1),
                   groups=c)
    if images.is_floating_point():
        return out
    info = torch.iinfo(images.dtype)
    return out.round_().clamp_(info.min, info.max).to(images.dtype)


@torch.no_grad()
def blur_confusions(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    sigmas: Sequence[float], num_classes: int,
                    forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
    """Fine confusion matrices of ``model`` on every batch blurred with each σ.

    Parameters
    ----------
    model : nn.Module returning logits (N, C); put in eval mode for the call (its mode is restored)
    batches : iterable of (images (N, C, H, W), fine labels (N,)), on the device to work on
    sigmas : σ values in pixels (0 = unblurred), see :func:`blur_sigmas`
    num_classes : C
    forward : how to get logits from a batch (e.g. under autocast); default ``model(x)``

    Returns
    -------
    int64 array of shape (len(sigmas), C, C), M[s, i, j] = images of class i predicted j at σ_s.
    """
    c = check_int(num_classes, "num_classes", "blur_confusions", low=1)
    sigmas = [check_float(s, "sigmas", "blur_confusions", low=0) for s in sigmas]
    forward = forward or model
    was_training = model.training
    model.eval()
    counts: torch.Tensor | None = None
    try:
        for x, y in batches:
            if counts is None:
                counts = torch.zeros((len(sigmas), c * c), dtype=torch.int64, device=y.device)
            y = y.to(counts.device).long()
            for s, sigma in enumerate(sigmas):
                pred = forward(gaussian_blur(x, sigma)).argmax(dim=1).to(counts.device)
                counts[s] += torch.bincount(y * c + pred, minlength=c * c)
    finally:
        model.train(was_training)
    if counts is None:
        raise ValueError("The 'batches' parameter of blur_confusions yielded no batch.")
    return counts.view(len(sigmas), c, c).cpu().numpy()


def blur_rows(confusions: Any, sigmas: Sequence[float], spaces: Mapping[str, LabelSpace | None], *,
              epoch: int, split: str) -> list[MetricRow]:
    """Accuracy, relative accuracy and relative gain per σ and label space (rows of ``metrics.csv``).

    ``confusions`` (S, C, C) and ``sigmas`` (S,) come from :func:`blur_confusions`; one σ must be 0
    (the reference). ``spaces`` maps names to LabelSpaces, None for H.
    """
    m = np.asarray(confusions)
    sigmas = [float(s) for s in sigmas]
    if m.ndim != 3 or len(m) != len(sigmas):
        raise ValueError(f"The 'confusions' parameter of blur_rows must have shape "
                         f"({len(sigmas)}, C, C), one matrix per sigma. Got shape {m.shape} instead.")
    if 0.0 not in sigmas:
        raise ValueError("The 'sigmas' parameter of blur_rows must include 0, the unblurred "
                         f"reference. Got {sigmas} instead.")
    ref = sigmas.index(0.0)
    counts = m[ref].sum(axis=1)
    rows = []
    for name, space in spaces.items():
        acc = label_space_accuracy(m, space)
        chance = (space or LabelSpace.identity(m.shape[-1])).chance_accuracy(counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            derived = {"blur_accuracy": acc, "blur_relative_accuracy": acc / acc[ref],
                       "blur_relative_gain": (acc - chance) / (acc[ref] - chance)}
        for metric, values in derived.items():
            rows += [metric_row(epoch, split, name, param_metric(metric, sigma=sigma), v)
                     for sigma, v in zip(sigmas, values, strict=True)]
    return rows


def blur_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """The blur rows of a metrics table with σ as a column.

    Returns columns ``epoch, split, space, metric, sigma, value`` (``metric`` one of
    :data:`BLUR_METRICS`, ``sigma`` float), sorted by epoch, space, metric and σ; empty when the
    table holds no blur rows.
    """
    parsed = []
    for base in BLUR_METRICS:
        sigma = metrics.metric.map(lambda name, b=base: metric_param(name, b, "sigma"))
        sel = metrics[sigma.notna()]
        parsed.append(sel.assign(metric=base, sigma=sigma[sigma.notna()].astype(float)))
    out = pd.concat(parsed)
    columns = ["epoch", "split", "space", "metric", "sigma", "value"]
    if out.empty:
        return pd.DataFrame(columns=columns)
    return out[columns].sort_values(["epoch", "space", "metric", "sigma"]).reset_index(drop=True)


__all__ = ["BLUR_METRICS", "DEFAULT_SIGMAS", "TRUNCATE", "blur_confusions", "blur_rows", "blur_sigmas",
           "blur_table", "check_images", "gaussian_blur", "gaussian_kernel", "kernel_radius"]
