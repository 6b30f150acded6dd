"""``hypbias blur RUN_DIR``: accuracy of saved checkpoints on Gaussian-blurred images (App. C.5)."""

from __future__ import annotations

import argparse
import sys

from hypbias.cli._arguments import parse_epochs
from hypbias.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "blur", help="frequency analysis: accuracy of saved checkpoints on blurred images",
        description="Evaluate saved checkpoints of an image run (train.save_every > 0) on its "
                    "validation images blurred with Gaussians of growing sigma, in H and every "
                    "hypernym space; the blur_*@sigma=<s> rows replace earlier ones in metrics.csv "
                    "and the report gains its frequency-analysis section (Fig. 17-18).",
    )
    p.add_argument("run_dir", help="a run directory written by 'hypbias run' on image data")
    p.add_argument("--sigmas", nargs="+", type=float, default=None, metavar="SIGMA",
                   help="Gaussian sigmas in pixels besides the unblurred 0 (default: 0.5 1 2 4)")
    p.add_argument("--epochs", default=None, metavar="E1,E2,...|all",
                   help="the checkpoints to evaluate (default: the first after epoch 0 and the last)")
    p.add_argument("--device", default=None,
                   help="where to evaluate, e.g. cuda or cpu (default: the run's train.device)")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from hypbias.analysis.blur import blur_table
    from hypbias.analysis.findings import blur_finding
    from hypbias.experiment import blur_checkpoints

    bad = [s for s in args.sigmas or () if not 0 <= s < float("inf")]
    if bad:
        raise ConfigError(f"--sigmas: every sigma must be a finite number >= 0. Got {bad[0]:g} "
                          "instead.")
    run = blur_checkpoints(args.run_dir, args.sigmas, parse_epochs(args.epochs, allow_all=True),
                           device=args.device, progress=not args.no_progress,
                           report=not args.no_report)
    finding = blur_finding(blur_table(run.metrics))
    if finding:
        print(finding)
    print(f"run directory: {run.path}", file=sys.stderr)
    return 0
