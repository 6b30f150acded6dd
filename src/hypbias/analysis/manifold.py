"""The layer-wise hierarchy analysis of one checkpoint (Sec. 3.2, 4.3; App. C.3, C.4; Table 6–7).

:func:`manifold_metrics` is a pure function of a model and fixed samples: for each layer it extracts
features (global max-pool for maps), embeds query and support together, measures covers, the three
cophenetic correlations with the hierarchy, and optionally linear-probe accuracy in every label
space. The training tracker (every few epochs) and ``hypbias analyze`` (over saved checkpoints) both
call it, with samples drawn once by :mod:`hypbias.analysis.sampling`.

Rows are long format, ``{"epoch", "split", "space", "metric", "value", "layer"}``:

* ``ccc_cover``, ``ccc_class_means``, ``ccc_direct`` (space ``H``): Pearson r of the mutual-cover
  distance D_F, the class-mean distances and the example-pair distances with d_W (Eq. 17–18, Table 6);
* ``self_cover``, ``mutual_cover`` (space ``H``): mean diagonal and off-diagonal covers (Fig. 2);
* with ``space="both"`` the five above again, measured on the raw features, named
  ``<metric>@space=raw`` (Fig. 2a next to 2b);
* ``probe_accuracy`` (space ``H`` and each given space): the greedy accuracy in percent of the probe
  trained in H;
* ``probe_accuracy@trained=<S>`` (each space the probe trained in S determines): Table 7's probes
  trained in a hypernym space (``probe_train_spaces``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hypbias._validation import check_choice, check_float, check_int
from hypbias.analysis.embedding import SPACES, FeatureEmbedder
from hypbias.analysis.metric_names import param_metric
from hypbias.analysis.probes import METHODS, probe_in_spaces
from hypbias.labelspace import LabelSpace
from hypbias.metrics.manifold import (
    class_mean_distances,
    cophenetic_correlation,
    cover_distance,
    covers,
    example_pair_correlation,
    mutual_cover_mean,
    self_cover_mean,
)
from hypbias.models.layers import PoolSpec, check_pool, check_token, extract_features

COVER_SPACES = (*SPACES, "both")
"""Where covers are measured: the UMAP embedding, the raw features, or both (Fig. 2b and 2a)."""


class Labelled(NamedTuple):
    """Model inputs of shape (n, ...) and their fine labels, int array of shape (n,)."""

    x: torch.Tensor
    y: np.ndarray


@dataclass(frozen=True)
class ManifoldSettings:
    """Parameters of :func:`manifold_metrics` (the ``manifold`` section of a config).

    Attributes
    ----------
    dim : UMAP dimension M (10)
    space : ``"umap"``, ``"raw"`` (Fig. 2a) or ``"both"`` (UMAP rows plus ``@space=raw`` rows)
    seed : UMAP's random state
    n_neighbors, n_epochs : UMAP parameters (n_epochs None: umap-learn's default)
    r_max : cover radius; None = the largest query-to-class distance observed
    probe_method : ``"logistic"`` or ``"ridge"``
    probe_pool : pooling of maps for probes (App. C.4: a medium average-pooling window)
    probe_train_spaces : ``"H"`` (probes trained in H only), ``"all"`` (in H and every given space,
        Table 7) or a tuple of space names
    token : ``"cls"`` or ``"mean"`` to read 3-d layer outputs as token sequences (ViT, BERT);
        None reads them as maps (:mod:`hypbias.models.layers`)
    batch_size : examples per forward pass
    """

    dim: int = 10
    space: str = "umap"
    seed: int = 0
    n_neighbors: int = 15
    n_epochs: int | None = None
    r_max: float | None = None
    probe_method: str = "logistic"
    probe_pool: PoolSpec = ("avg", 2)
    probe_train_spaces: str | tuple[str, ...] = "H"
    token: str | None = None
    batch_size: int = 512

    def __post_init__(self) -> None:
        owner = "ManifoldSettings"
        check_int(self.dim, "dim", owner, low=1)
        check_choice(self.space, "space", owner, COVER_SPACES)
        check_int(self.seed, "seed", owner, low=0)
        check_int(self.n_neighbors, "n_neighbors", owner, low=2)
        if self.n_epochs is not None:
            check_int(self.n_epochs, "n_epochs", owner, low=1)
        if self.r_max is not None:
            check_float(self.r_max, "r_max", owner, low=0, low_open=True)
        check_choice(self.probe_method, "probe_method", owner, METHODS)
        check_pool(self.probe_pool)
        if isinstance(self.probe_train_spaces, str):
            check_choice(self.probe_train_spaces, "probe_train_spaces", owner, ["H", "all"])
        elif not all(isinstance(n, str) for n in self.probe_train_spaces):
            raise ValueError(
                f"The 'probe_train_spaces' parameter of {owner} must be 'H', 'all' or a tuple of "
                f"space names. Got {self.probe_train_spaces!r} instead."
            )
        check_token(self.token)
        check_int(self.batch_size, "batch_size", owner, low=1)

    def train_spaces(self, spaces: Sequence[str]) -> list[str]:
        """The spaces probes are trained in, among ``spaces``: H first, always, then the others of
        ``probe_train_spaces`` (every one of ``spaces`` for ``"all"``) in their order."""
        if self.probe_train_spaces == "H":
            return ["H"]
        named = spaces if self.probe_train_spaces == "all" else self.probe_train_spaces
        return ["H", *(name for name in named if name != "H")]

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for recording next to the results."""
        return asdict(self)


def _row(epoch: int, split: str, space: str, metric: str, value: float, layer: str) -> dict[str, Any]:
    return {"epoch": epoch, "split": split, "space": space, "metric": metric,
            "value": float(value), "layer": layer}


def cover_rows(query: Any, query_labels: np.ndarray, support: Any, support_labels: np.ndarray,
               graph_distance: np.ndarray, *, epoch: int, split: str, layer: str,
               r_max: float | None = None, space: str | None = None) -> list[dict[str, Any]]:
    """Covers and the three CCCs of one layer's embedded query (n_q, M) and support (n_s, M).

    ``space`` (e.g. ``"raw"``) is appended to the metric names as ``@space=<space>``.
    """
    c = len(graph_distance)
    a = covers(query, query_labels, support, support_labels, r_max, num_classes=c)
    both = torch.cat([torch.as_tensor(query), torch.as_tensor(support)])
    means = class_mean_distances(both, np.concatenate([query_labels, support_labels]), c)
    values = {
        "ccc_cover": cophenetic_correlation(cover_distance(a), graph_distance),
        "ccc_class_means": cophenetic_correlation(means, graph_distance),
        "ccc_direct": example_pair_correlation(query, query_labels, support, support_labels,
                                               graph_distance),
        "self_cover": self_cover_mean(a),
        "mutual_cover": mutual_cover_mean(a),
    }
    return [_row(epoch, split, "H", metric if space is None else param_metric(metric, space=space),
                 v, layer) for metric, v in values.items()]


def cover_features(model: nn.Module, layers: Sequence[str], query: Labelled, support: Labelled,
                   settings: ManifoldSettings | None = None) -> dict[str, torch.Tensor]:
    """The features the covers read: ``layers`` of ``model`` on the query examples followed by the
    support examples, global max over maps (footnote 3) or ``settings.token`` for sequences.

    Returns ``name -> tensor of shape (n_query + n_support, D_layer)``, in the order of ``layers``.
    """
    settings = settings or ManifoldSettings()
    return extract_features(model, torch.cat([query.x, support.x]), layers, "max",
                            settings.batch_size, settings.token)


def manifold_metrics(
    model: nn.Module,
    layers: Sequence[str],
    query: Labelled,
    support: Labelled,
    graph_distance: Any,
    spaces: Mapping[str, LabelSpace | None] | None = None,
    *,
    epoch: int,
    split: str = "train",
    probe_train: Labelled | None = None,
    probe_test: Labelled | None = None,
    probe_split_name: str = "val",
    settings: ManifoldSettings | None = None,
    features: Mapping[str, torch.Tensor] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Per-layer manifold alignment and probe accuracy of ``model`` at one epoch.

    Parameters
    ----------
    model : nn.Module, put in eval mode for the duration (its mode is restored)
    layers : module names, bottom to top (see :class:`hypbias.models.layers.LayerFeatures`)
    query, support : Labelled samples of ``split`` (:func:`sample_query_support`), embedded together
    graph_distance : array of shape (C, C), the hierarchy's d_W (``Hierarchy.graph_distance_matrix``)
    spaces : dict name -> LabelSpace (None for H) the probes are scored in; default ``{"H": None}``
    epoch : recorded in every row
    split : the split ``query`` and ``support`` come from
    probe_train, probe_test : Labelled samples for the probes (:func:`probe_split`); no probe rows
        when either is None
    probe_split_name : the split the probe samples come from
    settings : ManifoldSettings; default ``ManifoldSettings()``
    features : :func:`cover_features` of (at least) ``layers`` when the caller has them already
        (the tracker's pictures read the same features); None extracts them here
    progress : show a progress bar over the layers

    Returns
    -------
    list of row dicts with keys ``epoch, split, space, metric, value, layer``.
    """
    settings = settings or ManifoldSettings()
    epoch = check_int(epoch, "epoch", "manifold_metrics", low=0)
    d_w = np.asarray(graph_distance, dtype=np.float64)
    spaces = {"H": None} if spaces is None else spaces
    embedder = FeatureEmbedder(settings.dim, settings.seed,
                               "umap" if settings.space == "both" else settings.space,
                               settings.n_neighbors, n_epochs=settings.n_epochs)
    n_q = len(query.x)
    feats = dict(features) if features is not None else cover_features(model, layers, query,
                                                                         support, settings)
    probing = probe_train is not None and probe_test is not None
    if probing:
        probe_feats = extract_features(model, torch.cat([probe_train.x, probe_test.x]), layers,
                                       settings.probe_pool, settings.batch_size, settings.token)
        train_in = settings.train_spaces(list(spaces))
    rows: list[dict[str, Any]] = []
    stage = "covers" if settings.space == "raw" else "UMAP"
    for layer in tqdm(layers, desc=f"{stage} (epoch {epoch})", disable=not progress, leave=False):
        raw = feats.pop(layer)
        z = embedder.fit_transform(raw)
        rows += cover_rows(z[:n_q], query.y, z[n_q:], support.y, d_w, epoch=epoch, split=split,
                           layer=layer, r_max=settings.r_max)
        if settings.space == "both":
            rows += cover_rows(raw[:n_q], query.y, raw[n_q:], support.y, d_w, epoch=epoch,
                               split=split, layer=layer, r_max=settings.r_max, space="raw")
        if probing:
            f = probe_feats.pop(layer)
            n_train = len(probe_train.x)
            scores = probe_in_spaces(f[:n_train], probe_train.y, f[n_train:], probe_test.y,
                                     {"H": None, **spaces}, train_in,
                                     method=settings.probe_method, num_classes=len(d_w))
            rows += [_row(epoch, probe_split_name, scored,
                          "probe_accuracy" if trained == "H"
                          else param_metric("probe_accuracy", trained=trained), v, layer)
                     for (trained, scored), v in scores.items() if scored in spaces]
    return rows


__all__ = ["COVER_SPACES", "Labelled", "ManifoldSettings", "cover_features", "cover_rows",
           "manifold_metrics"]
