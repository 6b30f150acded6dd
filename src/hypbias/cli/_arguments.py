"""Argument values the subcommands share."""

from __future__ import annotations

from typing import Literal

from hypbias.errors import ConfigError


def parse_epochs(text: str | None, *, allow_all: bool = False) -> list[int] | Literal["all"] | None:
    """``--epochs``: ``"0,5,10"`` -> [0, 5, 10]; None (the command's default) and, with
    ``allow_all``, ``"all"`` are passed on; a ConfigError naming ``--epochs`` otherwise."""
    if text is None or (allow_all and text == "all"):
        return text
    try:
        epochs = [int(part) for part in text.split(",")]
    except ValueError:
        expected = ("'all' or comma-separated integers, e.g. 1,30" if allow_all
                    else "comma-separated integers, e.g. 0,5,10")
        raise ConfigError(f"--epochs {text!r}: expected {expected}") from None
    if any(e < 0 for e in epochs):
        raise ConfigError(f"--epochs {text!r}: epochs must be >= 0")
    return epochs


__all__ = ["parse_epochs"]
