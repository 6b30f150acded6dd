"""LayerFeatures: hooks by module name, pooling shapes and values, hook removal, batching."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from hypbias.models import create
from hypbias.models.layers import LayerFeatures, extract_features, pool_features


@pytest.fixture
def cnn() -> nn.Module:
    torch.manual_seed(0)
    return create("small_cnn", num_classes=5, in_channels=3, widths=(4, 6)).eval()


def test_pooling_modes_give_the_documented_shapes_and_values():
    maps = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    torch.testing.assert_close(pool_features(maps, "max"), maps.amax(dim=(2, 3)))
    torch.testing.assert_close(pool_features(maps, "avg"), maps.mean(dim=(2, 3)))
    windowed = pool_features(maps, ("avg", 2))
    assert windowed.shape == (2, 3 * 2 * 2)
    assert windowed[0, 0] == maps[0, 0, :2, :2].mean()
    assert pool_features(maps, ("max", 1)).shape == (2, 3)
    assert pool_features(maps, "flatten").shape == (2, 48)
    assert pool_features(torch.ones(2, 3, 5), "max").shape == (2, 3)  # 1-d maps
    vectors = torch.randn(2, 7)
    torch.testing.assert_close(pool_features(vectors, "max"), vectors)
    torch.testing.assert_close(pool_features(vectors, ("avg", 3)), vectors)


def test_features_of_a_cnn_by_module_name(cnn):
    x = torch.randn(6, 3, 8, 8)
    with LayerFeatures(cnn, ["blocks.block1", "blocks.block2.0", "head"]) as lf:
        logits = cnn(x)
        feats = lf.collect()
    assert list(feats) == ["blocks.block1", "blocks.block2.0", "head"]
    assert feats["blocks.block1"].shape == (6, 4)
    assert feats["blocks.block2.0"].shape == (6, 6)
    torch.testing.assert_close(feats["head"], logits)
    torch.testing.assert_close(feats["blocks.block1"], cnn.blocks.block1(x).amax(dim=(2, 3)))


def test_hooks_are_removed_on_exit_and_on_close(cnn):
    with LayerFeatures(cnn, ["blocks.block1", "head"]) as lf:
        assert cnn.head._forward_hooks
    assert not lf.active
    assert all(not m._forward_hooks for m in cnn.modules())
    lf = LayerFeatures(cnn, ["head"])
    lf.close()
    assert not cnn.head._forward_hooks
    with pytest.raises(RuntimeError, match="no output recorded for layer 'head'"):
        lf.collect()


def test_hooks_are_removed_when_the_forward_pass_fails(cnn):
    with pytest.raises(RuntimeError), LayerFeatures(cnn, ["head"]):
        cnn(torch.randn(2, 5, 8, 8))  # wrong channel count
    assert not cnn.head._forward_hooks


def test_batches_concatenate_and_collect_clears(cnn):
    x = torch.randn(10, 3, 8, 8)
    with LayerFeatures(cnn, ["blocks.block2"], pool=("avg", 2)) as lf:
        cnn(x[:4])
        cnn(x[4:])
        batched = lf.collect()["blocks.block2"]
        cnn(x)
        whole = lf.collect()["blocks.block2"]
    assert batched.shape == (10, 6 * 4)
    torch.testing.assert_close(batched, whole)


def test_extract_features_restores_the_training_mode_and_matches_one_pass(cnn):
    x = torch.randn(9, 3, 8, 8)
    cnn.train()
    feats = extract_features(cnn, x, ["blocks.block1"], batch_size=4)
    assert cnn.training
    cnn.eval()
    with LayerFeatures(cnn, ["blocks.block1"]) as lf:
        cnn(x)
        torch.testing.assert_close(feats["blocks.block1"], lf.collect()["blocks.block1"])


def test_modules_returning_tuples_contribute_their_first_element():
    lstm = nn.Sequential()
    lstm.add_module("rnn", nn.LSTM(3, 4, batch_first=True))
    with LayerFeatures(lstm, ["rnn"], pool="flatten") as lf:
        out, _ = lstm.rnn(torch.randn(2, 5, 3))
        torch.testing.assert_close(lf.collect()["rnn"], out.flatten(1))


def test_unknown_layer_names_list_close_matches(cnn):
    with pytest.raises(ValueError, match=re.escape(
            "The 'layers' parameter of LayerFeatures names unknown module 'blocks.blok1'; "
            "close matches: 'blocks.block1'")):
        LayerFeatures(cnn, ["blocks.blok1"])
    with pytest.raises(ValueError, match=re.escape(
            "The 'layers' parameter of LayerFeatures must be a non-empty list of module names. "
            "Got 'head' instead.")):
        LayerFeatures(cnn, "head")
    with pytest.raises(ValueError, match=re.escape(
            "The 'pool' parameter of LayerFeatures must be one of 'max', 'avg', 'flatten'. "
            "Got 'median' instead.")):
        LayerFeatures(cnn, ["head"], pool="median")
    assert not cnn.head._forward_hooks


class TinyEncoder(nn.Module):
    """A sequence model shaped like a ViT: tokens (N, T, D) with a class token prepended."""

    def __init__(self, dim: int = 6, tokens: int = 4) -> None:
        super().__init__()
        self.embed = nn.Linear(3, dim)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.blocks = nn.Sequential(nn.TransformerEncoderLayer(dim, 2, 12, batch_first=True,
                                                               dropout=0.0))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), self.embed(x)], dim=1)
        return self.head(self.norm(self.blocks(tokens))[:, 0])


def test_token_option_keeps_the_class_token_or_the_token_mean_of_sequence_outputs():
    torch.manual_seed(0)
    net = TinyEncoder().eval()
    x = torch.randn(7, 4, 3)
    with torch.no_grad():
        tokens = net.blocks(torch.cat([net.cls.expand(7, -1, -1), net.embed(x)], dim=1))
    cls = extract_features(net, x, ["blocks.0", "head"], token="cls", batch_size=3)
    torch.testing.assert_close(cls["blocks.0"], tokens[:, 0])
    torch.testing.assert_close(cls["head"], net(x))  # (N, D) outputs are kept as they are
    mean = extract_features(net, x, ["blocks.0"], token="mean")
    torch.testing.assert_close(mean["blocks.0"], tokens.mean(dim=1))
    # Without the option a sequence reads as a 1-d map (N, T, L) and is max-pooled over its last axis.
    torch.testing.assert_close(extract_features(net, x, ["blocks.0"])["blocks.0"],
                               tokens.amax(dim=2))
    maps = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(pool_features(maps, "max", token="cls"), maps.amax(dim=(2, 3)))
    with pytest.raises(ValueError, match=re.escape(
            "The 'token' parameter of LayerFeatures must be one of 'cls', 'mean'. Got 'first' "
            "instead.")):
        LayerFeatures(net, ["head"], token="first")
