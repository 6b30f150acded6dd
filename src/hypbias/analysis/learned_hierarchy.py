"""A hierarchy learned from a run, compared with the given one, and hypernym bias under it.

Everything comes from what the run directory already holds, with no new pass over the data:

* :func:`learn_from_run` clusters a class distance read from ``confusion.npz`` (one split, one epoch)
  or from the final class means of ``nc.npz`` (:mod:`hypbias.hierarchy.learned`);
* :func:`compare_hierarchies`: the CCC between the two trees' LCA heights and the adjusted Rand
  index of their cuts at the same numbers of groups;
* :func:`learned_convergence`: τ_q of the spaces S_n cut from the learned tree, of their random
  isomorphic draws, and of the run's own S_n and R_n, all from the evaluated split's confusion
  matrices;
* :func:`attach_learned` writes :data:`HIERARCHY_FILE` and :data:`ANALYSIS_FILE` into the run
  directory, which the report's learned-hierarchy section reads back (:func:`read_learned`).

Circularity: a hierarchy learned from the confusion matrices that τ is then measured on would favour
itself. By default the hierarchy is learned from a split other than the evaluated one (``train``
when the run tracks it; the evaluated split is ``val`` when tracked), and the analysis records
whether it was circular.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from hypbias.analysis.space_accuracy import convergence_summary, space_metrics
from hypbias.errors import ConfigError, DataError
from hypbias.hierarchy.files import FORMATS, write_hierarchy
from hypbias.hierarchy.learned import (
    adjusted_rand_index,
    class_mean_distance,
    confusion_distance,
    learn_hierarchy,
    learned_cut,
)
from hypbias.hierarchy.tree import Hierarchy
from hypbias.labelspace import FINE, LabelSpace, SpaceSet, build_spaces
from hypbias.metrics.accuracy import convergence_epoch, label_space_accuracy
from hypbias.metrics.manifold import cophenetic_correlation
from hypbias.rundir import RunDir

SOURCES = ("confusion", "means", "covers")
"""Where a class distance can come from (``covers`` is refused: see :func:`learn_from_run`)."""

HIERARCHY_FILE = "learned_hierarchy.json"
"""The attached learned hierarchy, a hierarchy file like ``hierarchy.json``."""

ANALYSIS_FILE = "learned_hierarchy_analysis.json"
"""The attached comparison with the given hierarchy and the convergence epochs under both."""

DEFAULT_EPOCH_Q = 0.5
"""Default learning epoch: the first whose fine accuracy on the learning split reaches this share of
its best, so that the confusion matrix holds many errors and they are no longer those of the random
initialisation, whatever the length of the run."""


@dataclass(frozen=True)
class LearnedFrom:
    """Where a learned hierarchy came from, and the split its hypernym bias is evaluated on."""

    source: str
    """``confusion`` or ``means``."""
    split: str
    epoch: int
    method: str
    evaluated: str

    @property
    def circular(self) -> bool:
        """Learned from the split whose confusion matrices then measure τ."""
        return self.split == self.evaluated

    def describe(self) -> str:
        """E.g. "the train split's confusion matrix at epoch 3 (average linkage)"."""
        what = "confusion matrix" if self.source == "confusion" else "class means"
        return f"the {self.split} split's {what} at epoch {self.epoch} ({self.method} linkage)"

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> LearnedFrom:
        """The origin recorded in an analysis (``analysis["learned_from"]``, extra keys ignored)."""
        return cls(**{f.name: record[f.name] for f in fields(cls)})


# ---------------------------------------------------------------------------- learning
def learn_from_run(run: RunDir, source: str = "confusion", *, split: str | None = None,
                   epoch: int | None = None, method: str = "average") -> tuple[Hierarchy, LearnedFrom]:
    """Learn a hierarchy from a run directory's stored statistics.

    Parameters
    ----------
    run : the run directory.
    source : ``"confusion"``: D = 1 − (P + Pᵀ)/2 of the row-normalised confusion matrix of ``split``
        at ``epoch`` (``confusion.npz``). ``"means"``: Euclidean distances between the class means of
        the final class statistics (``nc.npz``: means = sums / counts; their split and epoch are fixed
        by the run, and ``split``/``epoch`` must match them when given; older run directories store
        ``sums``, divided by ``counts``). ``"covers"`` raises
        :class:`DataError`: a run directory keeps no cover matrix.
    split : default: the first tracked split other than the evaluated one (``train`` preferred); the
        evaluated split itself only when the run tracks no other.
    epoch : default: the first epoch whose fine accuracy on ``split`` reaches
        :data:`DEFAULT_EPOCH_Q` of its best.
    method : linkage rule, see :func:`hypbias.hierarchy.learned.learn_hierarchy`.

    Raises
    ------
    DataError naming the file and value for a missing file, an unknown split or epoch.
    """
    learned, origin, _ = _learn(run, source, split, epoch, method)
    return learned, origin


def _learn(run: RunDir, source: str, split: str | None, epoch: int | None, method: str
           ) -> tuple[Hierarchy, LearnedFrom, dict[str, np.ndarray] | None]:
    """:func:`learn_from_run`, and the confusion matrices it read (None when it read none), so
    that :func:`learn_for_run` reads ``confusion.npz`` once."""
    given = run.hierarchy
    stacks: dict[str, np.ndarray] | None = None
    evaluated = run.main_split
    if source == "confusion":
        path = run.require("confusion.npz")
        stacks = run.confusion()
        split = _learning_split(stacks, evaluated) if split is None else split
        if split not in stacks:
            raise DataError(f"{path}: no split {split!r} (it holds {', '.join(stacks)})")
        stack = stacks[split]
        last = stack.shape[0] - 1
        if epoch is None:
            tau = convergence_epoch(label_space_accuracy(stack), q=DEFAULT_EPOCH_Q)
            epoch = 0 if np.isnan(tau) else int(tau)
        if not 0 <= epoch <= last:
            raise DataError(f"{path}: split {split!r} holds epochs 0..{last}; got epoch {epoch}")
        try:
            distance = confusion_distance(stack[epoch])
        except ValueError as err:
            raise DataError(f"{path}: split {split!r}, epoch {epoch}: {err}") from None
    elif source == "means":
        split, epoch, distance = _mean_distance(run, split, epoch)
    elif source == "covers":
        raise DataError(
            f"{run.path}: --from covers needs the cover matrices A (C x C per layer and epoch), which "
            "a run directory does not keep: manifold.npz holds only the sampled example indices and "
            "metrics.csv only mean covers and CCCs"
        )
    else:
        raise DataError(f"{run.path}: unknown distance source {source!r} "
                        f"(one of {', '.join(SOURCES)})")
    origin = LearnedFrom(source, split, int(epoch), method, evaluated)
    learned = learn_hierarchy(distance, given.classes, method=method,
                              source=f"learned from {run.path}: {origin.describe()}")
    return learned, origin, stacks


def _learning_split(stacks: Mapping[str, np.ndarray], evaluated: str) -> str:
    others = [s for s in stacks if s != evaluated]
    if "train" in others:
        return "train"
    return others[0] if others else evaluated


def _mean_distance(run: RunDir, split: str | None, epoch: int | None
                   ) -> tuple[str, int, np.ndarray]:
    """(split, epoch, class-mean distances) of ``nc.npz``."""
    path = run.file("nc.npz")
    if not path.is_file():
        raise DataError(f"{path}: missing: --from means needs the final class statistics, which a "
                        "run keeps when it tracks neural collapse (nc.every > 0)")
    with np.load(path) as data:
        # class means; run directories written before ClassStatistics kept means stored sums
        stored = "means" if "means" in data.files else "sums"
        missing = [k for k in ("counts", stored, "epoch") if k not in data.files]
        if missing:
            raise DataError(f"{path}: no array {missing[0]!r} (it holds {', '.join(data.files)})")
        counts, values, stored_epoch = data["counts"], data[stored], int(data["epoch"])
    stored_split = str(run.config["nc"]["split"])
    if split is not None and split != stored_split:
        raise DataError(f"{path}: holds the class statistics of the {stored_split!r} split only; "
                        f"got split {split!r}")
    if epoch is not None and epoch != stored_epoch:
        raise DataError(f"{path}: holds the class statistics of epoch {stored_epoch} only; "
                        f"got epoch {epoch}")
    if counts.shape != (len(values),) or (counts <= 0).any():
        raise DataError(f"{path}: 'counts' must be positive, one per row of {stored!r} "
                        f"{values.shape}; got shape {counts.shape}, minimum {counts.min():g}")
    means = values if stored == "means" else values / counts[:, None]
    return stored_split, stored_epoch, class_mean_distance(means)


# ---------------------------------------------------------------------------- comparison
def compare_hierarchies(learned: Hierarchy, given: Hierarchy,
                        spaces: Mapping[str, LabelSpace]) -> dict[str, Any]:
    """CCC of the two trees' leaf distances and ARI of their cuts at equal numbers of groups.

    Leaf distances are LCA heights h(i, j) in both trees (DESIGN.md §2). An LCA height depends on the
    common ancestor alone, so it is an ultrametric like the cophenetic distance the CCC was defined
    for; a graph distance adds the depths of the two leaves, which in a binary dendrogram follow the
    merge order (long chains) rather than the grouping. On a balanced given tree d_W = 2h, so the
    CCC with its graph distances is the same number.

    Parameters
    ----------
    learned, given : hierarchies over the same classes in the same order.
    spaces : the given partitions to compare, by name (the run's hypernym spaces); the given tree's
        cuts at each depth are added as ``level <k>`` unless equal to one of them.

    Returns
    -------
    ``{"ccc": float, "cuts": [{"space", "groups", "ari", "learned_sizes"}, ...]}``, cuts ordered by
    the number of groups; each learned cut is :func:`hypbias.hierarchy.learned.learned_cut`.
    """
    if learned.classes != given.classes:
        raise DataError(f"{learned.source}: its classes differ from those of {given.source}")
    ccc = cophenetic_correlation(learned.lca_height_matrix(), given.lca_height_matrix())
    partitions = dict(spaces)
    for level in range(1, given.height):
        space = LabelSpace.from_hierarchy(given, level=level)
        if 1 < space.num_groups < given.num_classes and space not in partitions.values():
            partitions[f"level {level}"] = space
    cuts = []
    for name, space in sorted(partitions.items(), key=lambda item: item[1].num_groups):
        cut = learned.assignment(learned_cut(learned, space.num_groups))
        cuts.append({"space": name, "groups": space.num_groups,
                     "ari": adjusted_rand_index(space.t, cut),
                     "learned_sizes": np.bincount(cut).tolist()})
    return {"ccc": ccc, "cuts": cuts}


def learned_spaces(learned: Hierarchy, given: SpaceSet, seed: int) -> SpaceSet:
    """The learned counterparts of the given hypernym spaces: for each S_n, the learned tree's cut
    at n groups under the same name, and as many random isomorphic draws of it as S_n has (draw k of
    the i-th space seeded ``seed + 1000 i + k``, as in :func:`hypbias.labelspace.build_spaces`).

    The seeds are the run's own, so draw k of a learned space permutes the classes exactly as draw k
    of the given space does: the two sets of random draws are paired, and identical when the two
    cuts are the same partition."""
    named = {name: LabelSpace(learned.assignment(nodes := learned_cut(learned, s.num_groups)),
                              names=nodes)
             for name, s in given.hypernyms.items()}
    draws = max((len(d) for d in given.randoms.values()), default=0)
    return build_spaces(learned, list(named), draws, seed, named=named)


def learned_convergence(confusion: np.ndarray, given: SpaceSet, learned: SpaceSet, q: float,
                        split: str) -> dict[str, Any]:
    """τ_q of every given and learned hypernym space and of their random draws.

    Parameters
    ----------
    confusion : array of shape (E, C, C), the evaluated split's confusion matrices, epoch 0 first.
    given, learned : the run's spaces and :func:`learned_spaces`, with the same hypernym names.
    q : the convergence threshold (Fig. 4).
    split : the evaluated split's name.

    Returns
    -------
    ``{"q", "draws", "H": τ(H), "spaces": [{"space", "groups", "given", "learned", "random_given",
    "random_given_sd", "random_learned", "random_learned_sd"}, ...]}``; τ is None where never reached,
    random entries are the mean and sd (ddof = 1) over the draws.
    """
    summaries = {kind: convergence_summary(space_metrics(confusion, spaces, split), spaces, q)
                 for kind, spaces in (("given", given), ("learned", learned))}
    rows = []
    for name, space in given.hypernyms.items():
        rname = given.random_name(name)
        row: dict[str, Any] = {"space": name, "groups": space.num_groups}
        for kind, summary in summaries.items():
            tau, sd = summary["tau"][split], summary["tau_sd"][split]
            row[kind] = tau[name]
            row[f"random_{kind}"] = tau.get(rname)
            row[f"random_{kind}_sd"] = sd.get(rname)
        rows.append(row)
    return {"q": q, "draws": summaries["given"]["draws"], FINE: summaries["given"]["tau"][split][FINE],
            "spaces": rows}


def analyse_learned(run: RunDir, learned: Hierarchy, origin: LearnedFrom,
                    confusion: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The whole analysis of a learned hierarchy against the run's own (what :data:`ANALYSIS_FILE`
    holds): provenance, :func:`compare_hierarchies` and :func:`learned_convergence`.

    ``confusion``: the run's confusion matrices (``run.confusion()``) when already read; read here
    when None."""
    given = run.spaces
    stacks = run.confusion() if confusion is None else confusion
    cfg = run.config["spaces"]
    convergence = learned_convergence(stacks[origin.evaluated], given,
                                      learned_spaces(learned, given, int(cfg["seed"])),
                                      float(cfg["q"]), origin.evaluated)
    return {"learned_from": {**asdict(origin), "circular": origin.circular},
            "distance": "lca_height", "cut": "merge order",
            **compare_hierarchies(learned, run.hierarchy, given.hypernyms),
            "convergence": convergence}


# ---------------------------------------------------------------------------- run directory
def attach_learned(run: RunDir, learned: Hierarchy, analysis: dict[str, Any]) -> None:
    """Write :data:`HIERARCHY_FILE` and :data:`ANALYSIS_FILE` into the run directory (atomically,
    the hierarchy first, so an analysis on disk always has its hierarchy beside it)."""
    write_hierarchy(learned, run.file(HIERARCHY_FILE))
    run.write_json(ANALYSIS_FILE, analysis)


@dataclass
class LearnResult:
    """What :func:`learn_for_run` did: the learned hierarchy, where it came from, its comparison
    with the run's hierarchy (the full analysis when attached) and the files written."""

    learned: Hierarchy
    origin: LearnedFrom
    analysis: dict[str, Any]
    written: list[Path]


def learn_for_run(run_dir: str | Path, source: str = "confusion", *, split: str | None = None,
                  epoch: int | None = None, method: str = "average", out: str | Path | None = None,
                  attach: bool = False) -> LearnResult:
    """``hypbias hierarchy learn``: learn a hierarchy from a run, compare it with the run's, write it
    to ``out`` and, with ``attach``, analyse hypernym bias under it and attach both to the run."""
    if out is None and not attach:
        raise ConfigError("hypbias hierarchy learn needs --out FILE, --attach or both")
    out = None if out is None else Path(out)
    if out is not None and out.suffix.lower() not in FORMATS:
        raise ConfigError(f"--out {out}: unknown hierarchy format {out.suffix!r} "
                          f"(use {', '.join(FORMATS)})")
    run = RunDir(Path(run_dir))
    if not run.path.is_dir():
        raise DataError(f"{run.path}: no such run directory")
    learned, origin, confusion = _learn(run, source, split, epoch, method)
    analysis = (analyse_learned(run, learned, origin, confusion) if attach
                else compare_hierarchies(learned, run.hierarchy, run.spaces.hypernyms))
    written = []
    if out is not None:
        write_hierarchy(learned, out)
        written.append(out)
    if attach:
        attach_learned(run, learned, analysis)
        written += [run.file(HIERARCHY_FILE), run.file(ANALYSIS_FILE)]
    return LearnResult(learned, origin, analysis, written)


def read_learned(run: RunDir) -> dict[str, Any] | None:
    """The attached analysis, or None when no learned hierarchy is attached."""
    path = run.file(ANALYSIS_FILE)
    if not path.is_file() or not run.file(HIERARCHY_FILE).is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


def bias_gap(tau: float | None, tau_random: float | None) -> float | None:
    """τ(R) − τ(S): how many epochs earlier S converges than random groupings of its sizes."""
    return None if tau is None or tau_random is None else tau_random - tau


def bias_comparison(row: dict[str, Any]) -> str:
    """``stronger``, ``weaker``, ``as strong`` or ``not comparable``: hypernym bias under the
    learned tree against the given one for one row of :func:`learned_convergence`.

    Hypernym bias under a tree is the gap τ(R_n) − τ(S_n) against random draws of the same group
    sizes; a difference of gaps within the larger sd of the two sets of draws counts as equal.
    """
    learned = bias_gap(row["learned"], row["random_learned"])
    given = bias_gap(row["given"], row["random_given"])
    if learned is None or given is None:
        return "not comparable"
    spread = max(row["random_learned_sd"] or 0.0, row["random_given_sd"] or 0.0)
    if abs(learned - given) <= spread:
        return "as strong"
    return "stronger" if learned > given else "weaker"


__all__ = [
    "ANALYSIS_FILE",
    "DEFAULT_EPOCH_Q",
    "HIERARCHY_FILE",
    "SOURCES",
    "LearnResult",
    "LearnedFrom",
    "analyse_learned",
    "attach_learned",
    "bias_comparison",
    "bias_gap",
    "compare_hierarchies",
    "learn_for_run",
    "learn_from_run",
    "learned_convergence",
    "learned_spaces",
    "read_learned",
]
