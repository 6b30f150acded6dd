"""Declarations of the losses' config options: name, type, allowed values and default.

Each loss module declares a :class:`LossSpec` next to its class; :mod:`hypbias.losses.factory`
collects them. A config schema can validate a ``loss:`` section from these declarations alone,
before any hierarchy or label space exists (:func:`hypbias.losses.validate_loss_options`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from hypbias._validation import check_choice, check_float, check_int
from hypbias.errors import ConfigError

OWNER = "the config"
KINDS = ("float", "floats", "int", "choice", "names")


@dataclass(frozen=True)
class Option:
    """One option of a ``loss:`` section.

    Parameters
    ----------
    kind : {"float", "floats", "int", "choice", "names"}
        ``float``/``int``: a number within ``low``/``high`` (``low_open`` excludes ``low``);
        ``floats``: one such float or a non-empty list of them; ``choice``: one of ``choices``;
        ``names``: a non-empty list of names, or ``None`` when that is the default ("all").
    default : the value used when the section leaves the option out.
    help : one line for documentation and schema listings.
    """

    kind: str
    default: Any
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        check_choice(self.kind, "kind", "Option", KINDS)

    def validate(self, value: Any, key: str) -> Any:
        """``value`` checked and normalised; a :class:`ConfigError` naming ``key`` otherwise."""
        try:
            if self.kind == "names":
                return self._names(value, key)
            if self.kind == "floats" and isinstance(value, list | tuple) and value:
                return [self._number(v, key) for v in value]
            if self.kind == "choice":
                return check_choice(value, key, OWNER, self.choices)
            return self._number(value, key)
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def _number(self, value: Any, key: str) -> float | int:
        if self.kind == "int":
            return check_int(value, key, OWNER, low=self.low, high=self.high)
        return check_float(value, key, OWNER, low=self.low, high=self.high, low_open=self.low_open)

    def _names(self, value: Any, key: str) -> list[str] | None:
        if value is None and self.default is None:
            return None
        if not isinstance(value, list | tuple) or not value or \
                not all(isinstance(v, str) for v in value):
            raise ValueError(f"The '{key}' parameter of {OWNER} must be a non-empty list of "
                             f"space names. Got {value!r} instead.")
        return list(value)


Builder = Callable[..., nn.Module]
SpaceCheck = Callable[[Mapping[str, Any], Sequence[str]], None]


@dataclass(frozen=True)
class LossSpec:
    """A loss as the config knows it.

    Parameters
    ----------
    name : the value of ``loss.name``.
    build : ``build(hierarchy, spaces, label_smoothing, options)`` -> the loss module, with
        ``spaces`` the run's label spaces by name and ``options`` the validated options (every
        declared key present).
    options : the declared options by key.
    label_smoothing : whether ``train.label_smoothing`` applies to this loss.
    check_spaces : ``check_spaces(options, space_names)``, for losses whose options name label
        spaces; raises :class:`ConfigError` when they do not fit the run's spaces.
    """

    name: str
    build: Builder
    options: Mapping[str, Option] = field(default_factory=dict)
    label_smoothing: bool = False
    check_spaces: SpaceCheck | None = None
