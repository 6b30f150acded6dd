"""The interface every registered model honours, checked on every entry of the registry.

Each name of :func:`hypbias.models.list_models` (built-ins and one example per adapter family,
skipped when its package is not installed) gets: penultimate features of shape (N, D), a head that
is an ``nn.Linear`` with D inputs and C outputs, ``forward == head(features)``, hookable
``feature_layers``, and one training step that leaves nothing non-finite. A model registered
without an entry in ``INPUTS`` fails :func:`test_every_registered_model_has_an_interface_case`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from hypbias import models
from hypbias.models import LayerFeatures

NUM_CLASSES = 5
N = 6


@dataclass(frozen=True)
class Spec:
    """How to build and feed one registered name: ``create(name or example, C, **kwargs)``."""

    inputs: Callable[[], Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    example: str | None = None  # the concrete name for an adapter family "<prefix>:*"
    package: str | None = None  # skip when it is not installed


def _images(size: int = 16) -> Callable[[], torch.Tensor]:
    return lambda: torch.randn(N, 3, size, size)


def _tiny_bert(directory: Path) -> str:
    transformers = pytest.importorskip("transformers")
    transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, max_position_embeddings=16,
                            hidden_dropout_prob=0.0).save_pretrained(directory)
    return f"hf:{directory}"


INPUTS = {
    "mlp": Spec(lambda: torch.randn(N, 20), {"in_features": 20, "hidden": (16, 12)}),
    "bow": Spec(lambda: torch.rand(N, 30), {"in_features": 30, "embed_dim": 8, "hidden": (12,)}),
    "small_cnn": Spec(_images(), {"widths": (4, 8)}),
    "cifar_resnet18": Spec(_images(), {"base_width": 4}),
    "cifar_resnet34": Spec(_images(), {"base_width": 4}),
    "torchvision:*": Spec(_images(32), example="torchvision:resnet18", package="torchvision"),
    "timm:*": Spec(_images(32), example="timm:resnet18", package="timm"),
    "hf:*": Spec(lambda: torch.randint(1, 40, (N, 8)), example="<tiny bert>", package="transformers"),
}


def test_every_registered_model_has_an_interface_case():
    missing = sorted(set(models.list_models()) - set(INPUTS))
    assert not missing, f"registered models without an entry in INPUTS of {__file__}: {missing}"


def _build(name: str, tmp_path: Path) -> tuple[models.Classifier, Any]:
    spec = INPUTS[name]
    if spec.package:
        pytest.importorskip(spec.package)
    target = _tiny_bert(tmp_path) if name == "hf:*" else spec.example or name
    torch.manual_seed(0)
    return models.create(target, NUM_CLASSES, **spec.kwargs), spec.inputs()


@pytest.mark.parametrize("name", models.list_models())
def test_features_head_and_forward(name, tmp_path):
    model, x = _build(name, tmp_path)
    model.eval()
    head = model.head
    assert isinstance(head, nn.Linear) and head.out_features == NUM_CLASSES
    with torch.no_grad():
        feats = model.features(x)
        logits = model(x)
        both = model.forward_with_features(x)
    assert feats.shape == (N, model.num_features) and head.in_features == model.num_features
    torch.testing.assert_close(logits, head(feats))
    torch.testing.assert_close(logits, feats @ head.weight.T + head.bias)
    torch.testing.assert_close(both[0], logits)
    torch.testing.assert_close(both[1], feats)
    assert model.num_classes == NUM_CLASSES


@pytest.mark.parametrize("name", models.list_models())
def test_feature_layers_can_be_hooked(name, tmp_path):
    model, x = _build(name, tmp_path)
    layers = model.feature_layers
    assert isinstance(layers, tuple)
    if not layers:
        pytest.skip(f"{name} declares no feature layers (allowed: 'empty when unknown')")
    with LayerFeatures(model.eval(), layers) as recorder, torch.no_grad():
        model(x)
        out = recorder.collect()
    assert list(out) == list(layers)
    for layer, values in out.items():
        assert values.ndim == 2 and values.shape[0] == N, layer
        assert torch.isfinite(values).all(), layer


@pytest.mark.parametrize("name", models.list_models())
def test_one_training_step_stays_finite(name, tmp_path):
    model, x = _build(name, tmp_path)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    y = torch.arange(N) % NUM_CLASSES
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    for param_name, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), param_name
    before = model.head.weight.detach().clone()
    optimizer.step()
    assert not torch.equal(model.head.weight, before)
    for param_name, p in model.named_parameters():
        assert torch.isfinite(p).all(), param_name
    with torch.no_grad():
        assert torch.isfinite(model.eval()(x)).all()


def test_unknown_model_and_bad_parameters():
    with pytest.raises(ValueError, match="'name' parameter of create must be one of .*mlp.*Got 'nope'"):
        models.create("nope", num_classes=3)
    with pytest.raises(ValueError, match="'in_features' parameter of MLP must be an int >= 1. Got 0 inst"):
        models.create("mlp", num_classes=3, in_features=0)
    with pytest.raises(ValueError, match="registered twice"):
        models.register_model("mlp")(lambda num_classes: None)
