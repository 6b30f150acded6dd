"""Model adapters: the split at the final linear layer, missing packages, and (where the packages
import) torchvision, timm and Hugging Face models against their own forward pass."""

from __future__ import annotations

import copy
import re
import sys
from collections import namedtuple

import pytest
import torch
from torch import nn

from hypbias.errors import MissingDependencyError
from hypbias.models import Classifier, create, list_models
from hypbias.models.adapters import (
    AdaptedClassifier,
    TextClassifier,
    _from_hf,
    _from_timm,
    split_final_linear,
    wrap_classifier,
)


def _toy(bias: bool = True) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 4, bias=bias)))


def _check_split(adapted: Classifier, reference: nn.Module, x, num_features: int) -> None:
    """The adapted model computes the reference's logits, and logits = head(features)."""
    adapted.eval()
    reference.eval()
    with torch.no_grad():
        logits, feats = adapted.forward_with_features(x)
        ref = reference(**x) if isinstance(x, dict) else reference(x)
    ref = getattr(ref, "logits", ref)
    assert feats.shape == (len(logits), num_features)
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, feats @ adapted.head.weight.T + adapted.head.bias)


# ---------------------------------------------------------------- package-free behaviour


def test_wrap_classifier_splits_at_the_last_linear():
    model = _toy()
    adapted = wrap_classifier(copy.deepcopy(model))
    assert isinstance(adapted.body[2][0], nn.Identity)
    assert adapted.head.weight.shape == (4, 8)
    x = torch.randn(3, 5)
    _check_split(adapted, model, x, 8)
    torch.testing.assert_close(adapted.features(x), model[1](model[0](x)))


@pytest.mark.parametrize("bias", [True, False])
def test_the_original_networks_state_dict_loads(bias):
    trained = _toy(bias)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p))
    adapted = wrap_classifier(_toy(bias))
    assert adapted.source_head == "2.0"
    adapted.load_state_dict(adapted.from_source_state_dict(trained.state_dict()))
    _check_split(adapted, trained, torch.randn(3, 5), 8)


def test_wrap_classifier_resizes_the_head():
    adapted = wrap_classifier(_toy(), num_classes=7)
    assert (adapted.num_features, adapted.num_classes) == (8, 7)
    assert adapted(torch.randn(2, 5)).shape == (2, 7)


def test_a_head_without_bias_gets_a_zero_bias_and_the_same_outputs():
    model = _toy(bias=False)
    adapted = wrap_classifier(copy.deepcopy(model))
    assert torch.equal(adapted.head.bias, torch.zeros(4))
    _check_split(adapted, model, torch.randn(3, 5), 8)


class _TupleNet(nn.Module):
    """Returns a named tuple in training mode, like torchvision's Inception and GoogLeNet."""

    Out = namedtuple("Out", ["logits", "aux_logits"])

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(5, 8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        logits = self.fc(self.body(x))
        return self.Out(logits, logits.detach()) if self.training else logits


def test_structured_outputs_give_the_features():
    net = _TupleNet()
    adapted = wrap_classifier(copy.deepcopy(net)).train()
    x = torch.randn(2, 5)
    torch.testing.assert_close(adapted.features(x), net.body(x))
    torch.testing.assert_close(adapted(x), net(x).logits)


def test_no_linear_layer_is_reported():
    with pytest.raises(ValueError, match=r"^Sequential has no nn.Linear sub-layer to use as the head$"):
        split_final_linear(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten()))


def test_adapter_prefixes_are_registered():
    names = list_models()
    assert {"torchvision:*", "timm:*", "hf:*"} <= set(names)


@pytest.mark.parametrize(("name", "package", "extra"), [
    ("torchvision:resnet18", "torchvision", "vision"),
    ("timm:resnet18", "timm", "vision"),
    ("hf:bert-base-uncased", "transformers", "text"),
])
def test_missing_package_names_the_extra(monkeypatch, name, package, extra):
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` fail
    with pytest.raises(MissingDependencyError, match=re.escape(
            f"needs the optional package '{package}', which is not installed. "
            f"Install it with: pip install 'hypbias[{extra}]'  (or: pip install {package})")):
        create(name, 10)


def _fake_package(tmp_path, monkeypatch, name: str, body: str) -> None:
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_a_missing_dependency_of_the_package_is_named(tmp_path, monkeypatch):
    _fake_package(tmp_path, monkeypatch, "timm", "import torchvision\n")
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(MissingDependencyError, match="^" + re.escape(
            "The timm model adapter imports 'timm', which needs the optional package 'torchvision', "
            "which is not installed. Install it with: pip install 'hypbias[vision]'  "
            "(or: pip install torchvision)") + "$"):
        create("timm:resnet18", 10)


def test_a_broken_package_reports_its_own_error(tmp_path, monkeypatch):
    _fake_package(tmp_path, monkeypatch, "torchvision",
                  "raise ImportError('libtorchvision.so: undefined symbol: _ZN3c10')\n")
    with pytest.raises(MissingDependencyError, match=re.escape(
            "The torchvision model adapter: 'import torchvision' failed (ImportError: "
            "libtorchvision.so: undefined symbol: _ZN3c10). Reinstall it for this torch")):
        create("torchvision:resnet18", 10)


def test_bad_num_classes_is_reported_before_importing():
    with pytest.raises(ValueError, match=re.escape(
            "The 'num_classes' parameter of timm:resnet18 must be an int >= 1. Got 0 instead.")):
        create("timm:resnet18", 0)


# ---------------------------------------------------------------- torchvision


@pytest.fixture
def no_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a weight download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.mark.parametrize(("name", "kwargs", "num_features", "size"), [
    ("resnet18", {}, 512, 32),
    ("mobilenet_v3_small", {}, 1024, 32),
    ("vit_b_16", {"image_size": 32}, 768, 32),
])
def test_torchvision_models_split_like_their_forward(no_downloads, name, kwargs, num_features,
                                                     size):
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    adapted = create(f"torchvision:{name}", 6, **kwargs)
    assert isinstance(adapted, AdaptedClassifier)
    assert isinstance(adapted.head, nn.Linear)
    assert (adapted.num_features, adapted.num_classes) == (num_features, 6)
    reference = tv.models.get_model(name, weights=None, num_classes=6, **kwargs)
    _check_split(wrap_classifier(copy.deepcopy(reference)), reference,
                 torch.randn(2, 3, size, size), num_features)


def test_torchvision_errors():
    pytest.importorskip("torchvision")
    with pytest.raises(ValueError, match=re.escape("Got 'resnet7' instead.")):
        create("torchvision:resnet7", 10)
    with pytest.raises(ValueError, match=re.escape(
            "The 'in_channels' parameter of torchvision:resnet18 must be 3 (torchvision models "
            "take RGB images). Got 1 instead.")):
        create("torchvision:resnet18", 10, in_channels=1)


# ---------------------------------------------------------------- timm


@pytest.mark.parametrize(("name", "kwargs", "num_features"), [
    ("resnet18", {}, 512),
    ("vit_tiny_patch16_224", {"img_size": 32}, 192),
    ("convnext_atto", {}, 320),
])
def test_timm_models_split_like_their_forward(no_downloads, name, kwargs, num_features):
    timm = pytest.importorskip("timm")
    adapted = create(f"timm:{name}", 6, **kwargs)
    assert (adapted.num_features, adapted.num_classes) == (num_features, 6)
    torch.manual_seed(0)
    reference = timm.create_model(name, num_classes=6, **kwargs)
    x = torch.randn(2, 3, 32, 32)
    _check_split(_from_timm(copy.deepcopy(reference)), reference, x, num_features)
    reference.eval()
    with torch.no_grad():
        pooled = reference.forward_head(reference.forward_features(x), pre_logits=True)
        torch.testing.assert_close(_from_timm(copy.deepcopy(reference)).eval().features(x), pooled)


def test_timm_in_channels_and_unknown_name():
    pytest.importorskip("timm")
    model = create("timm:resnet18", 3, in_channels=1)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 3)
    with pytest.raises(ValueError, match=re.escape("Got 'not_a_model' instead.")):
        create("timm:not_a_model", 3)


# ---------------------------------------------------------------- Hugging Face


def _tiny_configs(transformers):
    common = {"vocab_size": 64, "num_labels": 4, "pad_token_id": 0}
    return {
        "bert": transformers.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=32, **common),
        "roberta": transformers.RobertaConfig(hidden_size=16, num_hidden_layers=1,
                                              num_attention_heads=2, intermediate_size=32,
                                              max_position_embeddings=40, **common),
        "gpt2": transformers.GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=32, **common),
    }


def _ids(n: int = 3, length: int = 10) -> torch.Tensor:
    ids = torch.randint(3, 64, (n, length), generator=torch.Generator().manual_seed(0))
    ids[0, 7:] = 0  # padding at the end of the first sequence
    return ids


@pytest.mark.parametrize("family", ["bert", "roberta", "gpt2"])
def test_hf_models_split_like_their_forward(family):
    transformers = pytest.importorskip("transformers")
    config = _tiny_configs(transformers)[family]
    torch.manual_seed(0)
    reference = transformers.AutoModelForSequenceClassification.from_config(config)
    adapted = _from_hf(copy.deepcopy(reference))
    assert isinstance(adapted, TextClassifier)
    ids = _ids()
    inputs = {"input_ids": ids, "attention_mask": (ids != 0).long()}
    _check_split(adapted, reference, inputs, 16)
    adapted.eval()
    with torch.no_grad():
        torch.testing.assert_close(adapted(ids), adapted(inputs))


def test_hf_from_a_local_directory(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    reference = transformers.BertForSequenceClassification(_tiny_configs(transformers)["bert"])
    reference.save_pretrained(tmp_path)
    fresh = create(f"hf:{tmp_path}", 5, hidden_dropout_prob=0.0)
    assert (fresh.num_features, fresh.num_classes) == (16, 5)
    assert fresh.body.config.hidden_dropout_prob == 0.0

    loaded = create(f"hf:{tmp_path}", 4, pretrained=True)
    ids = _ids()
    _check_split(loaded, reference, {"input_ids": ids, "attention_mask": (ids != 0).long()}, 16)
    resized = create(f"hf:{tmp_path}", 3, pretrained=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(resized.features(ids), loaded.eval().features(ids))
    assert resized.num_classes == 3
