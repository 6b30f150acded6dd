"""``hypbias hierarchy show|stats|export|learn``: look at a class hierarchy and its label spaces, or
learn one from a run.

Where the hierarchy comes from (one of):

* ``SOURCE``: a hierarchy file (``.json``, ``.yaml``, ``.csv``, ``.nwk``) or a run directory (its
  ``hierarchy.json``);
* ``--wordnet FILE``: WordNet over the wnids of FILE, an ImageNet class index JSON
  (``{"0": ["n01440764", "tench"], ...}``) or a text file of wnids; the paper's ImageNet spaces
  (``imagenet_s3`` ...) are then available to ``--space``;
* ``--dataset NAME [--data-dir DIR]``: a registered dataset's hierarchy and spaces (``synthetic``,
  ``cifar100``, ``dbpedia``; for ``imagenet``/``imagefolder`` only the class folder names are read).

Nodes that are wnids are shown with their WordNet name (``n02084071 dog``).

``learn RUN_DIR``: cluster a class distance read from the run directory into a binary hierarchy
(:mod:`hypbias.analysis.learned_hierarchy`), print how it compares with the run's hierarchy, write
it with ``--out`` and attach it and its analysis to the run with ``--attach``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from hypbias.errors import ConfigError, DataError, HierarchyError

if TYPE_CHECKING:  # imported lazily: the command line must start fast
    from hypbias.hierarchy.tree import Hierarchy
    from hypbias.labelspace import LabelSpace

_WNID = re.compile(r"n\d{8}")


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
    hierarchy, spaces = load_source(args)
    if args.action == "show":
        print(render_tree(hierarchy, depth=args.depth, max_children=args.max_children))
        return 0
    space = pick_space(hierarchy, spaces, args)
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
    from hypbias.analysis import learned_hierarchy as lh
    from hypbias.hierarchy.files import FORMATS, write_hierarchy
    from hypbias.rundir import RunDir

    if args.out is None and not args.attach:
        raise ConfigError("hypbias hierarchy learn needs --out FILE, --attach or both")
    out = None if args.out is None else Path(args.out)
    if out is not None and out.suffix.lower() not in FORMATS:
        raise ConfigError(f"--out {out}: unknown hierarchy format {out.suffix!r} "
                          f"(use {', '.join(FORMATS)})")
    run = RunDir(Path(args.run_dir))
    if not run.path.is_dir():
        raise DataError(f"{run.path}: no such run directory")
    learned, origin = lh.learn_from_run(run, args.distance_from, split=args.split,
                                        epoch=args.epoch, method=args.method)
    print(f"learned a binary hierarchy of {learned.num_classes} classes from "
          f"{origin.describe()}")
    if args.attach:
        analysis = lh.analyse_learned(run, learned, origin)
    else:
        analysis = lh.compare_hierarchies(learned, run.hierarchy, run.spaces.hypernyms)
    cuts = ", ".join(f"{c['space']} {c['ari']:.2f}" for c in analysis["cuts"])
    print(f"against {run.path / 'hierarchy.json'}: CCC of LCA heights {analysis['ccc']:.3f}; "
          f"adjusted Rand index of the cuts: {cuts}")
    if out is not None:
        write_hierarchy(learned, out)
        print(f"wrote {out}")
    if args.attach:
        lh.attach_learned(run, learned, analysis)
        print(lh.learned_finding(analysis))
        print(f"attached {run.file(lh.HIERARCHY_FILE)} and {run.file(lh.ANALYSIS_FILE)}")
    return 0


# ---------------------------------------------------------------------- sources
def load_source(args: argparse.Namespace) -> tuple[Hierarchy, dict[str, LabelSpace]]:
    """The hierarchy named by the command line and the label spaces its source defines."""
    given = [name for name, value in (("SOURCE", args.source), ("--wordnet", args.wordnet),
                                      ("--dataset", args.dataset)) if value is not None]
    if len(given) != 1:
        raise ConfigError("hypbias hierarchy needs exactly one of SOURCE, --wordnet or --dataset; "
                          f"got {', '.join(given) if given else 'none'}")
    if args.wordnet is not None:
        return wordnet_source(Path(args.wordnet), args.wordnet_dir)
    if args.dataset is not None:
        return dataset_source(args.dataset, args.data_dir, args.wordnet_dir)
    from hypbias.hierarchy.files import read_hierarchy

    path = Path(args.source)
    if path.is_dir():
        if not (path / "hierarchy.json").is_file():
            raise DataError(f"{path}: a run directory holds hierarchy.json; none here")
        path = path / "hierarchy.json"
    return read_hierarchy(path), {}


def read_wnids(path: Path) -> list[str]:
    """Wnids of an ImageNet class index JSON (``.json``) or of a text file (any whitespace)."""
    from hypbias.hierarchy.class_index import load_class_index

    if path.suffix.lower() == ".json":
        return [wnid for wnid, _ in load_class_index(path)]
    try:
        words = path.read_text(encoding="utf-8").split()
    except OSError as err:
        raise DataError(f"{path}: cannot read the wnids file: {err.strerror}") from None
    bad = next((w for w in words if not _WNID.fullmatch(w)), None)
    if bad is not None or not words:
        raise DataError(f"{path}: expected wnids such as n01440764, whitespace-separated; "
                        f"got {bad!r}" if words else f"{path}: no wnids")
    return words


def wordnet_source(path: Path, wordnet_dir: str | None
                   ) -> tuple[Hierarchy, dict[str, LabelSpace]]:
    from hypbias.hierarchy.wordnet import wordnet
    from hypbias.labelspace.imagenet import wordnet_spaces

    hierarchy = wordnet(read_wnids(path), source=wordnet_dir)
    return hierarchy, wordnet_spaces(hierarchy)


def dataset_source(name: str, data_dir: str | None, wordnet_dir: str | None
                   ) -> tuple[Hierarchy, dict[str, LabelSpace]]:
    from hypbias.data import create_dataset

    if name in ("imagenet", "imagefolder"):  # the folder names suffice: decode no image
        from hypbias.data.imagefolder import check_wnids, list_images
        from hypbias.hierarchy.wordnet import wordnet
        from hypbias.labelspace.imagenet import wordnet_spaces

        if data_dir is None:
            raise ConfigError(f"--dataset {name} needs --data-dir (the folder holding train/)")
        classes = list(list_images(Path(data_dir) / "train"))
        check_wnids(classes, Path(data_dir) / "train", wordnet_dir)
        hierarchy = wordnet(classes, source=wordnet_dir)
        return hierarchy, wordnet_spaces(hierarchy)
    options = {} if data_dir is None else {"root": data_dir}
    bundle = create_dataset(name, **options)
    return bundle.hierarchy, bundle.spaces


# ---------------------------------------------------------------------- label spaces
def pick_space(hierarchy: Hierarchy, spaces: dict[str, LabelSpace],
               args: argparse.Namespace) -> LabelSpace | None:
    """The label space of ``--level``, ``--n`` or ``--space``; None when none is asked for."""
    from hypbias.labelspace import LabelSpace

    try:
        if args.level is not None:
            return LabelSpace.from_hierarchy(hierarchy, level=args.level)
        if args.n is not None:
            return LabelSpace.from_hierarchy(hierarchy, n=args.n)
    except ValueError as err:
        raise HierarchyError(str(err)) from None
    if args.space is None:
        return None
    if args.space not in spaces:
        known = ", ".join(spaces) or "none"
        raise ConfigError(f"--space {args.space!r}: this source defines {known}")
    return spaces[args.space]


def write_space(hierarchy: Hierarchy, space: LabelSpace, out: Path) -> None:
    """A label space as ``class,group`` CSV rows or a JSON ``{"class": "group"}`` mapping."""
    from hypbias.io import atomic_write_text

    pairs = [(c, space.names[g]) for c, g in zip(hierarchy.classes, space.t, strict=True)]
    suffix = out.suffix.lower()
    if suffix == ".json":
        atomic_write_text(out, json.dumps(dict(pairs), indent=1))
    elif suffix == ".csv":
        import csv
        import io

        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([("class", "group"), *pairs])
        atomic_write_text(out, buf.getvalue())
    else:
        raise ConfigError(f"{out}: a label space is exported as .json or .csv; got {suffix!r}")


# ---------------------------------------------------------------------- text output
def _labeller(hierarchy: Hierarchy) -> dict[str, str]:
    """Display names: ``wnid name`` for WordNet synsets, the node name otherwise.

    Names come from the hierarchy's own WordNet, else from the one found by the usual search (a
    run directory's ``hierarchy.json`` does not say which); without WordNet, wnids stay bare.
    """
    wnids = [n for n in hierarchy.nodes if _WNID.fullmatch(n)]
    if not wnids:
        return {n: n for n in hierarchy.nodes}
    from hypbias.hierarchy.wordnet import synset_names

    source = hierarchy.source.partition(":")[2] if hierarchy.source.startswith("wordnet:") \
        else None
    try:
        names = synset_names(wnids, source=source)
    except HierarchyError:
        names = {}
    return {n: f"{n} {names[n]}" if n in names else n for n in hierarchy.nodes}


def render_tree(hierarchy: Hierarchy, depth: int = 4, max_children: int = 12) -> str:
    """The tree view, one node per line with its class count, indented two spaces per level.

    Nodes deeper than ``depth`` are not expanded; a node lists at most ``max_children`` children
    (those with the most classes first) and then ``... N more (M classes)``. Internal nodes with
    no class below them in the tree view (graph-only hypernyms) are left out.
    """
    if depth < 0 or max_children < 1:
        raise ConfigError(f"--depth must be >= 0 and --max-children >= 1; got {depth} and "
                          f"{max_children}")
    label = _labeller(hierarchy)
    size = {n: int(hierarchy.leaves(n).size) for n in hierarchy.nodes}
    lines: list[str] = []
    # stack entries: (node name, depth) or (None, depth, marker text) for '... N more' lines
    stack: list[tuple[str | None, int, str]] = [(hierarchy.name(hierarchy.root), 0, "")]
    while stack:
        node, d, marker = stack.pop()
        if node is None:
            lines.append("  " * d + marker)
            continue
        kids = sorted((k for k in hierarchy.children(node) if size[k]), key=lambda k: -size[k])
        text = "  " * d + label[node] + (f" ({size[node]})" if kids else "")
        if kids and d >= depth:
            text += " ..."
            kids = []
        lines.append(text)
        shown, rest = kids[:max_children], kids[max_children:]
        if rest:
            n = sum(size[k] for k in rest)
            stack.append((None, d + 1, f"... {len(rest)} more ({n} class{'es' * (n != 1)})"))
        stack.extend((k, d + 1, "") for k in reversed(shown))
    return "\n".join(lines)


def render_stats(hierarchy: Hierarchy, space: LabelSpace | None) -> str:
    """Counts, depths and branching of the hierarchy; group sizes of ``space`` when given."""
    import numpy as np

    c = hierarchy.num_classes
    depths = np.array([hierarchy.depth(i) for i in range(c)])
    kids = [len(hierarchy.children(n)) for n in hierarchy.nodes[c:]]
    kids = [k for k in kids if k]
    multi = sum(1 for n in hierarchy.nodes if len(hierarchy.parents(n)) > 1)
    lines = [
        f"source: {hierarchy.source}",
        f"classes: {c}   nodes: {len(hierarchy.nodes)}   tree height: {hierarchy.height}",
        f"class depth: min {depths.min()}, mean {depths.mean():.2f}, max {depths.max()}",
        f"branching (tree view, internal nodes): mean {np.mean(kids):.2f}, max {max(kids)}",
        f"nodes with several parents (graph view): {multi}",
    ]
    if space is not None:
        label = _labeller(hierarchy)
        sizes = space.sizes
        lines.append(f"label space: {space.num_groups} groups, sizes min {sizes.min()}, "
                     f"mean {sizes.mean():.1f}, max {sizes.max()}")
        width = max(len(label.get(n, n)) for n in space.names)
        lines += [f"  {label.get(n, n):<{width}}  {s}" for n, s in zip(space.names, sizes,
                                                                       strict=True)]
    return "\n".join(lines)
