"""Declared config sections: every key once, with its type, range or choices, default and safety.

A section is a frozen dataclass deriving from :class:`Section` whose fields are declared with
:func:`key`::

    @dataclass(frozen=True)
    class TrackSection(Section):
        splits: tuple[str, ...] = key(("val",), ListOf(Choice("train", "val"), min_len=1, unique=True))
        eval_batch_size: int = key(1024, Int(low=1))

:meth:`Section.parse` builds one from a mapping: an unknown key is refused with the nearest known
one, a bad value with one line naming where it was set (the file or the ``--set`` argument, see
:class:`Origins`), the dotted key, the value and what is allowed. Lists become tuples, so a parsed
section is immutable; :meth:`Section.as_dict` gives the plain form written to ``config.yaml``.
A key declared ``safe`` cannot change the numbers a run measures (workers, checkpoint frequency,
report settings): a resumed run may change it.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import numbers
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hypbias.errors import ConfigError

S = TypeVar("S", bound="Section")


class Refused(Exception):
    """Raised by :meth:`Kind.parse` for a value it does not accept (the message is built around it)."""


# ---------------------------------------------------------------------------- kinds of values
class Kind:
    """What one key accepts. ``parse`` returns the value normalised or raises :class:`Refused`."""

    def parse(self, value: Any) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        """What is allowed, after "must be": ``"an int >= 1"``."""
        raise NotImplementedError

    def plural(self) -> str:
        """The same for list entries: ``"ints >= 1"``."""
        return f"values that are each {self.describe()}"


def _bounds(low: float | None, high: float | None, low_open: bool = False,
            high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" > {low}" if low_open else f" >= {low}"
    if high is not None:
        return f" < {high}" if high_open else f" <= {high}"
    return ""


@dataclass(frozen=True)
class Int(Kind):
    """An int (not a bool) within [low, high]."""

    low: int | None = None
    high: int | None = None

    def parse(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise Refused
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise Refused
        return int(value)

    def describe(self) -> str:
        return f"an int{_bounds(self.low, self.high)}"

    def plural(self) -> str:
        return f"ints{_bounds(self.low, self.high)}"


@dataclass(frozen=True)
class Float(Kind):
    """A finite number (an int is accepted) within the bounds; ``low_open`` excludes ``low``,
    ``high_open`` excludes ``high``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def parse(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise Refused
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            raise Refused
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            raise Refused
        return float(value)

    def describe(self) -> str:
        return f"a finite number{_bounds(self.low, self.high, self.low_open, self.high_open)}"

    def plural(self) -> str:
        return f"finite numbers{_bounds(self.low, self.high, self.low_open, self.high_open)}"


@dataclass(frozen=True)
class Bool(Kind):
    """true or false."""

    def parse(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise Refused
        return value

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Choice(Kind):
    """One of ``choices`` (``None`` may be one of them: YAML's null)."""

    choices: tuple[Any, ...]

    def __init__(self, *choices: Any) -> None:
        object.__setattr__(self, "choices", tuple(choices))

    def parse(self, value: Any) -> Any:
        if isinstance(value, bool) or value not in self.choices:
            raise Refused
        return value

    def describe(self) -> str:
        names = ["null" if c is None else repr(c) for c in self.choices]
        return names[0] if len(names) == 1 else f"one of {', '.join(names)}"

    def plural(self) -> str:
        return f"values among {', '.join('null' if c is None else repr(c) for c in self.choices)}"


@dataclass(frozen=True)
class Text(Kind):
    """A non-empty string matching ``pattern`` (any when None), described by ``what``."""

    pattern: str | None = None
    what: str = "a non-empty string"
    what_plural: str = "non-empty strings"

    def parse(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise Refused
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise Refused
        return value

    def describe(self) -> str:
        return self.what

    def plural(self) -> str:
        return self.what_plural


@dataclass(frozen=True)
class Nullable(Kind):
    """``null`` or a value of ``kind``."""

    kind: Kind

    def parse(self, value: Any) -> Any:
        return None if value is None else self.kind.parse(value)

    def describe(self) -> str:
        return f"{self.kind.describe()} or null"


@dataclass(frozen=True)
class ListOf(Kind):
    """A list of values of ``item`` (returned as a tuple), at least ``min_len`` long."""

    item: Kind
    min_len: int = 0
    unique: bool = False

    def parse(self, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple) or len(value) < self.min_len:
            raise Refused
        out = tuple(self.item.parse(v) for v in value)
        if self.unique and len(set(out)) < len(out):
            raise Refused
        return out

    def describe(self) -> str:
        size = "a non-empty list" if self.min_len == 1 else "a list"
        if self.min_len > 1:
            size = f"a list of at least {self.min_len}"
        distinct = " distinct" if self.unique else ""
        return f"{size} of{distinct} {self.item.plural()}"


@dataclass(frozen=True)
class AnyOf(Kind):
    """A value of the first of ``kinds`` that accepts it."""

    kinds: tuple[Kind, ...]

    def __init__(self, *kinds: Kind) -> None:
        object.__setattr__(self, "kinds", tuple(kinds))

    def parse(self, value: Any) -> Any:
        for kind in self.kinds:
            try:
                return kind.parse(value)
            except Refused:
                continue
        raise Refused

    def describe(self) -> str:
        return " or ".join(k.describe() for k in self.kinds)


@dataclass(frozen=True)
class Described(Kind):
    """``kind`` with its own words for what is allowed."""

    kind: Kind
    what: str

    def parse(self, value: Any) -> Any:
        return self.kind.parse(value)

    def describe(self) -> str:
        return self.what


# ---------------------------------------------------------------------------- where values come from
class Origins:
    """Where each dotted key was set: a file, a ``--set`` argument or the defaults.

    A key that was not set itself takes the origin of its nearest parent, then ``default``.
    """

    def __init__(self, default: str, known: Mapping[str, str] | None = None) -> None:
        self.default = default
        self.known: dict[str, str] = dict(known or {})

    def record(self, value: Any, source: str, prefix: str = "") -> None:
        """Mark ``prefix`` and every key below it (when ``value`` is a mapping) as set by ``source``."""
        if prefix:
            self.known[prefix] = source
        if isinstance(value, Mapping):
            for k, v in value.items():
                self.record(v, source, f"{prefix}.{k}" if prefix else str(k))

    def of(self, dotted: str) -> str:
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            found = self.known.get(".".join(parts[:n]))
            if found is not None:
                return found
        return self.default

    def error(self, dotted: str, message: str) -> ConfigError:
        """``ConfigError("<origin>: '<dotted>' <message>")``."""
        return ConfigError(f"{self.of(dotted)}: '{dotted}' {message}")

    def refuse(self, dotted: str, allowed: str, value: Any) -> ConfigError:
        return self.error(dotted, f"must be {allowed}. Got {_show(value)} instead.")


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return "null" if value is None else repr(value)


def refuse_unknown(keys: Any, known: list[str], prefix: str, origins: Origins,
                   owner: str | None = None) -> None:
    """Refuse the first of ``keys`` not in ``known``, suggesting the nearest known one.

    ``owner`` names what takes the options (``"model 'mlp'"``); the message then lists them.
    """
    for k in keys:
        if k not in known:
            dotted = f"{prefix}{k}"
            hint = difflib.get_close_matches(str(k), [str(n) for n in known], n=1)
            suggestion = f" (did you mean '{prefix}{hint[0]}'?)" if hint else ""
            if owner is None:
                raise ConfigError(f"{origins.of(dotted)}: unknown key '{dotted}'{suggestion}")
            listed = ", ".join(known) or "none"
            raise ConfigError(f"{origins.of(dotted)}: '{dotted}' is not an option of {owner} "
                              f"(options: {listed}){suggestion}")


# ---------------------------------------------------------------------------- sections
def key(default: Any, kind: Kind, help: str = "", *, safe: bool = False) -> Any:
    """Declare one key of a :class:`Section`: its default, what it accepts, and whether it is
    ``safe`` (cannot change a run's numbers, so a resumed run may change it)."""
    frozen = kind.parse(default)  # a default the declaration refuses is a bug, seen at import
    return dataclasses.field(default=frozen, metadata={"kind": kind, "help": help, "safe": safe})


def require_mapping(value: Any, dotted: str, origins: Origins) -> Mapping[str, Any]:
    """``value`` when it is a mapping (None counts as empty), else a ConfigError."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise origins.refuse(dotted, "a mapping of keys to values", value)
    return value


class Section:
    """Base of the declared sections (frozen dataclasses whose fields come from :func:`key`)."""

    SECTION: ClassVar[str] = ""
    """The section's key in a config (``train``)."""

    @classmethod
    def prefix(cls) -> str:
        """``"train."``; empty for the top level."""
        return f"{cls.SECTION}." if cls.SECTION else ""

    @classmethod
    def declared(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls) if "kind" in f.metadata}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every key with its default, in plain form (lists, not tuples)."""
        return {k: plain(f.default) for k, f in cls.declared().items()}

    @classmethod
    def safe_keys(cls) -> set[str]:
        """Dotted keys declared ``safe``."""
        return {f"{cls.prefix()}{k}" for k, f in cls.declared().items() if f.metadata["safe"]}

    @classmethod
    def parse(cls: type[S], values: Any, origins: Origins) -> S:
        """The section from a mapping of its keys (missing keys take their defaults)."""
        values = require_mapping(values, cls.SECTION, origins)
        refuse_unknown(values, list(cls.declared()), cls.prefix(), origins)
        section = cls(**cls.parse_keys(values, origins))
        section.check(origins)
        return section

    @classmethod
    def parse_keys(cls, values: Mapping[str, Any], origins: Origins) -> dict[str, Any]:
        """The declared keys present in ``values``, each parsed by its kind."""
        out = {}
        for name, f in cls.declared().items():
            if name in values:
                kind: Kind = f.metadata["kind"]
                try:
                    out[name] = kind.parse(values[name])
                except Refused:
                    raise origins.refuse(f"{cls.prefix()}{name}", kind.describe(),
                                         values[name]) from None
        return out

    def check(self, origins: Origins) -> None:
        """Checks across keys of the section; override where some apply."""

    def as_dict(self) -> dict[str, Any]:
        """The plain form written to ``config.yaml``."""
        return {k: plain(getattr(self, k)) for k in self.declared()}


def plain(value: Any) -> Any:
    """Tuples as lists and mappings as dicts, recursively: what YAML and JSON write."""
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists are values)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        dotted = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, f"{dotted}."))
        else:
            out[dotted] = plain(v)
    return out

# ---------------------------------------------------------------------------- factory options
def annotation_kind(annotation: Any) -> Kind | None:
    """The :class:`Kind` of a parameter annotation, or None when it says nothing checkable.

    Understands ``int``, ``float``, ``bool``, ``str``, ``Path``, ``None``, unions, ``Literal`` and
    sequences (``Sequence[int]``, ``list[float]``, ``tuple[int, ...]``).
    """
    if annotation in (bool, int, float, type(None)):
        return {bool: Bool(), int: Int(), float: Float(), type(None): Choice(None)}[annotation]
    if annotation in (str, Path):
        return Text(what="a string", what_plural="strings")
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return Choice(*args)
    if origin in (typing.Union, types.UnionType):
        kinds = [annotation_kind(a) for a in args]
        return None if any(k is None for k in kinds) else AnyOf(*kinds)
    if origin in (list, tuple, Sequence) and args:
        item = annotation_kind(args[0])
        ok = origin is not tuple or len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis)
        return ListOf(item) if item is not None and ok else None
    return None


def check_options(factory: Callable[..., Any], options: Mapping[str, Any], prefix: str,
                  origins: Origins, owner: str, provided: set[str] = frozenset()) -> None:
    """Refuse options that ``factory`` does not take and values its annotations do not allow.

    ``provided``: parameters the caller fills in itself (``num_classes``), not config options.
    Ranges are not in annotations: the factory checks them when it runs.
    """
    params = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        named = [n for n, p in params.items() if n not in provided and p.kind in
                 (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
        refuse_unknown(options, named, prefix, origins, owner)
    try:
        hints = typing.get_type_hints(factory)
    except (NameError, TypeError):  # annotations naming what only type checkers import
        hints = {}
    for name, value in options.items():
        kind = annotation_kind(hints.get(name))
        if kind is not None:
            try:
                kind.parse(value)
            except Refused:
                raise origins.refuse(f"{prefix}{name}", kind.describe(), value) from None


__all__ = ["AnyOf", "Bool", "Choice", "Described", "Float", "Int", "Kind", "ListOf", "Nullable", "Origins",
           "Refused", "Section", "Text", "annotation_kind", "check_options", "flatten", "key", "plain",
           "refuse_unknown", "require_mapping"]
