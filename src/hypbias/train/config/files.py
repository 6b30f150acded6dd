"""Config files and ``--set`` overrides as nested dicts, recording where every key was set.

YAML is read with one change from PyYAML's YAML 1.1 rules: numbers in scientific notation without
a dot (``1e-3``, ``5E4``) are numbers, as in YAML 1.2, JSON and Python, not strings. A file may start
with ``base: other.yaml`` (resolved next to it, then among the packaged configs) to inherit from
another config.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hypbias.errors import ConfigError
from hypbias.train.config.schema import Origins


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-3`` as a float."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

DEFAULT_CONFIG = "synthetic.yaml"


def parse_yaml(text: str) -> Any:
    """``text`` as YAML (:class:`ConfigLoader`); raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=ConfigLoader)


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


def read_config_file(path: Path, origins: Origins, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of a config file with its ``base`` chain merged in; ``origins`` records the file
    that set each key."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'base' inheritance loops back to {path.name}")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: cannot parse YAML: {yaml_problem(err)}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read ({type(err).__name__}: {one_line(err)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping at the top level. "
                          f"Got {type(data).__name__} instead.")
    base = data.pop("base", None)
    if base is None:
        origins.record(data, str(path))
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: 'base' must be the name of a config file. Got {base!r} instead.")
    base_path = path.parent / base
    if not base_path.is_file():
        try:
            base_path = find_config(base)
        except ConfigError:
            raise ConfigError(f"{path}: 'base' names {base!r}, which is neither a file next to it "
                              "nor a packaged config") from None
    parent = read_config_file(base_path, origins, (*seen, path.resolve()))
    origins.record(data, str(path))
    return merge_config(parent, data)


def apply_overrides(config: Mapping[str, Any], overrides: Sequence[str],
                    origins: Origins) -> dict[str, Any]:
    """A copy of ``config`` with ``"section.key=value"`` overrides applied (values read as YAML);
    ``origins`` records each argument as the origin of its key."""
    merged = copy.deepcopy(dict(config))
    for item in overrides:
        source = f"--set {item}"
        dotted, value = parse_override(item)
        nested: Any = value
        for part in reversed(dotted.split(".")):
            nested = {part: nested}
        merged = merge_config(merged, nested)
        origins.record(value, source, dotted)
    return merged


def parse_override(item: str) -> tuple[str, Any]:
    """``"train.lr=1e-3"`` -> ``("train.lr", 0.001)``; a ConfigError naming the argument otherwise."""
    dotted, sep, raw = item.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*", dotted.strip()):
        raise ConfigError(f"--set {item}: expected key=value with a dotted key, e.g. train.lr=0.1")
    try:
        value = parse_yaml(raw)
    except yaml.YAMLError as err:
        if raw.lstrip().startswith(("[", "{")):
            raise ConfigError(f"--set {item}: cannot parse the value as a YAML list or mapping: "
                              f"{yaml_problem(err)} (write lists as [4, 20])") from None
        value = raw  # a plain string that YAML would misread, such as a path holding ': '
    return dotted.strip(), value


NAMED_SECTIONS = ("data", "model", "loss")
"""Sections whose other keys are options of the dataset, model or loss that ``name`` names."""


def merge_config(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`deep_merge` of two configs, except that a section of :data:`NAMED_SECTIONS` whose
    ``name`` changes starts afresh: the options of the base's dataset, model or loss do not carry
    over to another one (a config inheriting ``loss: {name: jsd, views: 3}`` may say
    ``loss: {name: ce}``)."""
    for section in NAMED_SECTIONS:
        new, old = update.get(section), base.get(section)
        if (isinstance(new, Mapping) and isinstance(old, dict) and "name" in new
                and new["name"] != old.get("name")):
            base[section] = {}
    return deep_merge(base, update)


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update``, recursing where both hold a mapping (``base`` is modified)."""
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            base[k] = deep_merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def yaml_problem(err: yaml.YAMLError) -> str:
    """What PyYAML found wrong and where, on one line."""
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if not problem:
        return one_line(err)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def one_line(err: BaseException) -> str:
    """The first line of an exception's message (or its type when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


__all__ = ["DEFAULT_CONFIG", "NAMED_SECTIONS", "ConfigLoader", "apply_overrides", "deep_merge",
           "find_config", "merge_config", "one_line", "packaged_configs", "parse_override",
           "parse_yaml", "read_config_file", "yaml_problem"]
