"""``hypbias report RUN_DIR``: (re)write report.html from a run directory."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write report.html for a run directory",
                       description="Regenerate figures/ and report.html from a run directory's "
                                   "metrics, summary and confusion matrices.")
    p.add_argument("run_dir", help="a run directory written by 'hypbias run'")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from hypbias.report import write_report

    print(write_report(args.run_dir))
    return 0
