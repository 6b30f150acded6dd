"""The classifier head of any ``nn.Module`` and the capture of its input (the penultimate features).

Neural collapse (App. A.2) needs the features h the final linear layer reads and that layer's W and
b. Any network has them: :func:`find_head` picks the layer, :class:`HeadInput` records what it is
called with during a forward pass (a forward pre-hook, removed afterwards), so torchvision, timm,
Hugging Face and plain ``nn.Sequential`` models need no wrapper.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def find_head(model: nn.Module, head: str | nn.Module | None = None) -> tuple[str, nn.Linear]:
    """The final linear layer of ``model`` and its module name.

    Parameters
    ----------
    model : any module whose classifier is an ``nn.Linear`` (weight (C, D), bias (C,) or none)
    head : the layer's name in ``model.named_modules()`` (e.g. ``"fc"``, ``"heads.head"``), the
        layer itself, or None: the attribute ``head`` when it is an ``nn.Linear`` (hypbias models,
        timm ViTs), else the last ``nn.Linear`` registered (torchvision's ``fc`` and
        ``classifier[-1]``, Hugging Face's ``classifier``, the last layer of an ``nn.Sequential``).
    """
    owner = "Tracker.bind"
    if isinstance(head, nn.Module):
        names = [name for name, module in model.named_modules() if module is head]
        if not names:
            raise ValueError(f"The 'head' parameter of {owner} must be a sub-module of the model. "
                             f"Got a {type(head).__name__} that is not part of "
                             f"{type(model).__name__} instead.")
        name = names[0]
    elif isinstance(head, str):
        try:
            model.get_submodule(head)
        except AttributeError:
            raise ValueError(f"The 'head' parameter of {owner} must name a module of "
                             f"{type(model).__name__} (see model.named_modules()). Got {head!r} "
                             "instead.") from None
        name = head
    elif head is None:
        if isinstance(getattr(model, "head", None), nn.Linear):
            name = "head"
        else:
            linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError(f"{type(model).__name__} has no nn.Linear layer; pass head= the "
                                 f"name of its classification layer to {owner}")
            name = linears[-1]
    else:
        raise ValueError(f"The 'head' parameter of {owner} must be a module name, a module or None. "
                         f"Got {head!r} instead.")
    layer = model.get_submodule(name) if name else model
    if not isinstance(layer, nn.Linear):
        raise ValueError(f"The 'head' parameter of {owner} must be an nn.Linear layer. Got "
                         f"{name!r}, a {type(layer).__name__}, instead.")
    return name, layer


class HeadInput:
    """What the head was last called with: ``features``, shape (N, D), or None before any call."""

    def __init__(self) -> None:
        self.features: torch.Tensor | None = None

    def record(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.features = args[0].detach()


@contextmanager
def head_input(head: nn.Module) -> Iterator[HeadInput]:
    """Record the input of every call of ``head`` inside the block; the hook is removed after."""
    captured = HeadInput()
    handle = head.register_forward_pre_hook(captured.record)
    try:
        yield captured
    finally:
        handle.remove()


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); the CPU for a model with neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_device(inputs: Any, device: torch.device) -> Any:
    """A tensor, or each tensor of a mapping (a tokenizer's output), moved to ``device``."""
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device, non_blocking=True)
    if isinstance(inputs, dict):
        return {k: to_device(v, device) for k, v in inputs.items()}
    return inputs


def logits_of(output: Any) -> torch.Tensor:
    """The logits of a forward pass: the tensor itself, or the ``logits`` field (Hugging Face)."""
    logits = getattr(output, "logits", None)
    if logits is None and isinstance(output, dict):
        logits = output.get("logits")
    if logits is None:
        logits = output
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"Tracker.evaluate: the model returned a {type(output).__name__}; it must "
                         "return logits of shape (N, C) or an output with a 'logits' field")
    return logits
