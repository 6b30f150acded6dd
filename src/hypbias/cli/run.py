"""``hypbias run [CONFIG] [--out DIR] [--set key=value ...]``."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from hypbias.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="train an experiment and write its run directory and report",
        description="Train the experiment of CONFIG (default: the embedded synthetic experiment), "
                    "track every epoch and write the run directory with report.html. The whole "
                    "config is checked before anything is written.",
    )
    p.add_argument("config", nargs="?", default=None,
                   help="YAML config file or packaged config name (default: synthetic)")
    p.add_argument("--out", "-o", default=None,
                   help="run directory (default: runs/<config name>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=10 (repeatable)")
    p.add_argument("--data-dir", default=None, help="dataset root on disk (sets data.root)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue an unfinished run from its newest checkpoint (train.save_every "
                        "> 0), with the config it started with")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in the run directory (its files are removed once the new "
                        "config is valid)")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from hypbias.experiment import open_run, run_experiment
    from hypbias.train import distributed
    from hypbias.train.config import load_config

    if args.resume is not None:
        if args.config or args.overrides or args.data_dir or args.out or args.overwrite:
            raise ConfigError("--resume continues a run with its saved config.yaml; "
                              "it takes no CONFIG, --set, --data-dir, --out or --overwrite")
        out = Path(args.resume)
        _, config = open_run(out)
    else:
        overrides = list(args.overrides)
        if args.data_dir is not None:
            overrides.append(f"data.root={args.data_dir}")
        config = load_config(args.config, overrides)
        out = Path(args.out) if args.out else Path("runs") / _stem(config.config_file)
    try:
        run = run_experiment(config, out, progress=not args.no_progress, report=not args.no_report,
                             resume=args.resume is not None, overwrite=args.overwrite)
        is_main = distributed.rank() == 0
    finally:
        distributed.teardown()
    if not is_main:
        return 0
    print(f"run directory: {run.path}", file=sys.stderr)
    for sentence in run.summary.get("findings", []):
        print(sentence)
    if not args.no_report:
        print(f"report: {run.file('report.html')}", file=sys.stderr)
    return 0


def _stem(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem)
