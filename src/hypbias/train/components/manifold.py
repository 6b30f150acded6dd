"""Layer-wise manifold alignment tracked during training (paper §3.2, §4.3, App. C.3–C.4).

The same 2K examples per class (K query, K support) are drawn once from the config's seed and
analysed at every measured epoch, so curves compare like with like. ``hypbias analyze`` draws the
same samples to analyse saved checkpoints after the fact. The same examples also give the 2-D UMAP
pictures of Fig. 1b, 12 and 13 (``manifold.pictures``), kept in ``manifold.npz``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hypbias.analysis.manifold import (
    COVER_SPACES,
    Labelled,
    ManifoldSettings,
    cover_features,
    manifold_metrics,
)
from hypbias.analysis.sampling import probe_split, sample_query_support
from hypbias.analysis.umap_pictures import (
    Picture,
    anchor_index,
    feature_pictures,
    picture_arrays,
    read_pictures,
)
from hypbias.data.base import TensorSplit, split_labels
from hypbias.errors import ConfigError
from hypbias.labelspace import LabelSpace
from hypbias.metrics.rows import MetricRow
from hypbias.models.layers import TOKENS
from hypbias.train import distributed
from hypbias.train.components import ComponentContext, register_component
from hypbias.train.config.schema import (
    AnyOf,
    Bool,
    Choice,
    Described,
    Int,
    ListOf,
    Nullable,
    Refused,
    Section,
    Text,
    key,
)
from hypbias.train.tracker import TrackerComponent

EVERY = Described(AnyOf(Int(low=0), ListOf(Int(low=0), min_len=1)),
                  "an int >= 0 or a list of epochs >= 0")
TRAIN_SPACES = Described(AnyOf(Choice("H", "all"), ListOf(Text(), min_len=1)),
                         "'H', 'all' or a non-empty list of space names")
ANCHOR = Described(Nullable(AnyOf(Int(low=0), Text())), "a class name, a class index >= 0 or null")


@dataclass(frozen=True)
class ManifoldSection(Section):
    """The ``manifold:`` section."""

    SECTION = "manifold"
    every: int | tuple[int, ...] = key(0, EVERY, "k (every k-th epoch and the last; 0 = off) or a "
                                                 "list of epochs")
    split: str = key("train", Choice("train", "val"), "the split sampled")
    layers: tuple[str, ...] = key((), ListOf(Text()), "module names; [] = the model's "
                                                      "feature_layers")
    k: int = key(25, Int(low=1), "query and support examples per class, each")
    dim: int = key(10, Int(low=1), "UMAP's dimension M")
    space: str = key("umap", Choice(*COVER_SPACES), "where covers are measured ('raw': Fig. 2a)")
    n_neighbors: int = key(15, Int(low=2), "UMAP's neighbours")
    n_epochs: int | None = key(None, Nullable(Int(low=1)), "UMAP's optimisation epochs "
                                                           "(null: umap-learn's default)")
    probes: bool = key(True, Bool(), "linear probes on the val split")
    probe_k: int = key(10, Int(low=1), "probe training examples per class")
    probe_method: str = key("logistic", Choice("logistic", "ridge"))
    probe_train_spaces: str | tuple[str, ...] = key(
        "H", TRAIN_SPACES, "spaces probes are trained in, each scored in every space (Table 7)")
    token: str | None = key(None, Nullable(Choice(*TOKENS)), "'cls' or 'mean' reads 3-d outputs "
                            "as token sequences (ViT, BERT); null reads them as maps")
    pictures: tuple[str, ...] | None = key(None, Nullable(ListOf(Text())), "layers drawn as 2-D "
                                           "UMAP pictures (Fig. 1b, 12, 13); null = the top layer "
                                           "below the head; [] = none")
    picture_points: int = key(5000, Int(low=1), "examples drawn per picture at most")
    anchor: int | str | None = key(None, ANCHOR, "the class the pictures colour by distance to; "
                                                 "null = class 0")


@dataclass
class ManifoldInputs:
    """Everything :func:`manifold_metrics` needs besides the model and the epoch."""

    query: Labelled
    support: Labelled
    probe_train: Labelled | None
    probe_test: Labelled | None
    graph_distance: np.ndarray
    spaces: dict[str, LabelSpace | None]
    settings: ManifoldSettings
    split: str
    indices: dict[str, np.ndarray]
    """Sample indices into their splits: ``query`` and ``support`` (``split``), ``probe_train`` and
    ``probe_test`` (val)."""
    picture_points: int = 5000
    anchor: int = 0
    """The pictures' anchor class, an index."""


def labelled(split: Any, idx: np.ndarray) -> Labelled:
    """The examples ``idx`` (int array of shape (n,)) of a split: inputs (n, ...) and fine labels."""
    labels = split_labels(split)[idx]
    if isinstance(split, TensorSplit):
        return Labelled(split.x[torch.as_tensor(idx)], labels)
    return Labelled(torch.stack([torch.as_tensor(split[int(i)][0]) for i in idx]), labels)


def manifold_inputs(mf: ManifoldSection, ctx: ComponentContext) -> ManifoldInputs:
    """Draw the query/support and probe samples and gather the settings of the ``manifold:`` section."""
    bundle, seed = ctx.bundle, ctx.seed
    spaces = {"H": None, **ctx.spaces.hypernyms}
    check_train_spaces(mf.probe_train_spaces, list(spaces), ctx)
    try:
        settings = ManifoldSettings(dim=mf.dim, space=mf.space, seed=seed,
                                    n_neighbors=mf.n_neighbors, n_epochs=mf.n_epochs,
                                    probe_method=mf.probe_method,
                                    probe_train_spaces=mf.probe_train_spaces, token=mf.token)
        split = bundle.split(mf.split)
        qs = sample_query_support(split_labels(split), k=mf.k, seed=seed,
                                  num_classes=bundle.num_classes, allow_fewer=True)
        probe_train = probe_test = None
        indices = {"query": qs.query, "support": qs.support}
        if mf.probes:
            train_idx, test_idx = probe_split(split_labels(bundle.val), k=mf.probe_k, seed=seed,
                                              num_classes=bundle.num_classes, allow_fewer=True)
            probe_train, probe_test = labelled(bundle.val, train_idx), labelled(bundle.val, test_idx)
            indices.update(probe_train=train_idx, probe_test=test_idx)
    except ValueError as err:
        raise ctx.error("manifold", str(err)) from None
    return ManifoldInputs(labelled(split, qs.query), labelled(split, qs.support), probe_train,
                          probe_test, bundle.hierarchy.graph_distance_matrix(), spaces, settings,
                          mf.split, indices, mf.picture_points,
                          resolve_anchor(mf.anchor, bundle.hierarchy.classes, ctx))


def check_train_spaces(names: str | tuple[str, ...], known: list[str], ctx: ComponentContext) -> None:
    """``manifold.probe_train_spaces`` names only spaces of the run (H or a hypernym space)."""
    unknown = [] if isinstance(names, str) else [n for n in names if n not in known]
    if unknown:
        raise ctx.error("manifold.probe_train_spaces", f"names {unknown[0]!r}, which is not a space "
                        f"of this run (spaces: {', '.join(known)})")


def resolve_anchor(anchor: int | str | None, classes: list[str], ctx: ComponentContext) -> int:
    """``manifold.anchor`` as a class index (:func:`anchor_index`); errors name where it was set."""
    try:
        return anchor_index(anchor, classes)
    except ConfigError as err:
        raise ConfigError(f"{ctx.origins.of('manifold.anchor')}: {err}") from None


def resolve_layers(mf: ManifoldSection, model: torch.nn.Module, ctx: ComponentContext) -> list[str]:
    """``manifold.layers``, or the model's ``feature_layers`` when the list is empty."""
    layers = list(mf.layers) or list(getattr(model, "feature_layers", ()))
    if not layers:
        raise ctx.error("manifold.layers", "is empty and the model names no default layers; "
                        "list module names (see model.named_modules())")
    _check_modules("manifold.layers", layers, model, ctx)
    return layers


def picture_layers(mf: ManifoldSection, model: torch.nn.Module, head: torch.nn.Module,
                   layers: list[str], ctx: ComponentContext) -> list[str]:
    """``manifold.pictures``; by default the top analysed layer that is not the classifier
    ``head`` (the penultimate features of Fig. 1b and 12), or the top layer when all are."""
    if mf.pictures is not None:
        _check_modules("manifold.pictures", list(mf.pictures), model, ctx)
        return list(mf.pictures)
    modules = dict(model.named_modules())
    below = [name for name in layers if modules[name] is not head]
    return [(below or layers)[-1]]


def _check_modules(key: str, names: list[str], model: torch.nn.Module, ctx: ComponentContext) -> None:
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        close = difflib.get_close_matches(unknown[0], [m for m in modules if m], n=3, cutoff=0.5)
        hint = f"close matches: {', '.join(close)}" if close else "see model.named_modules()"
        raise ctx.error(key, f"names {unknown[0]!r}, which is not a module of the model ({hint})")


class ManifoldTracker(TrackerComponent):
    """Runs :func:`manifold_metrics` on the model at the measured epochs.

    ``epochs`` is the set of epochs to measure (see :func:`measured_epochs`).
    """

    name = "manifold"

    def __init__(self, section: ManifoldSection, ctx: ComponentContext, inputs: ManifoldInputs,
                 epochs: set[int]) -> None:
        self.section = section
        self.ctx = ctx
        self.inputs = inputs
        self.epochs = epochs
        self.progress = ctx.progress
        self.layers: list[str] = []
        self.picture_layers: list[str] = []
        self.pictures: list[Picture] = []

    def bind(self, model: torch.nn.Module, head: torch.nn.Linear) -> None:
        self.layers = resolve_layers(self.section, model, self.ctx)
        self.picture_layers = picture_layers(self.section, model, head, self.layers, self.ctx)

    def active(self, epoch: int) -> bool:
        return epoch in self.epochs

    def settings(self) -> dict[str, Any]:
        """Layers, UMAP settings and versions: umap-learn runs single-threaded (``n_jobs=1``) with the
        config's seed, the only way its embeddings are reproducible."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            umap_version: str | None = version("umap-learn")
        except PackageNotFoundError:
            umap_version = None
        return {"layers": self.layers, **self.inputs.settings.as_dict(),
                "pictures": self.picture_layers, "picture_points": self.inputs.picture_points,
                "anchor": self.inputs.anchor, "umap_n_jobs": 1, "umap_learn": umap_version,
                "torch_threads": torch.get_num_threads()}

    def artifacts(self) -> dict[str, np.ndarray]:
        """The indices of the sampled examples (the same at every epoch and in ``hypbias analyze``)
        and the 2-D pictures of every measured epoch (:func:`picture_arrays`)."""
        return {**self.inputs.indices, **picture_arrays(self.pictures)}

    def state_dict(self) -> dict[str, Any]:
        """The pictures drawn so far, as arrays, so a resumed run keeps them."""
        return {"pictures": picture_arrays(self.pictures)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        found = read_pictures({k: np.asarray(v) for k, v in state.get("pictures", {}).items()})
        self.pictures = [pic for by_epoch in found.values() for pic in by_epoch.values()]

    def end_epoch(self, epoch: int, model: torch.nn.Module | None) -> list[MetricRow]:
        if model is None:
            raise ValueError("ManifoldTracker needs the model: call Tracker.end_epoch(epoch, model=model)")
        if distributed.rank() != 0:  # every rank holds the same model; one analysis suffices
            return []
        inputs = self.inputs
        # one pass over the query and support examples serves the covers and the pictures
        features = cover_features(model, list(dict.fromkeys([*self.layers, *self.picture_layers])),
                                  inputs.query, inputs.support, inputs.settings)
        rows = analyse_model(model, self.layers, inputs, epoch, features, progress=self.progress)
        self.pictures += draw_pictures(features, self.picture_layers, inputs, epoch)
        return rows


def analyse_model(model: torch.nn.Module, layers: list[str], inputs: ManifoldInputs, epoch: int,
                  features: Mapping[str, torch.Tensor] | None = None,
                  progress: bool = True) -> list[MetricRow]:
    """The manifold rows of one model state; ``features``: its :func:`cover_features` of (at
    least) ``layers`` when already extracted."""
    return manifold_metrics(model, layers, inputs.query, inputs.support, inputs.graph_distance,
                            inputs.spaces, epoch=epoch, split=inputs.split,
                            probe_train=inputs.probe_train, probe_test=inputs.probe_test,
                            settings=inputs.settings, features=features, progress=progress)


def draw_pictures(features: Mapping[str, torch.Tensor], layers: list[str], inputs: ManifoldInputs,
                  epoch: int) -> list[Picture]:
    """The 2-D UMAP pictures of ``layers`` on the query and support examples (Fig. 1b, 12, 13), from
    their :func:`cover_features` (the pictures show what the covers measure)."""
    settings = inputs.settings
    return feature_pictures(features, layers, np.concatenate([inputs.query.y, inputs.support.y]),
                            len(inputs.graph_distance), epoch=epoch, seed=settings.seed,
                            max_points=inputs.picture_points, anchor=inputs.anchor,
                            n_neighbors=settings.n_neighbors, n_epochs=settings.n_epochs)


def measured_epochs(every: Any, last: int, ctx: ComponentContext) -> set[int]:
    """``manifold.every``: k (every k-th epoch and the last; 0 = never) or an explicit list of epochs.

    A list such as ``[0, 1, 2, 3, 5, 10, 30]`` measures densely where the geometry changes fastest;
    its epochs past the end of training (``last``) are dropped, so shortening a run keeps the early
    ones.
    """
    try:
        every = EVERY.parse(every)
    except Refused:
        raise ctx.origins.refuse("manifold.every", EVERY.describe(), every) from None
    if isinstance(every, tuple):
        return {e for e in every if e <= last}
    return set() if every == 0 else {*range(0, last + 1, every), last}


@register_component(ManifoldSection)
def build_manifold_tracker(section: ManifoldSection, ctx: ComponentContext) -> ManifoldTracker | None:
    """Off when ``every`` is 0 (or lists no epoch of the run)."""
    epochs = measured_epochs(section.every, ctx.epochs, ctx)
    if not epochs:
        return None
    return ManifoldTracker(section, ctx, manifold_inputs(section, ctx), epochs)


__all__ = ["ManifoldInputs", "ManifoldSection", "ManifoldTracker", "analyse_model", "check_train_spaces",
           "draw_pictures", "manifold_inputs", "measured_epochs", "picture_layers", "resolve_anchor",
           "resolve_layers"]
