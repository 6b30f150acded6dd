"""State dicts saved by other training scripts: find the files, their epochs and the weights in them.

Files are read with ``torch.load(..., weights_only=True)``: a checkpoint is data, never code. The
layouts of the usual scripts load without user code:

* a bare state dict (``torch.save(model.state_dict(), path)``);
* the weights under ``state_dict`` (timm, Lightning), ``model`` (torchvision's reference scripts),
  ``model_state_dict``, ``module`` or ``net``; the ``args`` Namespace those scripts save is read
  as plain data;
* an exponential moving average, preferred when the file holds one (``ema=True``): timm's
  ``state_dict_ema``, torchvision's ``model_ema`` (an ``AveragedModel``: its ``n_averaged``
  counter is dropped), hypbias's own ``ema`` (``{"shadow": ...}``);
* key prefixes of wrappers: ``module.`` (DistributedDataParallel, AveragedModel), ``_orig_mod.``
  (``torch.compile``), and any the caller names (a LightningModule's attribute, ``model.``).

Epochs come from the file names (``epoch_12``, ``epoch=12-step=400``, ``model_12``,
``checkpoint-12.pth.tar``: an ``epoch`` number when named, else the last number) or are given.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hypbias.errors import DataError

EMA_KEYS = ("state_dict_ema", "model_ema", "ema_state_dict", "ema")
"""Where scripts keep the moving average of the weights, in the order looked for."""

WEIGHT_KEYS = ("state_dict", "model", "model_state_dict", "module", "net")
"""Where scripts keep the weights themselves, in the order looked for."""

WRAPPER_PREFIXES = ("module.", "_orig_mod.")

_EPOCH = re.compile(r"epoch[_=\-]?(\d+)", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")


def expand_checkpoints(patterns: Sequence[str]) -> list[Path]:
    """Files matching the glob ``patterns`` (a pattern without wildcards names one file)."""
    found: dict[Path, None] = {}
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise DataError(f"{pattern}: no checkpoint file matches")
        for match in matches:
            path = Path(match)
            if not path.is_file():
                raise DataError(f"{path}: no such checkpoint file")
            found[path] = None
    return list(found)


def epoch_from_name(path: Path) -> int | None:
    """The epoch a file name states: the number after ``epoch``, else the name's last number."""
    named = _EPOCH.search(path.name)
    if named:
        return int(named.group(1))
    numbers = _NUMBER.findall(path.name)
    return int(numbers[-1]) if numbers else None


def order_by_epoch(paths: Sequence[Path], epochs: Sequence[int] | None = None) -> list[tuple[int, Path]]:
    """``(epoch, path)`` pairs in increasing epoch order.

    ``epochs``: the epoch of each path, in the order of ``paths``; by default read from the names.
    """
    if epochs is not None:
        if len(epochs) != len(paths):
            raise DataError(f"--epochs gives {len(epochs)} epochs for {len(paths)} checkpoint files")
        pairs = list(zip((int(e) for e in epochs), paths, strict=True))
    else:
        pairs = []
        for path in paths:
            epoch = epoch_from_name(path)
            if epoch is None:
                raise DataError(f"{path}: no epoch in the file name; pass --epochs or leave the "
                                "file out")
            pairs.append((epoch, path))
    pairs.sort(key=lambda pair: pair[0])
    for (a, first), (b, second) in itertools.pairwise(pairs):
        if a == b:
            raise DataError(f"{first} and {second} are both epoch {a}; choose one (or pass --epochs)")
    return pairs


def read_checkpoint_weights(path: Path, *, ema: bool = True,
                            strip: Sequence[str] = ()) -> tuple[dict[str, torch.Tensor], str]:
    """The model weights in a checkpoint file and where they were found (``"state_dict_ema"``,
    ``"model"``, ``"(the file)"``, ...).

    ``ema``: prefer a moving average of the weights when the file holds one. ``strip``: key
    prefixes to remove (besides those of wrappers) when every key starts with them.
    """
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated file, or one that needs code to unpickle
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise DataError(f"{path}: cannot read it as weights ({type(err).__name__}: {first[:200]}); "
                        "hypbias reads only tensors and plain data (weights_only=True)") from None
    state, where = _find_weights(payload, ema, path)
    state = {k: v for k, v in state.items() if k != "n_averaged"}
    prefixes = (*WRAPPER_PREFIXES, *strip)
    while state and (found := next((p for p in prefixes if all(k.startswith(p) for k in state)), None)):
        state = {k[len(found):]: v for k, v in state.items()}
    return state, where


def _is_state_dict(obj: Any) -> bool:
    return (isinstance(obj, Mapping) and bool(obj)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def _find_weights(payload: Any, ema: bool, path: Path) -> tuple[Mapping[str, torch.Tensor], str]:
    if _is_state_dict(payload):
        return payload, "(the file)"
    if isinstance(payload, Mapping):
        for key in (*EMA_KEYS, *WEIGHT_KEYS) if ema else WEIGHT_KEYS:
            value = payload.get(key)
            if isinstance(value, Mapping) and _is_state_dict(value.get("shadow")):
                return value["shadow"], f"{key}.shadow"
            if _is_state_dict(value):
                return value, key
        keys = ", ".join(repr(k) for k in list(payload)[:8])
        raise DataError(f"{path}: no state dict found (top-level keys: {keys}); expected one "
                        f"itself or under one of {', '.join(WEIGHT_KEYS)}")
    raise DataError(f"{path}: holds a {type(payload).__name__}, not a state dict")


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Load ``state`` into ``model``: its own keys, or (adapted torchvision, timm and Hugging Face
    models) the original network's keys; a DataError naming the file and the keys otherwise."""
    own = model.state_dict().keys()
    if state.keys() != own and hasattr(model, "from_source_state_dict"):
        mapped = model.from_source_state_dict(state)
        if mapped.keys() == own:
            state = mapped
    if state.keys() != own:
        missing, unexpected = sorted(own - state.keys()), sorted(state.keys() - own)
        raise DataError(f"{path}: the weights do not fit the model: missing {missing[:4]}, "
                        f"unexpected {unexpected[:4]} (wrong --model, or pass --strip PREFIX)")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # shapes: another number of classes or another architecture
        detail = " ".join(str(err).split())
        raise DataError(f"{path}: the weights do not fit the model: {detail[:300]}") from None


__all__ = ["EMA_KEYS", "WEIGHT_KEYS", "epoch_from_name", "expand_checkpoints", "load_weights",
           "order_by_epoch", "read_checkpoint_weights"]
