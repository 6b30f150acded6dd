"""Checkpoints that resume a run exactly: model, optimiser, scheduler, tracker, EMA, every RNG.

``checkpoints/epoch_XXX.pt`` is written atomically at the end of an epoch, after its evaluation, so a
run killed at any moment resumes from its last complete epoch. On the CPU the resumed run equals an
uninterrupted one array for array: the data order, the augmentation draws and the global RNGs
continue from the saved states.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hypbias.errors import DataError
from hypbias.io import atomic_torch_save
from hypbias.train.ema import ModelEMA
from hypbias.train.tracker import Tracker

_NAME = re.compile(r"epoch_(\d+)\.pt$")


@dataclass
class TrainingState:
    """The objects a checkpoint saves and restores."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    tracker: Tracker
    data_order: torch.Generator
    augment: torch.Generator
    ema: ModelEMA | None

    def save(self, path: Path, log: list[dict[str, float]], elapsed: float) -> None:
        payload = {
            "epoch": self.tracker.epochs[-1],
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "tracker": self.tracker.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),  # noqa: NPY002
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "data_order": self.data_order.get_state(),
                "augment": self.augment.get_state(),
            },
            "log": log,
            "elapsed": elapsed,
        }
        atomic_torch_save(path, payload)

    def load(self, path: Path) -> tuple[list[dict[str, float]], float]:
        """Restore everything from ``path``; returns the epoch log and the elapsed seconds."""
        payload = read_checkpoint(path)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.tracker.load_state_dict(payload["tracker"])
        if self.ema is not None and payload["ema"] is not None:
            self.ema.load_state_dict(payload["ema"])
        rng = payload["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])  # noqa: NPY002
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.data_order.set_state(rng["data_order"])
        self.augment.set_state(rng["augment"].to(self.augment.get_state().device))
        return list(payload["log"]), float(payload["elapsed"])


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The payload of a checkpoint written by :meth:`TrainingState.save`; DataError naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file
        raise DataError(f"{path}: cannot read checkpoint ({type(err).__name__}: {err})") from None


def load_evaluated_weights(path: Path, model: torch.nn.Module) -> int:
    """Load the weights the tracker evaluated at a checkpoint's epoch; returns that epoch.

    Those are the exponential moving average when the run kept one (the loop evaluates with the
    average swapped in), else the model's own weights.
    """
    payload = read_checkpoint(path)
    ema = payload.get("ema")
    model.load_state_dict(payload["model"] if ema is None else ema["shadow"])
    return int(payload["epoch"])


def checkpoints(directory: Path) -> list[Path]:
    """``epoch_XXX.pt`` files of a directory, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.search(p.name))]
    return [p for _, p in sorted(found)]


def latest(directory: Path | None) -> Path:
    """The newest checkpoint, or a DataError naming the directory."""
    if directory is None:
        raise DataError("resume: no checkpoint directory given")
    found = checkpoints(directory)
    if not found:
        raise DataError(f"{directory}: no epoch_XXX.pt checkpoint to resume from "
                        "(train.save_every must be > 0)")
    return found[-1]
