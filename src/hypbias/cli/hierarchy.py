"""``hypbias hierarchy show|stats|export|learn``: look at a class hierarchy and its label spaces, or
learn one from a run.

Where the hierarchy comes from (one of; :func:`hypbias.data.hierarchy_sources.load_hierarchy_source`):

* ``SOURCE``: a hierarchy file (``.json``, ``.yaml``, ``.csv``, ``.nwk``) or a run directory (its
  ``hierarchy.json``);
* ``--wordnet FILE``: WordNet over the wnids of FILE, an ImageNet class index JSON
  (``{"0": ["n01440764", "tench"], ...}``) or a text file of wnids; the paper's ImageNet spaces
  (``imagenet_s3`` ...) are then available to ``--space``;
* ``--dataset NAME [--data-dir DIR]``: a registered dataset's hierarchy and spaces (``synthetic``,
  ``cifar100``, ``dbpedia``; for ``imagenet``/``imagefolder`` only the class folder names are read).

Nodes that are wnids are shown with their WordNet name (``n02084071 dog``).

``learn RUN_DIR``: cluster a class distance read from the run directory into a binary hierarchy
(:func:`hypbias.analysis.learned_hierarchy.learn_for_run`), print how it compares with the run's
hierarchy, write it with ``--out`` and attach it and its analysis to the run with ``--attach``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hierarchy", help="show, summarise or export a class hierarchy",
        description="Show a class hierarchy as a tree, print its statistics and the group sizes "
                    "of a label space, or export it as JSON, YAML, CSV or Newick.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print the tree view, truncated")
    show.add_argument("--depth", type=int, default=4,
                      help="expand nodes down to this depth (default 4)")
    show.add_argument("--max-children", type=int, default=12,
                      help="children listed per node before '... N more' (default 12)")
    stats = actions.add_parser("stats", help="size, depth and branching; group sizes of a space")
    export = actions.add_parser("export", help="write the hierarchy (or a label space) to a file")
    export.add_argument("out", help="output file; the format follows the extension "
                                    "(.json, .yaml, .csv, .nwk)")
    for q in (show, stats, export):
        _add_source_arguments(q)
    _add_learn_parser(actions)
    for q in (stats, export):
        group = q.add_mutually_exclusive_group()
        group.add_argument("--level", type=int, help="the label space cut at this tree depth")
        group.add_argument("--n", type=int, help="the label space of n superclasses")
        group.add_argument("--space", help="a label space the source defines (e.g. S20, "
                                           "imagenet_s3)")
    p.set_defaults(func=main)


def _add_source_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", default=None,
                   help="hierarchy file or run directory")
    p.add_argument("--wordnet", metavar="WNIDS_OR_CLASS_INDEX",
                   help="build the WordNet hierarchy of these wnids (class index JSON or text)")
    p.add_argument("--wordnet-dir", default=None,
                   help="WordNet's data.noun or its folder (default: searched)")
    p.add_argument("--dataset", help="a registered dataset (synthetic, cifar100, dbpedia, imagenet)")
    p.add_argument("--data-dir", default=None, help="the dataset's folder on disk")


def _add_learn_parser(actions: argparse._SubParsersAction) -> None:
    learn = actions.add_parser(
        "learn", help="learn a hierarchy from a run directory by agglomerative clustering",
        description="Cluster a class distance stored in a run directory into a binary hierarchy "
                    "(internal nodes L1 = root .. L{C-1}), compare it with the run's hierarchy "
                    "(CCC of LCA heights, adjusted Rand index of cuts), and measure hypernym bias "
                    "under it from the stored confusion matrices (--attach).",
    )
    learn.add_argument("run_dir", metavar="RUN_DIR", help="a hypbias run directory")
    learn.add_argument("--from", dest="distance_from", choices=("confusion", "means", "covers"),
                       default="confusion",
                       help="confusion: 1 - (P + P^T)/2 of the row-normalised confusion matrix "
                            "(default); means: distances between the final class means (nc.npz); "
                            "covers: not stored in a run directory (refused)")
    learn.add_argument("--split", default=None,
                       help="split of the confusion matrix (default: a tracked split other than "
                            "the evaluated one, train when tracked)")
    learn.add_argument("--epoch", type=int, default=None,
                       help="epoch of the confusion matrix (default: the first whose fine accuracy "
                            "reaches half its best on that split)")
    learn.add_argument("--method", choices=("average", "complete", "ward"), default="average",
                       help="linkage rule (default average)")
    learn.add_argument("--out", default=None,
                       help="write the hierarchy to this file (.json, .yaml, .csv, .nwk)")
    learn.add_argument("--attach", action="store_true",
                       help="write learned_hierarchy.json and learned_hierarchy_analysis.json into "
                            "the run directory; 'hypbias report' then shows them")


def main(args: argparse.Namespace) -> int:
    if args.action == "learn":
        return learn(args)
    from hypbias.data.hierarchy_sources import load_hierarchy_source
    from hypbias.labelspace.files import select_space, write_space
    from hypbias.report.hierarchy_text import render_stats, render_tree

    hierarchy, spaces = load_hierarchy_source(args.source, wordnet_ids=args.wordnet,
                                              dataset=args.dataset, data_dir=args.data_dir,
                                              wordnet_dir=args.wordnet_dir)
    if args.action == "show":
        print(render_tree(hierarchy, depth=args.depth, max_children=args.max_children))
        return 0
    space = select_space(hierarchy, spaces, level=args.level, n=args.n, name=args.space)
    if args.action == "stats":
        print(render_stats(hierarchy, space))
        return 0
    out = Path(args.out)
    if space is None:
        from hypbias.hierarchy.files import write_hierarchy

        write_hierarchy(hierarchy, out)
    else:
        write_space(hierarchy, space, out)
    print(f"wrote {out}")
    return 0


def learn(args: argparse.Namespace) -> int:
    """``hypbias hierarchy learn``: learn, compare, write and (with ``--attach``) attach."""
    from hypbias.analysis.findings import learned_finding
    from hypbias.analysis.learned_hierarchy import learn_for_run

    result = learn_for_run(args.run_dir, args.distance_from, split=args.split, epoch=args.epoch,
                           method=args.method, out=args.out, attach=args.attach)
    print(f"learned a binary hierarchy of {result.learned.num_classes} classes from "
          f"{result.origin.describe()}")
    cuts = ", ".join(f"{c['space']} {c['ari']:.2f}" for c in result.analysis["cuts"])
    print(f"against {Path(args.run_dir) / 'hierarchy.json'}: CCC of LCA heights "
          f"{result.analysis['ccc']:.3f}; adjusted Rand index of the cuts: {cuts}")
    if args.attach:
        print(learned_finding(result.analysis))
    for path in result.written:
        print(f"wrote {path}")
    return 0
