"""The ``hypbias`` command: one subcommand per module listed in :data:`SUBCOMMANDS`.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``, which registers the
subcommand and sets ``func`` (called with the parsed namespace, returning an exit code).

Exit codes (DESIGN.md §4): 0 success; 2 bad input (one line naming the file or ``--set`` argument,
the key and the value); 3 training diverged (what was measured before is kept); 130 interrupted;
141 the reader of the output went away (``hypbias ... | head``), which ends quietly. Only
:class:`~hypbias.errors.HypbiasError` is caught: any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from hypbias.errors import HypbiasError, TrainingInterrupted

SUBCOMMANDS = ["run", "analyze", "analyze_checkpoints", "blur", "report", "compare", "hierarchy"]
"""Modules under ``hypbias.cli`` that define a subcommand, in the order ``--help`` lists them."""

INTERRUPTED = 130
CLOSED_PIPE = 141
"""128 + SIGPIPE, what a shell reports for a program whose reader went away."""


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
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except TrainingInterrupted as err:
        print(f"hypbias {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except HypbiasError as err:
        print(f"hypbias {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"hypbias {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return CLOSED_PIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a file descriptor (captured in-process)
        pass
