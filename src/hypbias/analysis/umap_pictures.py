"""Two-dimensional UMAP pictures of a layer's features (paper Fig. 1b, 12 and 13).

At a measured epoch the features of a fixed sample (the manifold analysis's query and support
examples) are embedded into two dimensions, and so are the class means of the same features
(Fig. 13: the class centres keep the hypernym structure after the examples have collapsed). The
report colours the points by the hierarchy distance of their class to an anchor class and by
superclass. Only the 2-D coordinates are kept, a few hundred kB per epoch even for C = 1000, so a
run directory holds its pictures without the features.

For large C the sample is thinned to at most ``max_points`` points (the same number per class,
seeded); with more classes than ``max_points`` a seeded subset of classes is kept, the anchor
always among them. Arrays are stored in ``manifold.npz`` under keys
``umap2d:<layer>:<epoch>:<field>`` (:func:`picture_arrays`, :func:`read_pictures`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from hypbias._validation import check_int, check_labels
from hypbias.analysis.embedding import FeatureEmbedder
from hypbias.errors import ConfigError
from hypbias.models.layers import extract_features

PREFIX = "umap2d"
"""Key prefix of the picture arrays in ``manifold.npz``."""

FIELDS = ("points", "labels", "centres")


@dataclass(frozen=True)
class Picture:
    """One layer's 2-D embedding at one epoch.

    Attributes
    ----------
    layer : module name
    epoch : int
    points : float32 array of shape (n, 2), the embedded examples
    labels : int array of shape (n,), their fine classes
    centres : float32 array of shape (C, 2), the embedded class means (NaN rows for classes left
        out of the sample)
    """

    layer: str
    epoch: int
    points: np.ndarray
    labels: np.ndarray
    centres: np.ndarray


def picture_sample(labels: Any, num_classes: int, max_points: int = 5000, seed: int = 0,
                   anchor: int = 0) -> np.ndarray:
    """Indices of at most ``max_points`` examples, the same number per class (seeded).

    Parameters
    ----------
    labels : int array of shape (n,)
    num_classes : C
    max_points : int >= 1
    seed : int >= 0
    anchor : a class kept whenever classes have to be dropped (more classes than ``max_points``)

    Returns
    -------
    sorted int array of indices into ``labels``.
    """
    owner = "picture_sample"
    c = check_int(num_classes, "num_classes", owner, low=1)
    max_points = check_int(max_points, "max_points", owner, low=1)
    y = check_labels(np.asarray(labels), "labels", owner, c)
    anchor = check_int(anchor, "anchor", owner, low=0, high=c - 1)
    rng = np.random.default_rng(check_int(seed, "seed", owner, low=0))
    present = np.flatnonzero(np.bincount(y, minlength=c))
    if len(present) > max_points:
        others = rng.permutation(present[present != anchor])
        keep = others[: max_points - 1] if anchor in present else others[:max_points]
        present = np.sort(np.concatenate([keep, [anchor]] if anchor in present else [keep]))
    per_class = max(1, max_points // len(present))
    chosen = [rng.permutation(np.flatnonzero(y == cls))[:per_class] for cls in present]
    return np.sort(np.concatenate(chosen))


def class_means(features: Any, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean feature of each class, float64 array of shape (C, D) (NaN rows for absent classes)."""
    x = features.detach().double().cpu().numpy() if isinstance(features, torch.Tensor) else (
        np.asarray(features, dtype=np.float64))
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    sums = np.zeros((num_classes, x.shape[1]))
    np.add.at(sums, labels, x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def make_picture(features: Any, labels: Any, num_classes: int, *, layer: str, epoch: int,
                 seed: int = 0, max_points: int = 5000, anchor: int = 0, n_neighbors: int = 15,
                 n_epochs: int | None = None) -> Picture:
    """Embed a sample of ``features`` (n, D) and the class means of all of them into 2-D.

    The class means are taken over every example given (before thinning) and embedded for the
    classes the sample keeps; fewer than three such classes are too few for UMAP and leave every
    centre NaN.
    """
    y = check_labels(np.asarray(labels), "labels", "make_picture", num_classes)
    keep = picture_sample(y, num_classes, max_points, seed, anchor)
    embedder = FeatureEmbedder(dim=2, seed=seed, n_neighbors=n_neighbors, n_epochs=n_epochs)
    chosen = features[torch.as_tensor(keep)] if isinstance(features, torch.Tensor) else (
        np.asarray(features)[keep])
    points = np.asarray(_numpy(embedder.fit_transform(chosen)), dtype=np.float32)
    means = class_means(features, y, num_classes)
    sampled = np.zeros(num_classes, dtype=bool)
    sampled[y[keep]] = True
    centres = np.full((num_classes, 2), np.nan, dtype=np.float32)
    if sampled.sum() >= 3:  # UMAP needs a few points to find neighbours
        centres[sampled] = _numpy(embedder.fit_transform(means[sampled].astype(np.float32)))
    return Picture(layer, int(epoch), points, y[keep].astype(np.int64), centres)


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def layer_pictures(model: nn.Module, layers: Sequence[str], inputs: torch.Tensor, labels: Any,
                   num_classes: int, *, epoch: int, seed: int = 0, max_points: int = 5000,
                   anchor: int = 0, n_neighbors: int = 15, n_epochs: int | None = None,
                   token: str | None = None, batch_size: int = 512) -> list[Picture]:
    """The pictures of ``layers`` of ``model`` on ``inputs`` (n, ...) with fine ``labels`` (n,).

    Features are pooled as in the manifold analysis (global max over maps; ``token`` for
    sequences), so the picture shows what the covers measure.
    """
    feats = extract_features(model, inputs, layers, "max", batch_size, token)
    return feature_pictures(feats, layers, labels, num_classes, epoch=epoch, seed=seed,
                            max_points=max_points, anchor=anchor, n_neighbors=n_neighbors,
                            n_epochs=n_epochs)


def feature_pictures(features: Mapping[str, Any], layers: Sequence[str], labels: Any,
                     num_classes: int, *, epoch: int, seed: int = 0, max_points: int = 5000,
                     anchor: int = 0, n_neighbors: int = 15, n_epochs: int | None = None
                     ) -> list[Picture]:
    """The pictures of ``layers`` from features already extracted: ``features`` maps each layer to
    an array (n, D) of the examples with fine ``labels`` (n,) (:func:`make_picture` per layer)."""
    return [make_picture(features[layer], labels, num_classes, layer=layer, epoch=epoch, seed=seed,
                         max_points=max_points, anchor=anchor, n_neighbors=n_neighbors,
                         n_epochs=n_epochs) for layer in layers]


def picture_arrays(pictures: Iterable[Picture]) -> dict[str, np.ndarray]:
    """Flat ``{key: array}`` of pictures, for ``np.savez`` (keys ``umap2d:<layer>:<epoch>:<field>``)."""
    out = {}
    for pic in pictures:
        for name in FIELDS:
            out[f"{PREFIX}:{pic.layer}:{pic.epoch}:{name}"] = getattr(pic, name)
    return out


def read_pictures(arrays: Mapping[str, np.ndarray]) -> dict[str, dict[int, Picture]]:
    """Inverse of :func:`picture_arrays`: layer -> epoch -> Picture (epochs ascending).

    Other keys of ``arrays`` (the manifold sample indices) are ignored.
    """
    found: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        parts = key.split(":")
        if len(parts) < 4 or parts[0] != PREFIX or parts[-1] not in FIELDS or not parts[-2].isdigit():
            continue
        layer = ":".join(parts[1:-2])
        found.setdefault((layer, int(parts[-2])), {})[parts[-1]] = np.asarray(value)
    out: dict[str, dict[int, Picture]] = {}
    for (layer, epoch), fields in sorted(found.items(), key=lambda kv: kv[0][1]):
        if set(fields) == set(FIELDS):
            out.setdefault(layer, {})[epoch] = Picture(layer, epoch, **fields)
    return out


def anchor_index(anchor: Any, classes: list[str]) -> int:
    """``manifold.anchor`` as a class index: an index, a class name, or None for class 0.

    Raises ConfigError naming the key when the anchor is neither.
    """
    if anchor is None:
        return 0
    if isinstance(anchor, int) and not isinstance(anchor, bool) and 0 <= anchor < len(classes):
        return anchor
    if isinstance(anchor, str) and anchor in classes:
        return classes.index(anchor)
    raise ConfigError(f"manifold.anchor: {anchor!r} is neither a class name nor an index in "
                      f"0..{len(classes) - 1}")


def anchor_distances(distance: Any, anchor: int) -> np.ndarray:
    """Row ``anchor`` of a class distance matrix (C, C): each class's distance to the anchor."""
    d = np.asarray(distance, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"The 'distance' parameter of anchor_distances must have shape (C, C). "
                         f"Got shape {d.shape} instead.")
    return d[check_int(anchor, "anchor", "anchor_distances", low=0, high=len(d) - 1)]


def centre_agreement(centres: Any, t: Any) -> tuple[float, float]:
    """How much of a grouping the class-mean picture keeps (Fig. 13), and its chance level.

    Parameters
    ----------
    centres : array of shape (C, 2), embedded class means (NaN rows are left out)
    t : int array of shape (C,), each class's group (a hypernym space's assignment)

    Returns
    -------
    (agreement, chance): the share of classes whose nearest other class mean lies in their own
    group, and the share expected when the means are placed at random, mean over classes of
    (n_g − 1) / (C' − 1), C' the classes shown and n_g those of the class's group among them.
    """
    z = np.asarray(centres, dtype=np.float64)
    groups = np.asarray(t)
    shown = np.flatnonzero(np.isfinite(z).all(axis=1))
    if len(shown) < 2:
        return float("nan"), float("nan")
    z, groups = z[shown], groups[shown]
    d = np.linalg.norm(z[:, None] - z[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    agreement = float(np.mean(groups[d.argmin(axis=1)] == groups))
    sizes = np.bincount(groups)[groups]
    chance = float(np.mean((sizes - 1) / (len(shown) - 1)))
    return agreement, chance


__all__ = ["FIELDS", "PREFIX", "Picture", "anchor_distances", "anchor_index", "centre_agreement",
           "class_means", "feature_pictures", "layer_pictures", "make_picture", "picture_arrays",
           "picture_sample", "read_pictures"]
