"""Batched image augmentation on the device (App. B.1: random crop and flip, AutoAugment).

Every transform takes a batch ``x`` of shape (N, C, H, W), either ``uint8`` in [0, 255] or floating
point in [0, 1] (augment before normalising), and returns a batch of the same shape, dtype, memory
format and range. Randomness is drawn per sample from a ``torch.Generator``; give it the data's
device (``torch.Generator(device="cuda")``) so that drawing never copies between host and device.
No transform loops over samples or synchronises with the device.

The functional core (:func:`crop_flip`, :func:`apply_ops`) takes the per-sample random parameters
explicitly; the classes draw them and call it. :func:`make_augment` builds what the ``augment``
configuration value names.

Policy ops (:data:`OPS`). Each op takes a signed magnitude v ∈ [−1, 1]; unsigned ops use |v|.
v = ±k/9 is magnitude bin k of 10 in AutoAugment's search space as torchvision parameterises it.
Magnitude 0 leaves the image unchanged for every op but ``autocontrast``, ``equalize`` and
``invert``:

==============  ===============================================================
identity        unchanged
brightness      blend with black, factor 1 + 0.9 v
contrast        blend with the mean grey level of the image, factor 1 + 0.9 v
color           blend with the greyscale image (saturation), factor 1 + 0.9 v
sharpness       blend with a 3×3 smoothed image (border kept), factor 1 + 0.9 v
posterize       keep the 8 − round(4 |v|) high bits of each 8-bit value
solarize        invert values above 1 − |v|
autocontrast    stretch each channel to [0, 1] (no magnitude)
equalize        equalise each channel's 8-bit histogram as PIL's ``ImageOps.equalize`` (no magnitude)
invert          1 − x (no magnitude)
rotate          counter-clockwise by 30° · v
shear_x/_y      shear by 0.3 v
translate_x/_y  shift by 0.3 v of the image width/height (empty area black)
==============  ===============================================================

The geometric ops share one bilinear ``grid_sample`` per round.

Policies: :class:`AutoAugment` is the ImageNet policy that Cubuk et al. (2019) learned (the paper's
App. B.1 trains with it); :class:`RandAugment` applies ops drawn uniformly at random per sample,
each with a magnitude drawn uniformly in [−M, M].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence

import torch
import torch.nn.functional as F

from hypbias._validation import check_choice, check_float, check_int

OPS = ("identity", "brightness", "contrast", "color", "sharpness", "posterize", "solarize",
       "autocontrast", "rotate", "shear_x", "shear_y", "translate_x", "translate_y", "equalize",
       "invert")
RANDAUGMENT_OPS = tuple(name for name in OPS if name not in ("equalize", "invert"))
"""The ops :class:`RandAugment` draws from by default (every op but ``equalize`` and ``invert``)."""
_INDEX = {name: i for i, name in enumerate(OPS)}
_BLEND = ("brightness", "contrast", "color", "sharpness")
_GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
_GREY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as PIL's "L" conversion

Augment = Callable[[torch.Tensor], torch.Tensor]


def _check_batch(x: torch.Tensor, owner: str) -> None:
    if x.ndim != 4 or not (x.dtype == torch.uint8 or x.is_floating_point()):
        raise ValueError(
            f"The 'x' parameter of {owner} must be a uint8 or floating tensor of shape "
            f"(N, C, H, W). Got shape {tuple(x.shape)} and dtype {x.dtype} instead."
        )


def _same_format(out: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``out`` laid out in memory as ``like`` (channels_last kept channels_last)."""
    if not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
        return out.contiguous(memory_format=torch.channels_last)
    return out.contiguous()


def crop_flip(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor,
              padding: int, padding_mode: str = "constant") -> torch.Tensor:
    """Crop each image from its padded copy at its own offset, then mirror the flagged ones.

    ``out[n] = pad(x)[n, :, top[n] : top[n] + H, left[n] : left[n] + W]``, reversed along W where
    ``flip[n]``: one ``gather`` over the flattened pixels, the padding resolved by index
    arithmetic (never materialised).

    Parameters
    ----------
    x : tensor of shape (N, C, H, W), any dtype
    top, left : integer tensors of shape (N,) with values in [0, 2 · padding]
    flip : bool tensor of shape (N,)
    padding : pixels added on each side
    padding_mode : "constant" (zeros) or "reflect" (mirror without repeating the edge;
        needs padding < H and W)
    """
    n, c, h, w = x.shape
    rows = top[:, None] - padding + torch.arange(h, device=x.device)           # (N, H)
    cols = torch.arange(w, device=x.device).expand(n, w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + left[:, None] - padding  # (N, W)
    outside = None
    if padding_mode == "reflect":
        rows = (h - 1) - ((h - 1) - rows.abs()).abs()
        cols = (w - 1) - ((w - 1) - cols.abs()).abs()
    else:
        outside = ((rows < 0) | (rows >= h))[:, :, None] | ((cols < 0) | (cols >= w))[:, None, :]
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    index = (rows[:, :, None] * w + cols[:, None, :]).view(n, 1, h * w)
    out = x.reshape(n, c, h * w).gather(2, index.expand(n, c, h * w))
    if outside is not None:
        out = out.masked_fill_(outside.view(n, 1, h * w), 0)
    return _same_format(out.view(n, c, h, w), x)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Greyscale of shape (N, 1, H, W): luma for RGB, the channel mean otherwise."""
    if x.shape[1] == 3:  # Python-float weights: no host-to-device copy
        return _GREY[0] * x[:, 0:1] + _GREY[1] * x[:, 1:2] + _GREY[2] * x[:, 2:3]
    return x.mean(dim=1, keepdim=True)


def _smooth(x: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter ([[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13) inside, the border unchanged."""
    c, h, w = x.shape[1:]
    if h < 3 or w < 3:
        return x
    kernel = torch.ones(3, 3, dtype=x.dtype, device=x.device)
    kernel[1, 1] = 5.0
    kernel = (kernel / 13.0).repeat(c, 1, 1, 1)
    inner = F.conv2d(x, kernel, groups=c)
    return torch.cat([x[:, :, :1], torch.cat([x[:, :, 1:-1, :1], inner, x[:, :, 1:-1, -1:]], 3),
                      x[:, :, -1:]], 2)


def _blend(x: torch.Tensor, op: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """brightness / contrast / color / sharpness: ``degenerate + (1 + 0.9 v) (x − degenerate)``."""
    grey = _grey(x)
    degenerate = torch.zeros_like(x)
    for name, image in (("contrast", grey.mean(dim=(1, 2, 3), keepdim=True)),
                        ("color", grey), ("sharpness", _smooth(x))):
        degenerate = torch.where((op == _INDEX[name])[:, None, None, None], image, degenerate)
    factor = (1.0 + 0.9 * v)[:, None, None, None]
    return (degenerate + factor * (x - degenerate)).clamp(0.0, 1.0)


def _posterize(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Zero the round(4 |v|) low bits of the 8-bit value (exactly ``x`` where no bit is dropped)."""
    drop = torch.round(4.0 * v.abs())[:, None, None, None]
    step = torch.exp2(drop)
    quantised = torch.floor(torch.round(x * 255.0) / step) * step / 255.0
    return torch.where(drop == 0, x, quantised)


def _autocontrast(x: torch.Tensor) -> torch.Tensor:
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    spread = hi - lo
    stretched = (x - lo) / torch.where(spread > 0, spread, torch.ones_like(spread))
    return torch.where(spread > 0, stretched, x)


def _equalize(x: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.equalize`` on each channel's 8-bit levels, for the whole batch at once.

    With h the histogram of a channel and ``step = (Σ h − h[top]) // 256`` (top = the highest level
    present), level i maps to ``(step // 2 + Σ_{j<i} h[j]) // step``, at most 255; a channel with
    ``step = 0`` (a single level, or too few pixels) is unchanged.
    """
    n, c = x.shape[:2]
    levels = torch.round(x * 255.0).long().clamp_(0, 255).reshape(n * c, -1)
    hist = torch.zeros(n * c, 256, dtype=torch.long, device=x.device)
    hist.scatter_add_(1, levels, torch.ones_like(levels))
    top = 255 - (hist.flip(1) > 0).long().argmax(dim=1, keepdim=True)
    step = (levels.shape[1] - hist.gather(1, top)) // 256
    below = torch.cumsum(hist, dim=1) - hist
    lut = ((step // 2 + below) // step.clamp(min=1)).clamp(max=255)
    out = torch.where(step > 0, lut.gather(1, levels), levels)
    return (out.to(x.dtype) / 255.0).view(x.shape)


def _warp(x: torch.Tensor, op: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """One affine ``grid_sample`` for rotate / shear / translate (identity for other samples).

    ``theta`` maps output to input coordinates normalised to [−1, 1]; the factors H/W and W/H
    keep angles and shears true in pixels on non-square images.
    """
    h, w = x.shape[2:]
    aspect = h / w

    def pick(name: str, scale: float) -> torch.Tensor:
        return torch.where(op == _INDEX[name], scale * v, torch.zeros_like(v))

    angle = pick("rotate", math.radians(30.0))
    cos, sin = torch.cos(angle), torch.sin(angle)
    shear_x, shear_y = pick("shear_x", 0.3), pick("shear_y", 0.3)
    shift_x, shift_y = pick("translate_x", 0.3), pick("translate_y", 0.3)
    theta = torch.stack([
        torch.stack([cos, (shear_x - sin) * aspect, -2.0 * shift_x], dim=1),
        torch.stack([(sin + shear_y) / aspect, cos, -2.0 * shift_y], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def apply_ops(x: torch.Tensor, op: torch.Tensor, v: torch.Tensor,
              ops: Collection[str] = OPS) -> torch.Tensor:
    """Apply policy op ``OPS[op[n]]`` with signed magnitude ``v[n]`` to image n (one round).

    Parameters
    ----------
    x : floating tensor of shape (N, C, H, W) with values in [0, 1]
    op : integer tensor of shape (N,), indices into :data:`OPS`
    v : floating tensor of shape (N,), magnitudes in [−1, 1]
    ops : the names ``op`` can hold (default every op of :data:`OPS`); the others are not
        evaluated, so a policy pays only for the ops it can draw

    Returns a tensor like ``x``. Each op of ``ops`` is evaluated on the whole batch and selected by
    mask: a fixed number of batched kernels, no per-sample work, no look at ``op`` on the host.
    """
    unknown = sorted(set(ops) - set(OPS))
    if unknown:
        raise ValueError(f"The 'ops' parameter of apply_ops must name ops of OPS. Got {unknown[0]!r} "
                         "instead.")
    v = v.to(x.dtype)

    def chosen(names: Sequence[str]) -> torch.Tensor:
        mask = torch.zeros_like(op, dtype=torch.bool)
        for name in names:
            mask |= op == _INDEX[name]
        return mask[:, None, None, None]

    def drawn(*names: str) -> bool:
        return any(name in ops for name in names)

    out = x
    if drawn(*_BLEND):
        out = torch.where(chosen(_BLEND), _blend(x, op, v), out)
    if drawn("posterize"):
        out = torch.where(chosen(["posterize"]), _posterize(x, v), out)
    if drawn("solarize"):
        solarized = torch.where(x > (1.0 - v.abs())[:, None, None, None], 1.0 - x, x)
        out = torch.where(chosen(["solarize"]), solarized, out)
    if drawn("autocontrast"):
        out = torch.where(chosen(["autocontrast"]), _autocontrast(x), out)
    if drawn("equalize"):
        out = torch.where(chosen(["equalize"]), _equalize(x), out)
    if drawn("invert"):
        out = torch.where(chosen(["invert"]), 1.0 - x, out)
    if drawn(*_GEOMETRIC):
        out = torch.where(chosen(_GEOMETRIC), _warp(x, op, v), out)
    return out


class CropFlip:
    """Random crop of the image padded by ``padding`` pixels, then horizontal flip with prob. ``p``.

    >>> aug = CropFlip(torch.Generator().manual_seed(0))
    >>> aug(torch.rand(8, 3, 32, 32)).shape
    torch.Size([8, 3, 32, 32])
    """

    def __init__(self, generator: torch.Generator, padding: int = 4, padding_mode: str = "constant",
                 p: float = 0.5) -> None:
        self.generator = generator
        self.padding = check_int(padding, "padding", "CropFlip", low=0)
        self.padding_mode = check_choice(padding_mode, "padding_mode", "CropFlip",
                                         ("constant", "reflect"))
        self.p = check_float(p, "p", "CropFlip", low=0.0, high=1.0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x, "CropFlip")
        if self.padding_mode == "reflect" and self.padding >= min(x.shape[2:]):
            raise ValueError(f"The 'padding' parameter of CropFlip must be < the image size "
                             f"{min(x.shape[2:])} in reflect mode. Got {self.padding} instead.")
        n, g = len(x), self.generator
        offsets = torch.randint(0, 2 * self.padding + 1, (2, n), generator=g, device=g.device)
        flip = torch.rand(n, generator=g, device=g.device) < self.p
        offsets = offsets.to(x.device, non_blocking=True)
        flip = flip.to(x.device, non_blocking=True)
        return crop_flip(x, offsets[0], offsets[1], flip, self.padding, self.padding_mode)


def _as_unit_float(x: torch.Tensor) -> torch.Tensor:
    """``x`` as float32 or float64 in [0, 1] (uint8 divided by 255, half precision widened)."""
    work = x.float() if x.dtype in (torch.uint8, torch.float16, torch.bfloat16) else x
    return work / 255.0 if x.dtype == torch.uint8 else work


def _like(work: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`_as_unit_float`: ``x``'s dtype, range and memory format."""
    if x.dtype == torch.uint8:
        work = torch.round(work * 255.0)
    return _same_format(work.to(x.dtype), x)


class RandAugment:
    """RandAugment-style policy: ``num_ops`` rounds, each applying one random op per sample.

    Unlike RandAugment's fixed magnitude M, each sample draws its magnitude v uniformly in
    [−M, M] (as TrivialAugment and timm's ``mstd`` variants do).

    Parameters
    ----------
    generator : source of the per-sample op choices and magnitudes
    num_ops : rounds per call
    magnitude : M in [0, 1], the largest |v| drawn
    ops : the op names to choose from, a subset of :data:`OPS` (default :data:`RANDAUGMENT_OPS`)
    """

    def __init__(self, generator: torch.Generator, num_ops: int = 2, magnitude: float = 1.0,
                 ops: Sequence[str] = RANDAUGMENT_OPS) -> None:
        self.generator = generator
        self.num_ops = check_int(num_ops, "num_ops", "RandAugment", low=0)
        self.magnitude = check_float(magnitude, "magnitude", "RandAugment", low=0.0, high=1.0)
        if not ops:
            raise ValueError("The 'ops' parameter of RandAugment must name at least one op. "
                             "Got an empty list instead.")
        self.ops = tuple(check_choice(name, "ops", "RandAugment", OPS) for name in ops)
        self._choices = torch.tensor([_INDEX[name] for name in self.ops], device=generator.device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x, "RandAugment")
        work = _as_unit_float(x)
        n, g = len(x), self.generator
        for _ in range(self.num_ops):
            pick = torch.randint(0, len(self.ops), (n,), generator=g, device=g.device)
            v = (2.0 * torch.rand(n, generator=g, device=g.device) - 1.0) * self.magnitude
            op = self._choices[pick].to(x.device, non_blocking=True)
            work = apply_ops(work, op, v.to(x.device, non_blocking=True), self.ops)
        return _like(work, x)


IMAGENET_POLICY = (
    (("posterize", 0.4, 8), ("rotate", 0.6, 9)),
    (("solarize", 0.6, 5), ("autocontrast", 0.6, None)),
    (("equalize", 0.8, None), ("equalize", 0.6, None)),
    (("posterize", 0.6, 7), ("posterize", 0.6, 6)),
    (("equalize", 0.4, None), ("solarize", 0.2, 4)),
    (("equalize", 0.4, None), ("rotate", 0.8, 8)),
    (("solarize", 0.6, 3), ("equalize", 0.6, None)),
    (("posterize", 0.8, 5), ("equalize", 1.0, None)),
    (("rotate", 0.2, 3), ("solarize", 0.6, 8)),
    (("equalize", 0.6, None), ("posterize", 0.4, 6)),
    (("rotate", 0.8, 8), ("color", 0.4, 0)),
    (("rotate", 0.4, 9), ("equalize", 0.6, None)),
    (("equalize", 0.0, None), ("equalize", 0.8, None)),
    (("invert", 0.6, None), ("equalize", 1.0, None)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("rotate", 0.8, 8), ("color", 1.0, 2)),
    (("color", 0.8, 8), ("solarize", 0.8, 7)),
    (("sharpness", 0.4, 7), ("invert", 0.6, None)),
    (("shear_x", 0.6, 5), ("equalize", 1.0, None)),
    (("color", 0.4, 0), ("equalize", 0.6, None)),
    (("equalize", 0.4, None), ("solarize", 0.2, 4)),
    (("solarize", 0.6, 5), ("autocontrast", 0.6, None)),
    (("invert", 0.6, None), ("equalize", 1.0, None)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("equalize", 0.8, None), ("equalize", 0.6, None)),
)
"""AutoAugment's ImageNet policy (Cubuk et al. 2019): 25 sub-policies of two (op, probability,
magnitude bin 0–9 or None) steps, in torchvision's ``AutoAugmentPolicy.IMAGENET`` order."""


class AutoAugment:
    """AutoAugment's ImageNet policy: each sample takes one of the 25 sub-policies at random and
    applies its two steps in order, each with its probability.

    Magnitude bin k of a step is v = k/9 with a random sign (the sign matters for rotate, shear,
    color and contrast only), so the ops equal torchvision's ``AutoAugment`` ops except that
    rotation and shear interpolate bilinearly.

    Parameters
    ----------
    generator : source of the per-sample sub-policies, probabilities and signs
    """

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator
        steps = [step for pair in IMAGENET_POLICY for step in pair]
        shape = (len(IMAGENET_POLICY), 2)
        device = generator.device
        self._ops = torch.tensor([_INDEX[name] for name, _, _ in steps], device=device).view(shape)
        self._prob = torch.tensor([p for _, p, _ in steps], device=device).view(shape)
        self._bin = torch.tensor([(k or 0) / 9.0 for _, _, k in steps], device=device).view(shape)
        self._drawn = frozenset(["identity", *(name for name, _, _ in steps)])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x, "AutoAugment")
        work = _as_unit_float(x)
        n, g = len(x), self.generator
        policy = torch.randint(0, len(IMAGENET_POLICY), (n,), generator=g, device=g.device)
        applied = torch.rand(n, 2, generator=g, device=g.device) < self._prob[policy]
        sign = 2.0 * torch.randint(0, 2, (n, 2), generator=g, device=g.device) - 1.0
        op = torch.where(applied, self._ops[policy], _INDEX["identity"]).to(x.device, non_blocking=True)
        v = (self._bin[policy] * sign).to(x.device, non_blocking=True)
        for step in range(2):
            work = apply_ops(work, op[:, step], v[:, step], self._drawn)
        return _like(work, x)


class Compose:
    """Apply transforms in order."""

    def __init__(self, *transforms: Augment) -> None:
        self.transforms = transforms

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for transform in self.transforms:
            x = transform(x)
        return x


AUGMENTS = (None, "crop_flip", "randaugment", "autoaugment")


def make_augment(name: str | None, generator: torch.Generator, padding: int = 4) -> Augment | None:
    """The augmentation named by the ``train.augment`` configuration value.

    ``None`` (no augmentation) returns ``None``; ``"crop_flip"`` is :class:`CropFlip`;
    ``"randaugment"`` and ``"autoaugment"`` are :class:`CropFlip` followed by :class:`RandAugment`
    or by :class:`AutoAugment` (the ImageNet policy). All draw from ``generator``.
    """
    check_choice(name, "augment", "make_augment", AUGMENTS)
    if name is None:
        return None
    crop = CropFlip(generator, padding=padding)
    if name == "crop_flip":
        return crop
    return Compose(crop, RandAugment(generator) if name == "randaugment" else AutoAugment(generator))
