"""``hypbias analyze RUN_DIR``: layer-wise manifold analysis of a run's saved checkpoints."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze", help="layer-wise manifold analysis (covers, CCC, probes) of saved checkpoints",
        description="Load every checkpoints/epoch_XXX.pt of a run (written with train.save_every > 0), "
                    "embed the features of each layer and measure covers, cophenetic correlations "
                    "and linear probes, and draw the 2-D UMAP pictures (manifold.pictures); the rows "
                    "replace earlier manifold rows of metrics.csv, the pictures manifold.npz, and "
                    "the report is redrawn.",
    )
    p.add_argument("run_dir", help="a run directory written by 'hypbias run'")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a manifold setting, e.g. --set manifold.space=raw (repeatable)")
    p.add_argument("--probe-types", nargs="?", type=int, const=100, default=None, metavar="K",
                   help="also compare few-shot probes with probes fitted on K train examples per "
                        "class (default 100) on the last checkpoint (Fig. 14)")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from hypbias.errors import ConfigError
    from hypbias.experiment import analyze_checkpoints

    if args.probe_types is not None and args.probe_types < 1:
        raise ConfigError(f"--probe-types must be an int >= 1. Got {args.probe_types} instead.")
    run = analyze_checkpoints(args.run_dir, args.overrides, progress=not args.no_progress,
                              report=not args.no_report, probe_types=args.probe_types)
    for sentence in run.summary.get("findings", []):
        print(sentence)
    print(f"run directory: {run.path}", file=sys.stderr)
    return 0
