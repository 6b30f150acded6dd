"""Outputs of named intermediate layers, collected with forward hooks (Sec. 4.3, App. C.4).

Works on any ``nn.Module``: layers are named as in ``model.named_modules()`` (``"body.act1"``,
``"blocks.block2"``, ``"layer3.1.conv2"``). Each output is reduced to a vector per example:

* ``pool="max"`` (default): global max over the spatial axes of a map (N, C, *spatial), the paper's
  footnote 3 for the manifold analysis;
* ``pool="avg"``: global average;
* ``pool=("avg", k)`` or ``("max", k)``: adaptive pooling to k per spatial axis, then flattened to
  (N, C·k^s): the "average pooling windows" of the linear probes (App. C.4.1);
* ``pool="flatten"``: every value, flattened.

Outputs of shape (N, D) are kept as they are; larger outputs are read channel-first, (N, C, *spatial),
unless ``token`` says that 3-d outputs are token sequences (N, T, D):

* ``token="cls"``: the first token, (N, D): the class token of ViT and BERT (App. C.4.2 probes the
  normalised class token; hook ``blocks.<i>.norm1`` of a timm ViT to get it);
* ``token="mean"``: the average over the T tokens (Chen et al. 2020).

A module that returns a tuple contributes its first element (Hugging Face layers return
``(hidden_states, ...)``). Features are detached and stored in float32 on
the device they were computed on.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
>>> with LayerFeatures(net, ["1", "3"]) as lf:
...     _ = net(torch.zeros(5, 3, 8, 8))
...     feats = lf.collect()
>>> {name: tuple(f.shape) for name, f in feats.items()}
{'1': (5, 4), '3': (5, 2)}
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hypbias._validation import check_choice, check_int

PoolSpec = str | tuple[str, int]
"""``"max"``, ``"avg"``, ``"flatten"``, or ``("max" | "avg", k)``."""

TOKENS = ("cls", "mean")
"""How a token sequence (N, T, D) becomes a vector per example (``token`` of :class:`LayerFeatures`)."""

_ADAPTIVE = {
    "avg": {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d},
    "max": {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d},
}


def check_pool(pool: Any) -> tuple[str, int | None]:
    """Validate a :data:`PoolSpec`; returns (mode, window), window None meaning global pooling."""
    owner = "LayerFeatures"
    if isinstance(pool, tuple | list):
        if len(pool) != 2:
            raise ValueError(
                f"The 'pool' parameter of {owner} must be a mode or a (mode, k) pair. "
                f"Got {pool!r} instead."
            )
        mode = check_choice(pool[0], "pool", owner, ["avg", "max"])
        return mode, check_int(pool[1], "pool", owner, low=1)
    return check_choice(pool, "pool", owner, ["max", "avg", "flatten"]), None


def check_token(token: Any) -> str | None:
    """Validate the ``token`` option: None or one of :data:`TOKENS`."""
    return None if token is None else check_choice(token, "token", "LayerFeatures", TOKENS)


def pool_features(output: torch.Tensor, pool: PoolSpec = "max", token: str | None = None
                  ) -> torch.Tensor:
    """Reduce a layer output of shape (N, C, *spatial), or (N, T, D) with ``token``, to (N, D).

    Outputs of shape (N, D) are returned unchanged; see the module docstring for the modes.
    """
    mode, window = check_pool(pool)
    if check_token(token) is not None and output.ndim == 3:
        return output[:, 0] if token == "cls" else output.mean(dim=1)
    if output.ndim <= 2:
        return output.reshape(len(output), -1)
    if mode == "flatten":
        return output.flatten(1)
    spatial = tuple(range(2, output.ndim))
    if window is None:
        return output.amax(dim=spatial) if mode == "max" else output.mean(dim=spatial)
    if len(spatial) > 3:
        raise ValueError(
            f"Windowed pooling supports 1 to 3 spatial axes. Got an output of shape "
            f"{tuple(output.shape)} instead."
        )
    return _ADAPTIVE[mode][len(spatial)](output, window).flatten(1)


class LayerFeatures:
    """Record pooled outputs of named modules of ``model`` during its forward passes.

    Parameters
    ----------
    model : nn.Module
    layers : sequence of str
        Module names from ``model.named_modules()``; an unknown name raises ``ValueError`` listing
        close matches.
    pool : PoolSpec
        How outputs with spatial axes become vectors (module docstring). Default ``"max"``.
    token : ``"cls"``, ``"mean"`` or None
        Read 3-d outputs as token sequences (N, T, D) and keep the class token or the token mean;
        None (default) reads them as 1-d maps (N, C, L).

    Use it as a context manager (hooks are removed on exit) or call :meth:`close`. Every forward
    pass appends one batch per layer; :meth:`collect` concatenates them, returning a dict
    ``name -> tensor of shape (n_examples, D_layer)`` in the order of ``layers``, and clears them.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], pool: PoolSpec = "max",
                 token: str | None = None) -> None:
        if isinstance(layers, str) or not layers:
            raise ValueError(
                "The 'layers' parameter of LayerFeatures must be a non-empty list of module names. "
                f"Got {layers!r} instead."
            )
        if len(set(layers)) != len(layers):
            raise ValueError(
                f"The 'layers' parameter of LayerFeatures lists a module twice. Got {list(layers)!r}."
            )
        self.pool = pool
        check_pool(pool)
        self.token = check_token(token)
        modules = dict(model.named_modules())
        for name in layers:
            if name not in modules:
                raise ValueError(_unknown_layer_message(name, list(modules)))
        self.layers = list(layers)
        self._batches: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        self._handles = [modules[name].register_forward_hook(self._hook(name))
                         for name in self.layers]

    def _hook(self, name: str) -> Any:
        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            out = output[0] if isinstance(output, tuple | list) else output
            if not isinstance(out, torch.Tensor):
                raise TypeError(
                    f"LayerFeatures: module {name!r} returned {type(out).__name__}, not a tensor"
                )
            self._batches[name].append(pool_features(out.detach(), self.pool, self.token).float())

        return record

    def collect(self) -> dict[str, torch.Tensor]:
        """Features recorded since the last call: ``name -> (n_examples, D)``; clears the buffer."""
        empty = [name for name, batches in self._batches.items() if not batches]
        if empty:
            raise RuntimeError(
                f"LayerFeatures: no output recorded for layer {empty[0]!r}; run the model first "
                "(a module the forward pass skips never records anything)"
            )
        out = {name: torch.cat(batches) for name, batches in self._batches.items()}
        for batches in self._batches.values():
            batches.clear()
        return out

    @property
    def active(self) -> bool:
        """Whether the hooks are still registered."""
        return bool(self._handles)

    def close(self) -> None:
        """Remove the hooks and drop recorded features."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for batches in self._batches.values():
            batches.clear()

    def __enter__(self) -> LayerFeatures:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _unknown_layer_message(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, [k for k in known if k], n=5, cutoff=0.5)
    hint = (", ".join(repr(c) for c in close) if close
            else "none; list them with [n for n, _ in model.named_modules()]")
    return f"The 'layers' parameter of LayerFeatures names unknown module {name!r}; close matches: {hint}."


@torch.no_grad()
def extract_features(model: nn.Module, inputs: torch.Tensor, layers: Sequence[str],
                     pool: PoolSpec = "max", batch_size: int = 512,
                     token: str | None = None) -> dict[str, torch.Tensor]:
    """Run ``model`` in eval mode over ``inputs`` (N, ...) in batches and return pooled features.

    ``pool`` and ``token`` are those of :class:`LayerFeatures`.
    Inputs move batch by batch to the device of the model's first parameter (or buffer); the
    model's training mode is restored afterwards. Returns ``name -> tensor (N, D_layer)`` on that
    device, in the order of ``layers``.
    """
    batch_size = check_int(batch_size, "batch_size", "extract_features", low=1)
    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else inputs.device
    was_training = model.training
    model.eval()
    try:
        with LayerFeatures(model, layers, pool, token) as lf:
            for start in range(0, len(inputs), batch_size):
                model(inputs[start: start + batch_size].to(device, non_blocking=True))
            return lf.collect()
    finally:
        model.train(was_training)


__all__ = ["TOKENS", "LayerFeatures", "PoolSpec", "check_pool", "check_token", "extract_features",
           "pool_features"]
