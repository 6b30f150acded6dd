"""``hypbias compare RUN_DIR... [--out DIR] [--names ...]``: several runs side by side.

The files are those of :func:`hypbias.report.compare.compare_runs`.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="compare several run directories in one table and one HTML page",
        description="Put several runs side by side: a table of τ_q, final accuracies, mistake "
                    "severity and NC metrics, and overlaid curves, in comparison.csv and "
                    "comparison.html. The first run is the baseline of the Δ columns.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (two or more)")
    p.add_argument("--out", "-o", default=None,
                   help="output folder (default: compare/ beside the first run directory)")
    p.add_argument("--names", nargs="+", default=None, metavar="NAME",
                   help="one label per run (default: the directory names)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from hypbias.report.compare import compare_runs

    page = compare_runs(args.run_dirs, out=args.out, names=args.names)
    print(f"comparison: {page}", file=sys.stderr)
    print(page.with_suffix(".txt").read_text(encoding="utf-8").strip())
    return 0
