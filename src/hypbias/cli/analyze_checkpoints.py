"""``hypbias analyze-checkpoints``: measure a series of checkpoints saved by another training script."""

from __future__ import annotations

import argparse
import sys

from hypbias.cli._arguments import parse_epochs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze-checkpoints", help="measure checkpoints saved by another training script",
        description="Evaluate a series of state dicts saved by another script (timm's train.py, "
                    "torchvision's reference scripts, Lightning, your own loop), in order of epoch, "
                    "with the data, label spaces and components of CONFIG, and write a run directory "
                    "with its report: every label space's accuracy, neural collapse and (when "
                    "manifold.every is set) the layer-wise analysis, per checkpoint. Under torchrun "
                    "the checkpoints are shared out across processes.",
    )
    p.add_argument("--checkpoints", nargs="+", required=True, metavar="PATTERN",
                   help="checkpoint files or quoted glob patterns, e.g. 'runs/x/*.pth'")
    p.add_argument("--model", required=True,
                   help="the network they hold, e.g. torchvision:resnet50, timm:vit_small_patch16_224, "
                        "cifar_resnet18 (model options: --set model.KEY=VALUE)")
    p.add_argument("--config", default=None,
                   help="YAML config or packaged config name giving the data, spaces and components "
                        "(default: synthetic)")
    p.add_argument("--data-dir", default=None, help="dataset root on disk (sets data.root)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set manifold.every=1 (repeatable)")
    p.add_argument("--epochs", default=None, metavar="E1,E2,...",
                   help="the epochs of the files, in the order given (default: read from the file "
                        "names; torchvision's model_0.pth holds the weights after one epoch)")
    p.add_argument("--no-ema", action="store_true",
                   help="use the model's own weights where a file also holds their moving average")
    p.add_argument("--strip", action="append", default=[], metavar="PREFIX",
                   help="a key prefix to remove, e.g. 'model.' of a LightningModule (repeatable)")
    p.add_argument("--out", "-o", required=True, help="the run directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory's files")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from hypbias.experiment.series import analyze_series

    run = analyze_series(args.checkpoints, args.model, out=args.out, config=args.config,
                         overrides=args.overrides, data_dir=args.data_dir,
                         epochs=parse_epochs(args.epochs), ema=not args.no_ema, strip=args.strip,
                         report=not args.no_report, progress=not args.no_progress,
                         overwrite=args.overwrite)
    if run is None:  # not rank 0 under torchrun
        return 0
    if not args.no_report:
        print(f"report: {run.file('report.html')}", file=sys.stderr)
    for sentence in run.summary.get("findings", []):
        print(sentence)
    print(f"run directory: {run.path}", file=sys.stderr)
    return 0
