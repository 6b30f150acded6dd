"""Probe types compared on one checkpoint (paper App. C.4, Fig. 14).

The paper compares few-shot probes (closed-form ridge and logistic regression on 10 examples per
class, App. C.4.2) with probes trained on the whole training set (App. C.4.1) whose features are
average-pooled with large, medium or small windows, giving small, balanced and large probes. Its
trained probes learn alongside the network with the gradient stopped; on a checkpoint the same
linear layers are fitted here on the frozen features of many training examples per class
(multinomial logistic regression, L-BFGS), which for a fully trained network is the state they
converge to. Where the data allow means: layers with spatial maps get three window sizes; for
vector outputs the three coincide and one "trained" probe is fitted.

Rows ``probe_accuracy@probe=<kind>`` (per layer, in each space), kinds:

* ``fewshot-ridge``, ``fewshot-logistic``: trained on ``few`` with the medium window;
* ``trained-small``, ``trained-balanced``, ``trained-large``: trained on ``many`` with global,
  2×2 and 4×4 average pooling (``trained`` alone for vector outputs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from hypbias.analysis.manifold import Labelled
from hypbias.analysis.metric_names import param_metric
from hypbias.analysis.probes import LinearProbe
from hypbias.labelspace import LabelSpace
from hypbias.metrics.rows import MetricRow, metric_row
from hypbias.models.layers import extract_features

TRAINED_WINDOWS = {"trained-small": ("avg", 1), "trained-balanced": ("avg", 2),
                   "trained-large": ("avg", 4)}
"""Fig. 14's trained probes: a large pooling window gives a small probe, and so on."""

FEW_SHOT_WINDOW = ("avg", 2)
"""The medium window of the few-shot probes (App. C.4.2)."""


def probe_comparison(model: nn.Module, layers: Sequence[str], many: Labelled, few: Labelled,
                     test: Labelled, spaces: Mapping[str, LabelSpace | None], num_classes: int, *,
                     epoch: int, split: str = "val", token: str | None = None,
                     batch_size: int = 512, max_iter: int = 200) -> list[MetricRow]:
    """Few-shot and trained probes of ``layers``, each trained in H and scored in every space.

    Parameters
    ----------
    model : nn.Module (eval mode for the passes, its mode restored)
    layers : module names, bottom to top
    many : many examples per class of the training split, for the trained probes
    few : K_probe examples per class of the evaluation split, for the few-shot probes
    test : the rest of the evaluation split, where every probe is scored
    spaces : name -> LabelSpace (None for H)
    num_classes : C
    epoch, split : written in the rows (``split`` is where ``test`` comes from)
    token : ``"cls"``/``"mean"`` for sequence outputs (:mod:`hypbias.models.layers`)

    Returns
    -------
    rows ``probe_accuracy@probe=<kind>`` per layer and space.
    """
    every = {FEW_SHOT_WINDOW, *TRAINED_WINDOWS.values()}
    read = {"many": (many, every), "few": (few, {FEW_SHOT_WINDOW}), "test": (test, every)}
    feats: dict[Any, dict[str, dict[str, torch.Tensor]]] = {window: {} for window in every}
    for name, (sample, windows) in read.items():  # the few-shot sample is read in one window only
        for window in windows:
            feats[window][name] = extract_features(model, sample.x, layers, window, batch_size, token)
    rows: list[MetricRow] = []
    for layer in layers:
        probes: dict[str, tuple[Any, Labelled, LinearProbe]] = {
            "fewshot-ridge": (FEW_SHOT_WINDOW, few, LinearProbe("ridge")),
            "fewshot-logistic": (FEW_SHOT_WINDOW, few, LinearProbe("logistic", max_iter=max_iter)),
        }
        widths = {kind: feats[w]["many"][layer].shape[1] for kind, w in TRAINED_WINDOWS.items()}
        if len(set(widths.values())) == 1:  # a vector output: every window gives the same probe
            probes["trained"] = (FEW_SHOT_WINDOW, many, LinearProbe("logistic", max_iter=max_iter))
        else:
            probes.update({kind: (window, many, LinearProbe("logistic", max_iter=max_iter))
                           for kind, window in TRAINED_WINDOWS.items()})
        for kind, (window, train, learner) in probes.items():
            source = "few" if train is few else "many"
            learner.fit(feats[window][source][layer], train.y, num_classes)
            scores = learner.score(feats[window]["test"][layer], test.y, spaces)
            rows += [metric_row(epoch, split, name, param_metric("probe_accuracy", probe=kind), v,
                                layer) for name, v in scores.items()]
    return rows


__all__ = ["FEW_SHOT_WINDOW", "TRAINED_WINDOWS", "probe_comparison"]
