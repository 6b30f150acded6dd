"""The ``hypbias`` command: ``run | analyze | report | compare | hierarchy``.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``, which registers the
subcommand and sets ``func`` (called with the parsed namespace, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hypbias.errors import HypbiasError

SUBCOMMANDS = ["run", "analyze", "report", "compare", "hierarchy"]
"""Modules under ``hypbias.cli`` that define a subcommand, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    from hypbias._version import __version__

    parser = argparse.ArgumentParser(
        prog="hypbias",
        description="Track how a deep classifier learns a class hierarchy while it trains.",
    )
    parser.add_argument("--version", action="version", version=f"hypbias {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"hypbias.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HypbiasError as err:
        print(f"hypbias {args.command}: error: {err}", file=sys.stderr)
        return 2
