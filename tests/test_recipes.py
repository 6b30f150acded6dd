"""The packaged ImageNet recipes of App. B.1 for ViT-B/16 and MobileNet V3-L validate against the
config schema and keep the values the paper gives."""

from __future__ import annotations

from hypbias.train.config import load_config


def test_vit_b16_recipe_is_the_resnet_recipe_with_a_timm_vit():
    config = load_config("imagenet_vit_b16")
    resnet = load_config("imagenet_resnet18")
    assert config.model.name == "timm:vit_base_patch16_224"
    assert config.train == resnet.train  # App. B.1 trains ResNets and ViT alike
    assert (config.train.epochs, config.train.lr, config.train.schedule, config.train.augment) == (
        200, 0.05, "cosine", "autoaugment")


def test_mobilenet_v3_recipe_keeps_epochs_batch_warmup_and_ema():
    train = load_config("imagenet_mobilenet_v3").train
    assert (train.epochs, train.batch_size, train.ema, train.augment) == (600, 512, 0.9999,
                                                                         "randaugment")
    assert train.warmup_epochs > 0
    assert load_config("imagenet_mobilenet_v3").model.name == "timm:mobilenetv3_large_100"
