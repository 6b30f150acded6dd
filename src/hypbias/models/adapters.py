"""Adapters: torchvision, timm and Hugging Face models behind the :class:`Classifier` interface.

``create("torchvision:resnet50", C)``, ``create("timm:vit_base_patch16_224", C)`` and
``create("hf:bert-base-uncased", C)`` build the external network, detach its final linear layer as
``head`` (a fresh ``nn.Linear(D, C)`` when the network's own has another number of outputs) and
leave an identity in its place, so that the rest of the network (``body``) returns the
penultimate features of shape (N, D): the pooled representation the final layer reads.

Weights are downloaded only when ``pretrained=True``. The packages are imported when an adapter
is first used; a missing one raises :class:`~hypbias.errors.MissingDependencyError` naming the
extra to install (``vision`` or ``text``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import torch
from torch import nn

from hypbias._validation import check_int
from hypbias.errors import MissingDependencyError, missing_dependency
from hypbias.models.base import Classifier
from hypbias.models.registry import register_prefix


def _require(package: str, extra: str, purpose: str) -> ModuleType:
    """Import ``package``, or raise an error that names what is really missing or broken.

    ``package`` itself absent: the extra to install. A package it imports absent (timm without
    torchvision): that package. Any other import failure (a torchvision built for another torch
    says "undefined symbol" or "operator does not exist"): the original message.
    """
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as err:
        missing = (err.name or "").partition(".")[0]
        if missing in ("", package):
            raise missing_dependency(package, extra, purpose) from None
        raise missing_dependency(missing, extra, f"{purpose} imports '{package}', which") from None
    except ImportError as err:
        raise MissingDependencyError(
            f"{purpose}: 'import {package}' failed ({type(err).__name__}: {err}). Reinstall it for "
            f"this torch {torch.__version__} (see the torch / torchvision pairing in the README)."
        ) from None


def _with_bias(head: nn.Linear) -> nn.Linear:
    """``head`` itself, or for a layer without bias an equal one with a zero bias (C,)."""
    if head.bias is not None:
        return head
    full = nn.Linear(head.in_features, head.out_features, device=head.weight.device,
                     dtype=head.weight.dtype)
    with torch.no_grad():
        full.weight.copy_(head.weight)
        full.bias.zero_()
    return full


def _resized(head: nn.Linear, num_classes: int | None) -> nn.Linear:
    """``head`` when it has ``num_classes`` outputs (or ``None``), else a fresh ``nn.Linear``."""
    if num_classes is None or head.out_features == num_classes:
        return _with_bias(head)
    return nn.Linear(head.in_features, num_classes, device=head.weight.device,
                     dtype=head.weight.dtype)


class AdaptedClassifier(Classifier):
    """An external network split into ``body`` (up to the final linear layer) and ``head``.

    ``features(x)`` runs ``body`` and returns its output, shape (N, D); when the body returns a
    structured output (torchvision's Inception/GoogLeNet tuples in training mode), its ``logits``
    field, which now holds the features. ``source_head`` is the final layer's name in the
    original network (``"fc"``, ``"heads.head"``), so that the network's own state dicts load
    (:meth:`from_source_state_dict`).
    """

    def __init__(self, body: nn.Module, head: nn.Linear, source_head: str = "") -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.source_head = source_head

    def from_source_state_dict(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state dict of the original network (as its own training script saved it) with the
        keys of this model: ``<source_head>.*`` becomes ``head.*``, everything else ``body.*``."""
        prefix = f"{self.source_head}."
        mapped = {(f"head.{k[len(prefix):]}" if k.startswith(prefix) else f"body.{k}"): v
                  for k, v in state.items()}
        if "head.weight" in mapped and "head.bias" not in mapped:  # a layer without bias
            mapped["head.bias"] = torch.zeros_like(mapped["head.weight"][:, 0])
        return mapped

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return getattr(out, "logits", out)


class TextClassifier(AdaptedClassifier):
    """A Hugging Face sequence classifier: inputs are token ids or a mapping of model inputs.

    ``features(x)`` accepts ``input_ids`` of shape (N, L), whose attention mask is
    ``input_ids != pad_token_id`` (no mask when the model defines no padding token), or a mapping
    such as a tokenizer's output, passed on as keyword arguments.
    """

    def __init__(self, body: nn.Module, head: nn.Linear, pad_token_id: int | None,
                 source_head: str = "") -> None:
        super().__init__(body, head, source_head)
        self.pad_token_id = pad_token_id

    def features(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        if isinstance(x, Mapping):
            return self.body(**x).logits
        mask = None if self.pad_token_id is None else (x != self.pad_token_id).long()
        return self.body(input_ids=x, attention_mask=mask).logits


def split_final_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """Detach the last ``nn.Linear`` registered in ``model``, leaving an identity; return its name
    and the layer.

    The classification layer is registered last in torchvision's and Hugging Face's models
    (``fc``, ``classifier[-1]``, ``heads.head``, ``classifier.out_proj``, ``score``), and it is the
    last operation of the forward pass, so what the model returns afterwards is its input.
    """
    name = ""
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module_name:
            name = module_name
    if not name:
        raise ValueError(f"{type(model).__name__} has no nn.Linear sub-layer to use as the head")
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    head = getattr(parent, attr)
    setattr(parent, attr, nn.Identity())
    return name, head


def wrap_classifier(model: nn.Module, num_classes: int | None = None) -> AdaptedClassifier:
    """Adapt any network whose last registered ``nn.Linear`` is its output layer.

    ``num_classes``: the number of outputs wanted; ``None`` keeps the network's own. A head of
    another size is replaced by a fresh ``nn.Linear(D, num_classes)``.
    """
    name, head = split_final_linear(model)
    return AdaptedClassifier(model, _resized(head, num_classes), name)


@register_prefix("torchvision")
def torchvision_model(name: str, num_classes: int, pretrained: bool = False,
                      in_channels: int = 3, **kwargs: Any) -> AdaptedClassifier:
    """``torchvision:<name>``: a classification model of ``torchvision.models``.

    ``pretrained=True`` loads the ``DEFAULT`` weights (a download unless cached); otherwise the
    network is built with ``num_classes`` outputs and its own initialisation. ``kwargs`` go to the
    model builder (e.g. ``image_size=32`` for ViTs, ``dropout``).
    """
    owner = f"torchvision:{name}"
    check_int(num_classes, "num_classes", owner, low=1)
    tv = _require("torchvision", "vision", "The torchvision model adapter")
    if name not in tv.models.list_models(module=tv.models):
        raise ValueError(f"The 'name' parameter of the torchvision adapter must name a model of "
                         f"torchvision.models.list_models(module=torchvision.models). "
                         f"Got {name!r} instead.")
    if in_channels != 3:
        raise ValueError(f"The 'in_channels' parameter of {owner} must be 3 (torchvision models "
                         f"take RGB images). Got {in_channels!r} instead.")
    if pretrained:
        model = tv.models.get_model(name, weights="DEFAULT", **kwargs)
    else:
        model = tv.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    return wrap_classifier(model, num_classes)


def _from_timm(model: nn.Module, num_classes: int | None = None) -> AdaptedClassifier:
    """Split a timm model with its own API: ``get_classifier()`` and ``reset_classifier(0)``."""
    head = model.get_classifier()
    if not isinstance(head, nn.Linear):
        raise ValueError(f"{type(model).__name__}'s classifier is a {type(head).__name__}; "
                         f"hypbias needs an nn.Linear final layer")
    name = next(n for n, m in model.named_modules() if m is head)
    model.reset_classifier(0)
    return AdaptedClassifier(model, _resized(head, num_classes), name)


@register_prefix("timm")
def timm_model(name: str, num_classes: int, pretrained: bool = False, in_channels: int = 3,
               **kwargs: Any) -> AdaptedClassifier:
    """``timm:<name>``: any ``timm.create_model`` name (a pretrained tag such as ``.a1_in1k`` too).

    timm builds the classifier with ``num_classes`` outputs, keeping pretrained classifier weights
    only when their size matches. ``in_channels`` becomes timm's ``in_chans``; ``kwargs`` go to
    ``create_model`` (e.g. ``img_size=32``, ``drop_rate``).
    """
    check_int(num_classes, "num_classes", f"timm:{name}", low=1)
    timm = _require("timm", "vision", "The timm model adapter")
    if ":" not in name and not timm.is_model(name):
        raise ValueError(f"The 'name' parameter of the timm adapter must name a model of "
                         f"timm.list_models(). Got {name!r} instead.")
    model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes,
                              in_chans=in_channels, **kwargs)
    return _from_timm(model, num_classes)


def _from_hf(model: nn.Module) -> TextClassifier:
    """Split a ``*ForSequenceClassification`` model at its final linear layer."""
    name, head = split_final_linear(model)
    if head.out_features != model.config.num_labels:
        raise ValueError(f"{type(model).__name__}: the last nn.Linear has {head.out_features} "
                         f"outputs, not the {model.config.num_labels} labels of the model")
    return TextClassifier(model, _with_bias(head), model.config.pad_token_id, name)


@register_prefix("hf")
def hf_model(name: str, num_classes: int, pretrained: bool = False,
             **kwargs: Any) -> TextClassifier:
    """``hf:<name or directory>``: ``AutoModelForSequenceClassification`` with C labels.

    ``pretrained=False`` reads only the configuration (``config.json``) and initialises the
    weights; ``pretrained=True`` loads them, with a fresh classifier when the checkpoint's has
    another number of labels. ``kwargs`` override configuration fields (e.g.
    ``hidden_dropout_prob``). Features: what the model's final linear layer reads (BERT's pooled
    output, RoBERTa's classification-head activations, GPT-2's last-token state).
    """
    check_int(num_classes, "num_classes", f"hf:{name}", low=1)
    transformers = _require("transformers", "text", "The Hugging Face model adapter")
    config = transformers.AutoConfig.from_pretrained(name, num_labels=num_classes, **kwargs)
    auto = transformers.AutoModelForSequenceClassification
    if pretrained:
        model = auto.from_pretrained(name, config=config, ignore_mismatched_sizes=True)
    else:
        model = auto.from_config(config)
    return _from_hf(model)
