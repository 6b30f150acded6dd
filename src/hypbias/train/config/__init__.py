"""Experiment configuration: YAML files and ``--set key=value`` overrides, checked against one schema.

Every key is declared once, with its type, range or choices and default: the experiment's sections
in :mod:`hypbias.train.config.sections`, each tracker component's section in the component's file
(:mod:`hypbias.train.components`), the ``loss`` options by the losses. :func:`load_config` reads a
file (``base:`` inheritance, :mod:`hypbias.train.config.files`), applies the overrides and checks
everything in :func:`parse_config`; a :class:`~hypbias.errors.ConfigError` names the file or the
``--set`` argument that set the key, the key, the value and what is allowed.

The result is a :class:`Config`: typed, immutable sections (``config.train.lr``) that the loop, the
components and the losses read. Read as a mapping it is the resolved config in plain form, what
``config.yaml`` holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hypbias.errors import ConfigError
from hypbias.train.config import files
from hypbias.train.config.files import DEFAULT_CONFIG, find_config, packaged_configs
from hypbias.train.config.schema import Int, Nullable, Origins, Section, Text, flatten, key
from hypbias.train.config.sections import (
    BASE_SECTIONS,
    DataSection,
    LogSection,
    ModelSection,
    SpacesSection,
    TrackSection,
    TrainSection,
    check_top_level,
    parse_loss,
)


def _component_specs() -> list[Any]:
    from hypbias.train.components import components

    return components()


@dataclass(frozen=True, eq=False)
class Config(Section, Mapping):
    """A checked config: one typed section per key of the YAML file.

    Attributes
    ----------
    data, model, train, track, spaces, log : the experiment's sections
    loss : the ``loss:`` options, every declared option filled in (a read-only mapping)
    components : the tracker components' sections by name (``nc``, ``manifold``, ``mistakes``)
    seed, config_file : the top-level keys
    origins : where each key was set, for errors raised while building from the config
    """

    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)
    track: TrackSection = field(default_factory=TrackSection)
    spaces: SpacesSection = field(default_factory=SpacesSection)
    log: LogSection = field(default_factory=LogSection)
    loss: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({"name": "ce"}))
    components: Mapping[str, Section] = field(default_factory=dict)
    seed: int = key(0, Int(low=0), "seeds Python, NumPy, torch, the data order, augmentation and "
                                   "every sampled draw")
    config_file: str | None = key(None, Nullable(Text()), "the file the config was read from",
                                  safe=True)
    origins: Origins = field(default_factory=lambda: Origins("the config"), repr=False)

    def section(self, name: str) -> Any:
        """A section by its key (``"train"``, ``"nc"``, ...)."""
        if name in self.components:
            return self.components[name]
        return getattr(self, name)

    def error(self, dotted: str, message: str) -> ConfigError:
        """A ConfigError naming where ``dotted`` was set, the key and ``message``."""
        return self.origins.error(dotted, message)

    @cached_property
    def plain(self) -> dict[str, Any]:
        """The resolved config as plain data (what ``config.yaml`` holds)."""
        return {"config_file": self.config_file, "seed": self.seed,
                **{s.SECTION: self.section(s.SECTION).as_dict() for s in BASE_SECTIONS},
                "loss": dict(self.loss),
                **{name: s.as_dict() for name, s in self.components.items()}}

    def as_dict(self) -> dict[str, Any]:
        return dict(self.plain)

    def __getitem__(self, name: str) -> Any:
        return self.plain[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.plain)

    def __len__(self) -> int:
        return len(self.plain)


def parse_config(values: Any, origins: Origins | None = None) -> Config:
    """Check a config's plain form (missing keys take their defaults) and build its sections.

    ``origins`` says where each key was set; by default every key comes from ``config_file``.
    """
    if origins is None:
        source = values.get("config_file") if isinstance(values, Mapping) else None
        origins = Origins(str(source or "the config"))
    if not isinstance(values, Mapping):
        raise ConfigError(f"{origins.default}: a config must be a mapping at the top level. "
                          f"Got {type(values).__name__} instead.")
    specs = _component_specs()
    check_top_level(values, [*(s.SECTION for s in BASE_SECTIONS), "loss",
                             *(spec.section for spec in specs)], origins)
    top = Config.parse_keys(values, origins)
    sections = {s.SECTION: s.parse(values.get(s.SECTION), origins) for s in BASE_SECTIONS}
    loss = parse_loss(values.get("loss"), sections["train"].label_smoothing, origins)
    parts = {spec.section: spec.schema.parse(values.get(spec.section), origins) for spec in specs}
    return Config(**sections, loss=loss, components=MappingProxyType(parts), origins=origins, **top)


def as_config(config: Config | Mapping[str, Any]) -> Config:
    """``config`` itself, or a plain config checked by :func:`parse_config`."""
    return config if isinstance(config, Config) else parse_config(config)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read a config (default: the embedded synthetic experiment), apply overrides, check it all.

    Parameters
    ----------
    path : a YAML file or a packaged config name; None for :data:`DEFAULT_CONFIG`.
    overrides : ``"section.key=value"`` strings; values are read as YAML (``train.lr=1e-3``,
        ``spaces.hypernyms=[4,20]``).

    Raises
    ------
    ConfigError
        Naming the file or ``--set`` argument, the key, the value and what is allowed.
    """
    source = find_config(path if path is not None else DEFAULT_CONFIG)
    origins = Origins(str(source))
    values = files.read_config_file(source, origins)
    values = files.apply_overrides(values, overrides, origins)
    values["config_file"] = str(source)
    return parse_config(values, origins)


def apply_overrides(config: Config | Mapping[str, Any], overrides: Sequence[str],
                    source: str | None = None) -> Config:
    """``config`` with ``"section.key=value"`` overrides applied and checked again.

    ``source`` is where the rest of the config was read (default: its ``config_file``).
    """
    origins = Origins(source or str(config.get("config_file") or "the config"))
    plain = config.as_dict() if isinstance(config, Config) else dict(config)
    return parse_config(files.apply_overrides(plain, overrides, origins), origins)


def defaults() -> dict[str, Any]:
    """Every section and key with its default, in plain form."""
    return parse_config({}, Origins("the defaults")).as_dict()


def safe_keys() -> set[str]:
    """Dotted keys that cannot change a run's numbers (a resumed run may change them)."""
    found = set(Config.safe_keys())
    for s in BASE_SECTIONS:
        found |= s.safe_keys()
    for spec in _component_specs():
        found |= spec.schema.safe_keys()
    return found


def numbers_part(plain: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened keys of a plain config that can change its numbers (all but :func:`safe_keys`)."""
    safe = safe_keys()
    return {k: v for k, v in flatten(plain).items() if k not in safe}


def fingerprint(config: Config | Mapping[str, Any]) -> str:
    """A hash of what determines a run's numbers (every key but the safe ones)."""
    text = json.dumps(numbers_part(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differing_keys(recorded: Mapping[str, Any], config: Config | Mapping[str, Any]) -> list[str]:
    """``"key: recorded -> current"`` for every key (safe ones aside) whose value differs."""
    old, new = numbers_part(recorded), numbers_part(config)
    return [f"{k}: {old.get(k, '(absent)')!r} -> {new.get(k, '(absent)')!r}"
            for k in sorted(set(old) | set(new)) if old.get(k, ...) != new.get(k, ...)]


__all__ = ["DEFAULT_CONFIG", "Config", "ConfigError", "apply_overrides", "as_config", "defaults",
           "differing_keys", "find_config", "fingerprint", "load_config", "numbers_part",
           "packaged_configs", "parse_config", "safe_keys"]

