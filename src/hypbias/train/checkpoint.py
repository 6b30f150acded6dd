"""Checkpoints that resume a run exactly: model, optimiser, scheduler, tracker, EMA, every RNG.

``checkpoints/epoch_XXX.pt`` is written atomically at the end of an epoch, after its evaluation, so a
run killed at any moment resumes from its last complete epoch. On the CPU the resumed run equals an
uninterrupted one array for array: the data order, the augmentation draws and the global RNGs
continue from the saved states.

A checkpoint holds only tensors and plain data (NumPy states are stored as tensors and lists) and
is read with ``torch.load(..., weights_only=True)``: opening one never runs code. It records the
config it was made with, which :func:`resume_point` and ``hypbias analyze`` compare with the run's.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hypbias.errors import ConfigError, DataError
from hypbias.io import atomic_torch_save
from hypbias.train.config import Config, differing_keys, fingerprint
from hypbias.train.ema import ModelEMA
from hypbias.train.tracker import Tracker

_NAME = re.compile(r"epoch_(\d+)\.pt$")


@dataclass
class TrainingState:
    """The objects a checkpoint saves and restores, and the config they were made with."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    tracker: Tracker
    data_order: torch.Generator
    augment: torch.Generator
    ema: ModelEMA | None
    config: Config

    def save(self, path: Path, elapsed: float) -> None:
        """Write every object's state and ``elapsed`` (seconds of the run so far); the epoch log
        travels in the tracker's state."""
        payload = {
            "epoch": self.tracker.epochs[-1],
            "config": self.config.as_dict(),
            "config_hash": fingerprint(self.config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "tracker": storable(self.tracker.state_dict()),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "rng": {
                "python": random.getstate(),
                "numpy": _numpy_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "data_order": self.data_order.get_state(),
                "augment": self.augment.get_state(),
            },
            "elapsed": elapsed,
        }
        atomic_torch_save(path, payload)

    def load(self, payload: Mapping[str, Any]) -> float:
        """Restore everything from a checkpoint's payload; returns the elapsed seconds."""
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        tracker = dict(payload["tracker"])
        tracker["history"] = {s: h.numpy() for s, h in tracker["history"].items()}
        self.tracker.load_state_dict(tracker)
        if self.ema is not None and payload["ema"] is not None:
            self.ema.load_state_dict(payload["ema"])
        rng = payload["rng"]
        random.setstate(rng["python"])
        _set_numpy_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.data_order.set_state(rng["data_order"])
        self.augment.set_state(rng["augment"].to(self.augment.get_state().device))
        return float(payload["elapsed"])


def storable(obj: Any) -> Any:
    """``obj`` with NumPy arrays as tensors and NumPy scalars as Python numbers (recursively), so
    that ``torch.load(..., weights_only=True)`` reads it back."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {k: storable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(storable(v) for v in obj)
    return obj


def _numpy_state() -> dict[str, Any]:
    """NumPy's legacy global RNG state as plain data."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    return {"name": name, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
            "gauss": float(gauss)}


def _set_numpy_state(state: Mapping[str, Any]) -> None:
    np.random.set_state((state["name"], np.asarray(state["keys"], dtype=np.uint32),  # noqa: NPY002
                         state["pos"], state["has_gauss"], state["gauss"]))


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The payload of a checkpoint (tensors and plain data only); a DataError naming the file when
    it is truncated, foreign, or holds any other object (nothing in it runs)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None
    except Exception as err:  # a truncated file, a foreign format, or a refused object
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "Weights only load failed" in detail or "Unsupported global" in str(err):
            detail = "it holds objects other than tensors and plain data, which are never loaded"
        raise DataError(f"{path}: cannot read checkpoint ({detail})") from None
    if not isinstance(payload, dict) or "model" not in payload or "epoch" not in payload:
        raise DataError(f"{path}: not a hypbias checkpoint (no model weights and epoch)")
    return payload


def check_config(payload: Mapping[str, Any], path: Path, config: Config) -> None:
    """Refuse a checkpoint made with another config than ``config`` (safe keys aside), naming the
    keys that differ."""
    recorded = payload.get("config")
    if not isinstance(recorded, Mapping):
        raise DataError(f"{path}: records no config, so it cannot be matched with "
                        f"{config.origins.default} (written by an older hypbias?)")
    if payload.get("config_hash") == fingerprint(config):
        return
    changed = differing_keys(recorded, config)
    if changed:
        raise ConfigError(f"{config.origins.default}: differs from the config of {path} in "
                          f"{'; '.join(changed)}")


def load_evaluated_weights(payload: Mapping[str, Any], model: torch.nn.Module) -> int:
    """Load the weights the tracker evaluated at a checkpoint's epoch; returns that epoch.

    Those are the exponential moving average when the run kept one (the loop evaluates with the
    average swapped in), else the model's own weights.
    """
    ema = payload.get("ema")
    model.load_state_dict(payload["model"] if ema is None else ema["shadow"])
    return int(payload["epoch"])


def checkpoints(directory: Path) -> list[Path]:
    """``epoch_XXX.pt`` files of a directory, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.search(p.name))]
    return [p for _, p in sorted(found)]


def resume_point(directory: Path | None, config: Config) -> dict[str, Any] | None:
    """The newest checkpoint's payload, checked to be made with ``config``; None when there is none
    (the run then starts again from epoch 0, which gives the same numbers)."""
    found = checkpoints(directory) if directory is not None else []
    if not found:
        return None
    payload = read_checkpoint(found[-1])
    check_config(payload, found[-1], config)
    return payload


__all__ = ["TrainingState", "check_config", "checkpoints", "load_evaluated_weights",
           "read_checkpoint", "resume_point", "storable"]
