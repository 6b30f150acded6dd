"""Experiment configuration: YAML files merged over defaults, with ``--set key=value`` overrides.

A config is a nested dict. :func:`defaults` lists every section and key: the experiment's own
(:data:`BASE_DEFAULTS`) and those of each tracker component, which declares its section where it is
defined (:mod:`hypbias.train.components`). A key that is not there is an error naming the file and
the key, except in ``data`` and ``model``, whose extra keys are the keyword options of the dataset
and model factories. A file may start with ``base: other.yaml`` (resolved next to it, then among the
packaged configs) to inherit from another config.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hypbias.errors import ConfigError

BASE_DEFAULTS: dict[str, Any] = {
    "config_file": None,
    "seed": 0,
    "data": {"name": "synthetic", "root": None},
    "model": {"name": "mlp"},
    "train": {
        "epochs": 30,
        "batch_size": 128,
        "optimizer": "sgd",
        "lr": 0.01,
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 5e-4,
        "schedule": "cosine",
        "milestones": [0.5, 0.75],
        "gamma": 0.1,
        "warmup_epochs": 0,
        "label_smoothing": 0.0,
        "augment": None,
        "ema": 0.0,
        "device": "auto",
        "amp": False,
        "channels_last": False,
        "compile": False,
        "num_workers": 0,
        "save_every": 0,
    },
    "track": {"splits": ["val"], "eval_batch_size": 1024},
    "spaces": {"hypernyms": [4], "random_draws": 10, "q": 0.95, "seed": 0},
    "loss": {"name": "ce"},
    "report": {"figures": True, "nc_threshold": 0.1},
}

def defaults() -> dict[str, Any]:
    """Every section and key with its default: :data:`BASE_DEFAULTS` plus each component's section."""
    from hypbias.train.components import components

    out = copy.deepcopy(BASE_DEFAULTS)
    for spec in components():
        out[spec.section] = copy.deepcopy(dict(spec.defaults))
    return out


OPEN_SECTIONS = {"data", "model", "loss"}
"""Sections whose extra keys are passed on as keyword options rather than checked here."""

DEFAULT_CONFIG = "synthetic.yaml"


def packaged_configs() -> Path:
    """The folder of configs shipped with the package (``configs/`` in the repository)."""
    return Path(str(resources.files("hypbias") / "configs"))


def find_config(name: str | Path) -> Path:
    """Resolve a config path, or a bare name such as ``cifar100_resnet18`` among the packaged configs."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (packaged_configs() / path, packaged_configs() / f"{path}.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{name}: no such config file (nor a packaged config of that name)")


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a config (default: the embedded synthetic experiment), merge defaults and overrides.

    Parameters
    ----------
    path : a YAML file or a packaged config name; None for :data:`DEFAULT_CONFIG`.
    overrides : ``"section.key=value"`` strings; values are parsed as YAML (``train.lr=0.1``,
        ``spaces.hypernyms=[4,20]``).

    Returns
    -------
    The resolved config, a nested dict with every default filled in.
    """
    source = find_config(path if path is not None else DEFAULT_CONFIG)
    user = _read_with_base(source, seen=())
    merged = apply_overrides(_merge(defaults(), user, str(source), prefix=""), overrides)
    merged["config_file"] = str(source)
    return merged


def apply_overrides(config: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``config`` with ``"section.key=value"`` overrides applied (values parsed as YAML)."""
    merged = copy.deepcopy(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.lr=0.1")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        nested: Any = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        merged = _merge(merged, nested, f"--set {item}", prefix="")
    return merged


def _read_with_base(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'base' inheritance loops back to {path.name}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: cannot parse YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping at the top level")
    base = data.pop("base", None)
    if base is None:
        return data
    base_path = path.parent / base
    parent = _read_with_base(base_path if base_path.is_file() else find_config(base),
                             (*seen, path.resolve()))
    return _merge(parent, data, str(path), prefix="", check=False)


def _merge(base: dict[str, Any], update: Mapping[str, Any], source: str, prefix: str,
           check: bool = True) -> dict[str, Any]:
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if check and key not in base and prefix.split(".")[0] not in OPEN_SECTIONS:
            hint = difflib.get_close_matches(key, list(base), n=1)
            suggestion = f" (did you mean '{prefix}{hint[0]}'?)" if hint else ""
            raise ConfigError(f"{source}: unknown key '{dotted}'{suggestion}")
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            base[key] = _merge(base[key], value, source, prefix=f"{dotted}.", check=check)
        elif isinstance(base.get(key), dict) and value is not None and check:
            raise ConfigError(f"{source}: '{dotted}' must be a mapping, got {value!r}")
        else:
            base[key] = copy.deepcopy(value)
    return base


def section(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A copy of one section, for passing on as keyword options."""
    return dict(config.get(name) or {})


def config_error(config: Mapping[str, Any], key: str, message: str) -> ConfigError:
    """A ConfigError naming the config file and the dotted key."""
    return ConfigError(f"{config.get('config_file', 'config')}: '{key}' {message}")
