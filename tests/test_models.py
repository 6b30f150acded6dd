"""The model registry and the interface every built-in model honours."""

from __future__ import annotations

import pytest
import torch

from hypbias import models

SHAPES = {"mlp": (dict(in_features=20), (5, 20)), "small_cnn": (dict(in_channels=3), (5, 3, 16, 16))}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_models_expose_features_and_head(name):
    kwargs, shape = SHAPES[name]
    torch.manual_seed(0)
    model = models.create(name, num_classes=7, **kwargs).eval()
    x = torch.randn(shape)
    logits, feats = model.forward_with_features(x)
    assert logits.shape == (5, 7) and feats.shape == (5, model.num_features)
    torch.testing.assert_close(logits, feats @ model.head.weight.T + model.head.bias)
    torch.testing.assert_close(model(x), logits)
    assert model.num_classes == 7


def test_unknown_model_and_bad_parameters():
    with pytest.raises(ValueError, match="'name' parameter of create must be one of .*mlp.*Got 'nope'"):
        models.create("nope", num_classes=3)
    with pytest.raises(ValueError, match="'in_features' parameter of MLP must be an int >= 1. Got 0 inst"):
        models.create("mlp", num_classes=3, in_features=0)
    with pytest.raises(ValueError, match="registered twice"):
        models.register_model("mlp")(lambda num_classes: None)
