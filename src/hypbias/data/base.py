"""What every dataset source returns: a :class:`DatasetBundle` of splits, classes and a hierarchy.

Splits are ``torch.utils.data.Dataset`` objects yielding ``(x, y)`` with ``y`` a fine class index.
In-memory data uses :class:`TensorSplit`, which the training loop batches by slicing (no per-sample
Python); any other ``Dataset`` goes through a ``DataLoader``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hypbias._registry import Registry
from hypbias.errors import DataError
from hypbias.hierarchy.tree import Hierarchy
from hypbias.labelspace import LabelSpace


class TensorSplit(Dataset):
    """A split held in memory: inputs ``x`` of shape (N, ...) and labels ``y`` of shape (N,)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if len(x) != len(y):
            raise ValueError(f"TensorSplit: {len(x)} inputs but {len(y)} labels")
        self.x = x
        self.y = y.long()
        self._copies: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]

    def labels(self) -> np.ndarray:
        return self.y.numpy()

    def on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` on ``device``, copied once and kept: the data stay resident between epochs."""
        if self.x.device == device:
            return self.x, self.y
        key = str(device)
        if key not in self._copies:
            self._copies[key] = (self.x.to(device), self.y.to(device))
        return self._copies[key]


def data_folder(root: str | Path | None, dataset: str, expected: str, *, must_exist: bool = True) -> Path:
    """``data.root`` as a Path, or a one-line DataError saying what the folder should hold."""
    if root is None:
        raise DataError(f"{dataset}: no data folder given; set data.root or pass --data-dir DIR "
                        f"(the folder holding {expected})")
    path = Path(root)
    if must_exist and not path.is_dir():
        raise DataError(f"{path}: no such data folder (expected {expected})")
    return path


def split_labels(split: Dataset) -> np.ndarray:
    """Fine labels of every sample of a split, shape (N,); uses ``split.labels()`` when defined."""
    if hasattr(split, "labels"):
        return np.asarray(split.labels(), dtype=np.int64)
    return np.array([int(split[i][1]) for i in range(len(split))], dtype=np.int64)


@dataclass
class DatasetBundle:
    """A dataset ready for training and analysis.

    Attributes
    ----------
    name : str
    train, val : Dataset yielding (x, y)
    classes : list of str, the C fine class names (index = label)
    hierarchy : Hierarchy whose leaves are ``classes``
    input_shape : tuple, the shape of one input (without the batch axis)
    spaces : named label spaces the source defines itself (e.g. CIFAR-100's ``S20``)
    info : free-form facts recorded in the run directory (sizes, paths, generator parameters)
    """

    name: str
    train: Dataset
    val: Dataset
    classes: list[str]
    hierarchy: Hierarchy
    input_shape: tuple[int, ...]
    spaces: dict[str, LabelSpace] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> Dataset:
        if name not in ("train", "val"):
            raise ValueError(f"The 'split' parameter must be 'train' or 'val'. Got {name!r} instead.")
        return self.train if name == "train" else self.val


DatasetFactory = Callable[..., DatasetBundle]
DATASETS: Registry[DatasetFactory] = Registry("The 'data.name' setting")


def register_dataset(name: str) -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator registering ``factory(**options) -> DatasetBundle`` under ``name``."""
    return DATASETS.register(name)


def list_datasets() -> list[str]:
    return DATASETS.names()


def create_dataset(name: str, **options: Any) -> DatasetBundle:
    """Build a registered dataset (``data.name`` in a config; ``options`` are the rest of ``data``)."""
    return DATASETS.get(name)(**options)
