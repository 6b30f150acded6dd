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
    tensorboard/, wandb/, mlruns/   what the loggers of ``log:`` asked for wrote
    figures/*.png, report.html

Every file is written atomically (temporary file, then rename).

A run directory holds one run. :meth:`RunDir.start` makes a directory a new run's: one that holds
an earlier run's files is refused unless it may overwrite them, and then they are removed only after
the new ``config.yaml`` has replaced the old one. That rename is the commit point: a process killed
before it leaves the earlier run intact; killed after it, the directory is the new run's, and a
marker file (``.overwrite.json``, the new config's fingerprint) tells ``hypbias run --resume`` to
finish the removal (:meth:`RunDir.finish_overwrite`).

Every reader raises a one-line :class:`~hypbias.errors.DataError` naming the file when it is
missing, truncated or malformed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
import yaml

from hypbias._version import __version__
from hypbias.errors import DataError, HypbiasError
from hypbias.hierarchy.tree import Hierarchy
from hypbias.io import (
    TEMPORARY_SUFFIX,
    atomic_path,
    atomic_torch_save,
    atomic_write,
    atomic_write_text,
)
from hypbias.labelspace.spaceset import SpaceSet

T = TypeVar("T")

RUN_FILES = ("config.yaml", "environment.json", "hierarchy.json", "spaces.npz", "spaces.json",
             "confusion.npz", "log.csv", "log.parquet", "metrics.csv", "metrics.parquet",
             "summary.json", "timing.json", "model.pt", "analysis.json", "report.html",
             "learned_hierarchy.json", "learned_hierarchy_analysis.json", "checkpoints.json")
"""The files a run writes at the top of its directory (besides ``<component>.npz`` arrays)."""

RUN_FOLDERS = ("checkpoints", "figures", "tensorboard", "wandb", "mlruns")
OVERWRITE_MARKER = ".overwrite.json"
UNREADABLE = (OSError, ValueError, EOFError, KeyError, IndexError, TypeError, zipfile.BadZipFile,
              zlib.error, yaml.YAMLError)
"""What reading a truncated or malformed file raises (JSON, CSV, YAML, NumPy and Parquet readers)."""


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

    def read(self, name: str, reader: Callable[[Path], T]) -> T:
        """``reader(path)`` of a required file; a one-line DataError naming the file when it is
        missing, truncated or malformed."""
        path = self.require(name)
        try:
            return reader(path)
        except HypbiasError:
            raise
        except UNREADABLE as err:
            text = str(err).strip()
            detail = f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__
            raise DataError(f"{path}: cannot be read, truncated or malformed ({detail})") from None

    # ------------------------------------------------------------------ one run per directory
    def earlier_files(self) -> list[Path]:
        """The files and folders of a run found in the directory (an unfinished one's included)."""
        if not self.path.is_dir():
            return []
        found = []
        for entry in self.path.iterdir():
            name = entry.name
            if (name in RUN_FILES or name in RUN_FOLDERS or name == OVERWRITE_MARKER
                    or (entry.is_file() and name.endswith(".npz"))
                    or (name.startswith(".") and name.endswith(TEMPORARY_SUFFIX))):
                found.append(entry)
        return sorted(found)

    @property
    def is_complete(self) -> bool:
        """Whether the run finished (its ``summary.json`` was written)."""
        return self.file("summary.json").is_file() and not self.file(OVERWRITE_MARKER).exists()

    def start(self, config_text: str, fingerprint: str, *, overwrite: bool = False,
              resumable: bool = True) -> None:
        """Make the directory a new run's, writing its ``config.yaml``.

        An earlier run's files are refused unless ``overwrite``; then they are removed after the new
        ``config.yaml`` is in place (see the module docstring), the marker recording ``fingerprint``
        (the new config's) in between. ``resumable``: an unfinished run here is one ``hypbias run
        --resume`` continues (the refusal says so); False for runs no command resumes.
        """
        earlier = self.earlier_files()
        if earlier and not overwrite:
            hint = f": continue it with 'hypbias run --resume {self.path}'" if resumable else ""
            state = "a finished run" if self.is_complete else f"an unfinished run{hint}"
            raise DataError(f"{self.path}: already holds {state}; choose another --out, or pass "
                            "--overwrite to replace it")
        self.path.mkdir(parents=True, exist_ok=True)
        if earlier:
            self.write_json(OVERWRITE_MARKER, {"fingerprint": fingerprint})
        atomic_write_text(self.file("config.yaml"), config_text)
        if earlier:
            self.finish_overwrite()

    def pending_overwrite(self, fingerprint: str) -> bool:
        """Whether an ``--overwrite`` of the run with config ``fingerprint`` was killed after its
        commit point: its ``config.yaml`` is in place, the earlier run's files still to remove."""
        marker = self.file(OVERWRITE_MARKER)
        if not marker.is_file():
            return False
        try:
            recorded = json.loads(marker.read_text(encoding="utf-8")).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            return False
        return recorded == fingerprint

    def finish_overwrite(self) -> None:
        """Remove every run file but ``config.yaml``, then the marker (see :meth:`start`)."""
        marker = self.file(OVERWRITE_MARKER)
        for entry in self.earlier_files():
            if entry.name in ("config.yaml", OVERWRITE_MARKER):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)

    def drop_overwrite_marker(self) -> None:
        """Forget a marker left by an ``--overwrite`` killed before its commit point."""
        self.file(OVERWRITE_MARKER).unlink(missing_ok=True)

    # ------------------------------------------------------------------ writers
    def write_yaml(self, name: str, data: Any) -> None:
        atomic_write_text(self.file(name), yaml.safe_dump(data, sort_keys=False))

    def write_json(self, name: str, data: Any) -> None:
        atomic_write_text(self.file(name), json.dumps(data, indent=2, default=_json_default))

    def write_npz(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        atomic_write(self.file(name), lambda fh: np.savez_compressed(fh, **arrays))

    def write_table(self, stem: str, frame: pd.DataFrame) -> None:
        """``<stem>.csv``, and ``<stem>.parquet`` when pyarrow is installed (the ``parquet`` extra).

        Without pyarrow a Parquet copy left by an earlier write is removed, so the two never differ.
        """
        atomic_write_text(self.file(f"{stem}.csv"), frame.to_csv(index=False))
        parquet = self.file(f"{stem}.parquet")
        if not _has_pyarrow():
            parquet.unlink(missing_ok=True)
            return
        with atomic_path(parquet) as tmp:
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
        """``config.yaml`` as a plain mapping (checked against the schema by those who build from
        it: :func:`hypbias.experiment.open_run`)."""
        return self.read("config.yaml", lambda p: _mapping(yaml.safe_load(_text(p)), "a mapping"))

    @cached_property
    def summary(self) -> dict[str, Any]:
        return self.read("summary.json", lambda p: _mapping(json.loads(_text(p)), "a JSON object"))

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """The long-format metrics table (``layer`` is the empty string where not per-layer)."""
        if self.file("metrics.parquet").exists() and _has_pyarrow():
            return self.read("metrics.parquet", pd.read_parquet)
        return self.read("metrics.csv", lambda p: pd.read_csv(
            p, dtype={"layer": str}, keep_default_na=False, na_values={"value": ["", "nan", "NaN"]}))

    @cached_property
    def log(self) -> pd.DataFrame:
        return self.read("log.csv", pd.read_csv)

    @cached_property
    def hierarchy(self) -> Hierarchy:
        return self.read("hierarchy.json", lambda p: Hierarchy.from_dict(
            _mapping(json.loads(_text(p)), "a JSON object"), source=str(p)))

    def confusion(self) -> dict[str, np.ndarray]:
        """Split -> array (epochs + 1, C, C) of counts."""
        arrays = self.read("confusion.npz", _npz)
        for split, m in arrays.items():
            if m.ndim != 3 or m.shape[1] != m.shape[2] or not np.issubdtype(m.dtype, np.integer):
                raise DataError(f"{self.file('confusion.npz')}: '{split}' must be an integer array of "
                                f"shape (epochs + 1, C, C). Got {m.dtype} of shape {m.shape} instead.")
        return arrays

    def space_arrays(self) -> dict[str, np.ndarray]:
        return self.read("spaces.npz", _npz)

    @cached_property
    def spaces(self) -> SpaceSet:
        """The label spaces the run was analysed with (``spaces.npz`` and ``spaces.json``)."""
        layout = self.read("spaces.json", lambda p: _mapping(json.loads(_text(p)), "a JSON object"))
        arrays = self.space_arrays()
        missing = [n for name, draws in layout.items() for n in [name, *draws] if n not in arrays]
        if missing:
            raise DataError(f"{self.file('spaces.npz')}: no array {missing[0]!r}, which "
                            f"{self.file('spaces.json')} names")
        return self.read("spaces.json", lambda _: SpaceSet.from_arrays(arrays, layout))

    def write_spaces(self, spaces: SpaceSet) -> None:
        """``spaces.npz`` and ``spaces.json``, read back by :attr:`spaces`."""
        self.write_npz("spaces.npz", spaces.to_arrays())
        self.write_json("spaces.json", spaces.layout())


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _mapping(value: Any, what: str) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"must hold {what}, not {type(value).__name__}")
    return value


def _npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read in full (no pickled objects)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _has_pyarrow() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
