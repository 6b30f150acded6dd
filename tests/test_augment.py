"""Batched augmentation: exact agreement with per-sample reference loops, policy ops, seeding."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hypbias.data import augment
from hypbias.data.augment import (
    IMAGENET_POLICY,
    OPS,
    RANDAUGMENT_OPS,
    AutoAugment,
    Compose,
    CropFlip,
    RandAugment,
    apply_ops,
    crop_flip,
    make_augment,
)

INDEX = {name: i for i, name in enumerate(OPS)}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _one_op(x: torch.Tensor, name: str, v: float) -> torch.Tensor:
    n = len(x)
    return apply_ops(x, torch.full((n,), INDEX[name]), torch.full((n,), v))


# ---------------------------------------------------------------- crop and flip


@pytest.mark.parametrize("mode", ["constant", "reflect"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_crop_flip_equals_a_per_sample_loop(mode, dtype):
    gen = _gen(1)
    x = (torch.rand(16, 3, 7, 9, generator=gen) * 255).to(dtype)
    pad = 3
    top = torch.randint(0, 2 * pad + 1, (16,), generator=gen)
    left = torch.randint(0, 2 * pad + 1, (16,), generator=gen)
    flip = torch.rand(16, generator=gen) < 0.5
    out = crop_flip(x, top, left, flip, pad, mode)
    for n in range(16):
        padded = F.pad(x[n].double()[None], (pad,) * 4, mode=mode)[0]
        ref = padded[:, top[n]:top[n] + 7, left[n]:left[n] + 9]
        if flip[n]:
            ref = ref.flip(-1)
        assert torch.equal(out[n].double(), ref), n
    assert out.dtype == dtype


def test_crop_with_zero_offset_shifts_by_the_padding():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    zeros = torch.zeros(2, dtype=torch.long)
    out = crop_flip(x, zeros, zeros, torch.zeros(2, dtype=torch.bool), padding=1)
    assert torch.equal(out[:, :, 1:, 1:], x[:, :, :3, :3])
    assert out[:, :, 0].abs().sum() == 0
    centred = crop_flip(x, zeros + 1, zeros + 1, torch.tensor([False, True]), padding=1)
    assert torch.equal(centred[0], x[0])
    assert torch.equal(centred[1], x[1].flip(-1))


def test_crop_flip_draws_are_seeded_and_keep_channels_last():
    x = torch.rand(32, 3, 8, 8).to(memory_format=torch.channels_last)
    a = CropFlip(_gen(5), padding=2)(x)
    b = CropFlip(_gen(5), padding=2)(x)
    c = CropFlip(_gen(6), padding=2)(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.is_contiguous(memory_format=torch.channels_last)
    assert CropFlip(_gen(5), padding=2)(x.contiguous()).is_contiguous()


def test_flip_probability_extremes_and_varied_offsets():
    x = torch.rand(64, 1, 6, 6)
    assert torch.equal(CropFlip(_gen(), padding=0, p=1.0)(x), x.flip(-1))
    assert torch.equal(CropFlip(_gen(), padding=0, p=0.0)(x), x)
    # identical images get different crops: offsets are drawn per sample
    same = torch.rand(1, 1, 6, 6).expand(64, 1, 6, 6)
    out = CropFlip(_gen(), padding=2, p=0.0)(same)
    assert len({tuple(o.flatten().tolist()) for o in out}) > 10


# ---------------------------------------------------------------- policy ops


def test_every_op_with_a_magnitude_is_the_identity_at_magnitude_zero():
    x = torch.rand(4, 3, 8, 8, generator=_gen(2))
    for name in OPS:
        if name not in ("autocontrast", "equalize", "invert"):
            torch.testing.assert_close(_one_op(x, name, 0.0), x, atol=1e-6, rtol=0)


def test_colour_ops_against_references():
    x = torch.rand(3, 3, 5, 5, generator=_gen(3))
    xn = x.numpy().astype(np.float64)
    grey = np.tensordot([0.299, 0.587, 0.114], xn, axes=([0], [1]))[:, None]  # (N, 1, H, W)
    f = 1 + 0.9 * 0.5
    np.testing.assert_allclose(_one_op(x, "brightness", 0.5), np.clip(xn * f, 0, 1), atol=1e-6)
    mean = grey.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(_one_op(x, "contrast", 0.5),
                               np.clip(mean + f * (xn - mean), 0, 1), atol=1e-6)
    np.testing.assert_allclose(_one_op(x, "color", -0.5),
                               np.clip(grey + 0.55 * (xn - grey), 0, 1), atol=1e-6)
    smooth = xn.copy()
    kernel = np.ones((3, 3))
    kernel[1, 1] = 5
    for i in range(1, 4):
        for j in range(1, 4):
            smooth[:, :, i, j] = (xn[:, :, i - 1:i + 2, j - 1:j + 2] * kernel).sum((2, 3)) / 13
    np.testing.assert_allclose(_one_op(x, "sharpness", 1.0),
                               np.clip(smooth + 1.9 * (xn - smooth), 0, 1), atol=1e-6)
    np.testing.assert_allclose(_one_op(x, "solarize", -0.6),
                               np.where(xn > 0.4, 1 - xn, xn), atol=1e-7)
    lo, hi = xn.min(axis=(2, 3), keepdims=True), xn.max(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(_one_op(x, "autocontrast", 0.3), (xn - lo) / (hi - lo), atol=1e-6)
    np.testing.assert_allclose(_one_op(x, "invert", 0.7), 1 - xn, atol=1e-7)


def _pil_equalize(image: np.ndarray) -> np.ndarray:
    """PIL's ImageOps.equalize of one (C, H, W) uint8 image, channel by channel."""
    from PIL import Image, ImageOps

    return np.stack([np.asarray(ImageOps.equalize(Image.fromarray(ch))) for ch in image])


def test_equalize_matches_pil():
    gen = _gen(12)
    images = [
        torch.randint(0, 256, (3, 24, 24), generator=gen),           # spread over every level
        torch.randint(40, 90, (3, 24, 24), generator=gen),           # a narrow band
        (torch.rand(3, 24, 24, generator=gen) ** 4 * 255).round(),   # skewed towards black
        torch.full((3, 24, 24), 77),                                 # one level: unchanged
        torch.randint(0, 2, (3, 24, 24), generator=gen) * 200,       # two levels
        torch.randint(0, 256, (3, 4, 4), generator=gen),             # too few pixels: unchanged
    ]
    for image in images:
        u = image.to(torch.uint8)
        expected = _pil_equalize(u.numpy())
        got = _one_op(u[None].float() / 255, "equalize", 0.0)[0]
        np.testing.assert_array_equal(torch.round(got * 255).to(torch.uint8).numpy(), expected)


def test_posterize_on_uint8_values():
    u = torch.randint(0, 256, (2, 3, 4, 4), generator=_gen(4), dtype=torch.uint8)
    out = _one_op(u.float() / 255, "posterize", 0.5)  # drops 2 bits
    expected = (u.numpy() & 0b11111100).astype(np.float64) / 255
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_geometric_ops_against_exact_pixel_moves():
    x = torch.rand(2, 3, 8, 8, generator=_gen(5))
    # +90 degrees (v = 3 gives 3 x 30) is a counter-clockwise quarter turn
    torch.testing.assert_close(_one_op(x, "rotate", 3.0), torch.rot90(x, 1, (2, 3)), atol=1e-5,
                               rtol=0)
    # translate by 2 pixels: v * 0.3 * 8 = 2
    v = 2 / (0.3 * 8)
    right = _one_op(x, "translate_x", v)
    torch.testing.assert_close(right[..., 2:], x[..., :-2], atol=1e-5, rtol=0)
    assert right[..., :2].abs().max() < 1e-6
    down = _one_op(x, "translate_y", -v)
    torch.testing.assert_close(down[..., :-2, :], x[..., 2:, :], atol=1e-5, rtol=0)
    # shear_x by 1 on an odd height: row i samples column j + (i - 2)
    x5 = torch.rand(1, 1, 5, 7, generator=_gen(6))
    sheared = _one_op(x5, "shear_x", 1 / 0.3)
    ref = torch.zeros_like(x5)
    for i in range(5):
        for j in range(7):
            src = j + (i - 2)
            if 0 <= src < 7:
                ref[0, 0, i, j] = x5[0, 0, i, src]
    torch.testing.assert_close(sheared, ref, atol=1e-5, rtol=0)


def test_rotation_is_true_on_non_square_images():
    x = torch.rand(1, 2, 8, 12, generator=_gen(7))
    turned = _one_op(x, "rotate", 3.0)
    torch.testing.assert_close(turned[..., 2:10], torch.rot90(x[..., 2:10], 1, (2, 3)),
                               atol=1e-5, rtol=0)


def test_apply_ops_is_per_sample():
    gen = _gen(8)
    x = torch.rand(len(OPS) * 2, 3, 8, 8, generator=gen)
    op = torch.arange(len(OPS)).repeat(2)
    v = 2 * torch.rand(len(op), generator=gen) - 1
    batched = apply_ops(x, op, v)
    for n in range(len(x)):
        torch.testing.assert_close(batched[n:n + 1], apply_ops(x[n:n + 1], op[n:n + 1], v[n:n + 1]),
                                   atol=1e-6, rtol=0)


def test_apply_ops_evaluates_only_the_ops_it_is_told_op_can_hold(monkeypatch):
    gen = _gen(16)
    x = torch.rand(64, 3, 8, 8, generator=gen)
    choices = torch.tensor([INDEX[name] for name in RANDAUGMENT_OPS])
    op = choices[torch.randint(0, len(choices), (64,), generator=gen)]
    v = 2 * torch.rand(64, generator=gen) - 1
    every = apply_ops(x, op, v)

    def refuse(*args):
        raise AssertionError("an op outside the policy was evaluated")

    for name in ("_equalize", "_autocontrast"):
        monkeypatch.setattr(augment, name, refuse)
    restricted = [name for name in RANDAUGMENT_OPS if name != "autocontrast"]
    kept = op != INDEX["autocontrast"]
    assert torch.equal(apply_ops(x[kept], op[kept], v[kept], restricted), every[kept])
    with pytest.raises(AssertionError, match="outside the policy"):
        apply_ops(x, op, v, OPS)
    with pytest.raises(ValueError, match="'ops' parameter of apply_ops must name ops of OPS. Got 'blur'"):
        apply_ops(x, op, v, ["identity", "blur"])


# ---------------------------------------------------------------- RandAugment


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8, torch.bfloat16])
def test_policy_keeps_shape_dtype_range_and_is_seeded(dtype):
    x = torch.rand(32, 3, 8, 8, generator=_gen(9))
    x = (x * 255).round().to(dtype) if dtype == torch.uint8 else x.to(dtype)
    out = RandAugment(_gen(1))(x)
    assert out.shape == x.shape
    assert out.dtype == dtype
    top = 255 if dtype == torch.uint8 else 1
    assert out.min() >= 0
    assert out.max() <= top
    assert torch.equal(out, RandAugment(_gen(1))(x))
    assert not torch.equal(out, RandAugment(_gen(2))(x))


def test_policy_at_magnitude_zero_and_with_no_rounds():
    x = torch.rand(16, 3, 8, 8, generator=_gen(10))
    with_magnitude = [name for name in OPS if name not in ("autocontrast", "equalize", "invert")]
    torch.testing.assert_close(RandAugment(_gen(), magnitude=0.0, ops=with_magnitude)(x), x,
                               atol=1e-6, rtol=0)
    assert torch.equal(RandAugment(_gen(), num_ops=0)(x), x)


def test_policy_draws_ops_per_sample():
    same = torch.rand(1, 3, 8, 8, generator=_gen(11)).expand(64, 3, 8, 8)
    out = RandAugment(_gen(), num_ops=1)(same)
    assert len({tuple(o.flatten().tolist()) for o in out}) > 32


def test_policy_keeps_channels_last():
    x = torch.rand(8, 3, 8, 8).to(memory_format=torch.channels_last)
    assert RandAugment(_gen())(x).is_contiguous(memory_format=torch.channels_last)


def test_randaugment_draws_from_every_op_but_equalize_and_invert_by_default():
    assert RandAugment(_gen()).ops == RANDAUGMENT_OPS
    # the order a draw indexes into: seeded runs keep their augmentations
    assert RANDAUGMENT_OPS == ("identity", "brightness", "contrast", "color", "sharpness", "posterize",
                               "solarize", "autocontrast", "rotate", "shear_x", "shear_y",
                               "translate_x", "translate_y")
    assert set(OPS) - set(RANDAUGMENT_OPS) == {"equalize", "invert"}


# ---------------------------------------------------------------- AutoAugment


def test_autoaugment_holds_the_imagenet_policy():
    assert len(IMAGENET_POLICY) == 25
    assert IMAGENET_POLICY[0] == (("posterize", 0.4, 8), ("rotate", 0.6, 9))
    assert IMAGENET_POLICY[13] == (("invert", 0.6, None), ("equalize", 1.0, None))
    assert all(op in OPS and 0 <= p <= 1 and (k is None or 0 <= k <= 9)
               for pair in IMAGENET_POLICY for op, p, k in pair)


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_autoaugment_applies_each_samples_sub_policy_in_order(dtype):
    n = 64
    x = torch.rand(n, 3, 8, 8, generator=_gen(13))
    x = (x * 255).round().to(dtype) if dtype == torch.uint8 else x
    out = AutoAugment(_gen(4))(x)
    gen = _gen(4)  # the same draws, in the same order
    policy = torch.randint(0, 25, (n,), generator=gen)
    u = torch.rand(n, 2, generator=gen)
    sign = 2.0 * torch.randint(0, 2, (n, 2), generator=gen) - 1.0
    unit = x.float() / 255 if dtype == torch.uint8 else x
    for i in range(n):
        image = unit[i:i + 1]
        for step, (name, prob, level) in enumerate(IMAGENET_POLICY[int(policy[i])]):
            if u[i, step] < prob:
                image = _one_op(image, name, (level or 0) / 9 * float(sign[i, step]))
        if dtype == torch.uint8:
            image = torch.round(image * 255).to(torch.uint8)
        torch.testing.assert_close(out[i:i + 1], image, atol=1e-6, rtol=0)
    assert out.dtype == dtype


def test_autoaugment_leaves_images_unchanged_as_often_as_the_policy_says():
    """Probability that every applied step leaves an image that spans [0, 1] in each channel
    unchanged: autocontrast then does nothing, and color at bin 0 is the identity."""
    n = 4000
    image = torch.rand(1, 3, 8, 8, generator=_gen(14))
    image[:, :, 0, 0], image[:, :, 0, 1] = 0.0, 1.0
    out = AutoAugment(_gen(15))(image.expand(n, 3, 8, 8).contiguous())
    unchanged = ((out - image).abs().amax(dim=(1, 2, 3)) < 1e-5).float().mean().item()
    harmless = {("autocontrast", None), ("color", 0)}
    expected = np.mean([np.prod([1 - p + p * ((op, k) in harmless) for op, p, k in pair])
                        for pair in IMAGENET_POLICY])
    assert unchanged == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / n))


# ---------------------------------------------------------------- factory and validation


def test_make_augment_names():
    assert make_augment(None, _gen()) is None
    assert isinstance(make_augment("crop_flip", _gen()), CropFlip)
    for name, policy in (("randaugment", RandAugment), ("autoaugment", AutoAugment)):
        pipeline = make_augment(name, _gen())
        assert isinstance(pipeline, Compose)
        assert [type(t) for t in pipeline.transforms] == [CropFlip, policy]
        x = torch.rand(4, 3, 8, 8)
        assert torch.equal(make_augment(name, _gen(3))(x), make_augment(name, _gen(3))(x))


@pytest.mark.parametrize(("build", "message"), [
    (lambda: make_augment("mixup", _gen()),
     "The 'augment' parameter of make_augment must be one of None, 'crop_flip', 'randaugment', "
     "'autoaugment'. Got 'mixup' instead."),
    (lambda: CropFlip(_gen(), padding=-1),
     "The 'padding' parameter of CropFlip must be an int >= 0. Got -1 instead."),
    (lambda: RandAugment(_gen(), ops=["mixup"]),
     f"The 'ops' parameter of RandAugment must be one of {', '.join(map(repr, OPS))}. "
     "Got 'mixup' instead."),
    (lambda: RandAugment(_gen(), magnitude=2.0),
     "The 'magnitude' parameter of RandAugment must be a finite float in [0.0, 1.0]. "
     "Got 2.0 instead."),
    (lambda: CropFlip(_gen())(torch.rand(3, 8, 8)),
     "The 'x' parameter of CropFlip must be a uint8 or floating tensor of shape (N, C, H, W). "
     "Got shape (3, 8, 8) and dtype torch.float32 instead."),
    (lambda: CropFlip(_gen(), padding=8, padding_mode="reflect")(torch.rand(1, 1, 8, 8)),
     "The 'padding' parameter of CropFlip must be < the image size 8 in reflect mode. "
     "Got 8 instead."),
])
def test_bad_input(build, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        build()
