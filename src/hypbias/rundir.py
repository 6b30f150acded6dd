"""The run directory: where a run's provenance, statistics, metrics, model and report live.

Layout (DESIGN.md §4)::

    config.yaml          resolved config, seeds included
    environment.json     versions, git revision, device, command line
    hierarchy.json       the class hierarchy ({"classes", "parents"})
    spaces.npz           one assignment array t per label space
    spaces.json          hypernym space -> names of its random draws (the order matters)
    log.csv              per-epoch training loss, learning rate, fine accuracy, elapsed seconds
    confusion.npz        per split an array (epochs + 1, C, C); index 0 = before training
    metrics.csv/.parquet long format: epoch, split, space, metric, value, layer
    summary.json         τ_q per split and space, final accuracies, findings
    model.pt             final model state_dict
    checkpoints/         epoch_XXX.pt when train.save_every > 0
    figures/*.png, report.html

Every file is written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from hypbias._version import __version__
from hypbias.errors import DataError
from hypbias.hierarchy.tree import Hierarchy
from hypbias.io import atomic_path, atomic_torch_save, atomic_write, atomic_write_text
from hypbias.labelspace.spaceset import SpaceSet


def environment(device: str | None = None) -> dict[str, Any]:
    """Versions, git revision, host and command line, for ``environment.json``."""
    versions = {"hypbias": __version__, "python": platform.python_version(), "torch": torch.__version__,
                "numpy": np.__version__, "pandas": pd.__version__}
    for pkg in ("scipy", "matplotlib", "umap", "sklearn", "torchvision", "timm", "transformers"):
        mod = sys.modules.get(pkg)
        if mod is not None and hasattr(mod, "__version__"):
            versions[pkg] = mod.__version__
    return {
        "versions": versions,
        "git_revision": _git_revision(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "command": sys.argv,
    }


def main_split(splits: Any) -> str:
    """The split findings are about: ``val`` when tracked, else the first of ``splits``."""
    splits = list(splits)
    return "val" if "val" in splits else str(splits[0])


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                           capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


@dataclass
class RunDir:
    """Paths and readers/writers of one run directory."""

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def require(self, name: str) -> Path:
        """The path of ``name``, or a DataError naming it when it is missing."""
        p = self.file(name)
        if not p.exists():
            raise DataError(f"{p}: missing (is {self.path} a hypbias run directory?)")
        return p

    # ------------------------------------------------------------------ writers
    def write_yaml(self, name: str, data: Any) -> None:
        atomic_write_text(self.file(name), yaml.safe_dump(data, sort_keys=False))

    def write_json(self, name: str, data: Any) -> None:
        atomic_write_text(self.file(name), json.dumps(data, indent=2, default=_json_default))

    def write_npz(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        atomic_write(self.file(name), lambda fh: np.savez_compressed(fh, **arrays))

    def write_table(self, stem: str, frame: pd.DataFrame) -> None:
        """``<stem>.csv`` and ``<stem>.parquet``."""
        atomic_write_text(self.file(f"{stem}.csv"), frame.to_csv(index=False))
        with atomic_path(self.file(f"{stem}.parquet")) as tmp:
            frame.to_parquet(tmp, index=False)

    def write_torch(self, name: str, obj: Any) -> None:
        atomic_torch_save(self.file(name), obj)

    # ------------------------------------------------------------------ readers
    def reload(self) -> None:
        """Forget cached reads (config, summary, metrics, ...) after the files were rewritten."""
        for name in ("config", "summary", "metrics", "log", "hierarchy", "spaces"):
            self.__dict__.pop(name, None)

    @property
    def main_split(self) -> str:
        """The split the findings are about (:func:`main_split` of ``track.splits``)."""
        return main_split(self.config["track"]["splits"])

    @cached_property
    def config(self) -> dict[str, Any]:
        return yaml.safe_load(self.require("config.yaml").read_text(encoding="utf-8"))

    @cached_property
    def summary(self) -> dict[str, Any]:
        return json.loads(self.require("summary.json").read_text(encoding="utf-8"))

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """The long-format metrics table (``layer`` is the empty string where not per-layer)."""
        parquet = self.file("metrics.parquet")
        if parquet.exists():
            return pd.read_parquet(parquet)
        return pd.read_csv(self.require("metrics.csv"), dtype={"layer": str}, keep_default_na=False,
                           na_values={"value": ["", "nan", "NaN"]})

    @cached_property
    def log(self) -> pd.DataFrame:
        return pd.read_csv(self.require("log.csv"))

    @cached_property
    def hierarchy(self) -> Hierarchy:
        path = self.require("hierarchy.json")
        return Hierarchy.from_dict(json.loads(path.read_text(encoding="utf-8")), source=str(path))

    def confusion(self) -> dict[str, np.ndarray]:
        """Split -> array (epochs + 1, C, C)."""
        with np.load(self.require("confusion.npz")) as data:
            return {k: data[k] for k in data.files}

    def space_arrays(self) -> dict[str, np.ndarray]:
        with np.load(self.require("spaces.npz")) as data:
            return {k: data[k] for k in data.files}

    @cached_property
    def spaces(self) -> SpaceSet:
        """The label spaces the run was analysed with (``spaces.npz`` and ``spaces.json``)."""
        layout = json.loads(self.require("spaces.json").read_text(encoding="utf-8"))
        return SpaceSet.from_arrays(self.space_arrays(), layout)

    def write_spaces(self, spaces: SpaceSet) -> None:
        """``spaces.npz`` and ``spaces.json``, read back by :attr:`spaces`."""
        self.write_npz("spaces.npz", spaces.to_arrays())
        self.write_json("spaces.json", spaces.layout())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
