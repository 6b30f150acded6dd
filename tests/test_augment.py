"""Batched augmentation: exact agreement with per-sample reference loops, policy ops, seeding."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hypbias.data.augment import (
    OPS,
    AutoAugment,
    Compose,
    CropFlip,
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


def test_every_op_except_autocontrast_is_the_identity_at_magnitude_zero():
    x = torch.rand(4, 3, 8, 8, generator=_gen(2))
    for name in OPS:
        if name != "autocontrast":
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


# ---------------------------------------------------------------- the policy


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8, torch.bfloat16])
def test_policy_keeps_shape_dtype_range_and_is_seeded(dtype):
    x = torch.rand(32, 3, 8, 8, generator=_gen(9))
    x = (x * 255).round().to(dtype) if dtype == torch.uint8 else x.to(dtype)
    out = AutoAugment(_gen(1))(x)
    assert out.shape == x.shape
    assert out.dtype == dtype
    top = 255 if dtype == torch.uint8 else 1
    assert out.min() >= 0
    assert out.max() <= top
    assert torch.equal(out, AutoAugment(_gen(1))(x))
    assert not torch.equal(out, AutoAugment(_gen(2))(x))


def test_policy_at_magnitude_zero_and_with_no_rounds():
    x = torch.rand(16, 3, 8, 8, generator=_gen(10))
    no_autocontrast = [name for name in OPS if name != "autocontrast"]
    torch.testing.assert_close(AutoAugment(_gen(), magnitude=0.0, ops=no_autocontrast)(x), x,
                               atol=1e-6, rtol=0)
    assert torch.equal(AutoAugment(_gen(), num_ops=0)(x), x)


def test_policy_draws_ops_per_sample():
    same = torch.rand(1, 3, 8, 8, generator=_gen(11)).expand(64, 3, 8, 8)
    out = AutoAugment(_gen(), num_ops=1)(same)
    assert len({tuple(o.flatten().tolist()) for o in out}) > 32


def test_policy_keeps_channels_last():
    x = torch.rand(8, 3, 8, 8).to(memory_format=torch.channels_last)
    assert AutoAugment(_gen())(x).is_contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------- factory and validation


def test_make_augment_names():
    assert make_augment(None, _gen()) is None
    assert isinstance(make_augment("crop_flip", _gen()), CropFlip)
    pipeline = make_augment("autoaugment", _gen())
    assert isinstance(pipeline, Compose)
    assert [type(t) for t in pipeline.transforms] == [CropFlip, AutoAugment]
    x = torch.rand(4, 3, 8, 8)
    assert torch.equal(make_augment("autoaugment", _gen(3))(x), make_augment("autoaugment",
                                                                             _gen(3))(x))


@pytest.mark.parametrize(("build", "message"), [
    (lambda: make_augment("mixup", _gen()),
     "The 'augment' parameter of make_augment must be one of None, 'crop_flip', 'autoaugment'. "
     "Got 'mixup' instead."),
    (lambda: CropFlip(_gen(), padding=-1),
     "The 'padding' parameter of CropFlip must be an int >= 0. Got -1 instead."),
    (lambda: AutoAugment(_gen(), ops=["equalize"]),
     f"The 'ops' parameter of AutoAugment must be one of {', '.join(map(repr, OPS))}. "
     "Got 'equalize' instead."),
    (lambda: AutoAugment(_gen(), magnitude=2.0),
     "The 'magnitude' parameter of AutoAugment must be a finite float in [0.0, 1.0]. "
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
