"""Label spaces of an experiment and their accuracy curves, derived from stored confusion matrices.

Naming (DESIGN.md §4): ``H`` the fine space; ``S<n>`` the hypernym space with n groups (a space the
dataset defines keeps its own name); ``R<n>#<k>`` the k-th random isomorphic draw of ``S<n>``; ``R<n>``
the mean over the draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hypbias.hierarchy.tree import Hierarchy
from hypbias.labelspace import LabelSpace
from hypbias.metrics.accuracy import (
    convergence_epoch,
    label_space_accuracy,
    relative_accuracy,
    relative_gain,
    residual_relative_error,
)

COLUMNS = ["epoch", "split", "space", "metric", "value", "layer"]
"""Columns of the long-format metrics table."""

DERIVED_METRICS = ("accuracy", "relative_accuracy", "relative_gain", "residual_relative_error",
                   "theoretical_accuracy")
"""Metrics :func:`space_metrics` derives from confusion matrices (recomputed, never stored state)."""


@dataclass
class SpaceSet:
    """The label spaces of an experiment.

    Attributes
    ----------
    hypernyms : dict name -> LabelSpace, the S spaces in the configured order.
    randoms : dict S-name -> list of (R-name, LabelSpace), its random isomorphic draws.
    """

    hypernyms: dict[str, LabelSpace] = field(default_factory=dict)
    randoms: dict[str, list[tuple[str, LabelSpace]]] = field(default_factory=dict)

    def random_name(self, hypernym: str) -> str:
        """``S4`` -> ``R4``; a named space ``x`` -> ``R[x]``."""
        return "R" + hypernym[1:] if hypernym[:1] == "S" and hypernym[1:].isdigit() else f"R[{hypernym}]"

    def all(self) -> dict[str, LabelSpace]:
        """Every space by name (hypernyms, then every random draw)."""
        out = dict(self.hypernyms)
        for draws in self.randoms.values():
            out.update(dict(draws))
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Name -> assignment array ``t``, for ``spaces.npz``."""
        return {name: space.t for name, space in self.all().items()}

    def layout(self) -> dict[str, list[str]]:
        """Hypernym name -> names of its random draws (the order matters), for ``spaces.json``."""
        return {name: [r for r, _ in self.randoms.get(name, [])] for name in self.hypernyms}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], layout: Mapping[str, list[str]]) -> SpaceSet:
        """Inverse of :meth:`to_arrays` and :meth:`layout`."""
        out = cls()
        for name, draws in layout.items():
            out.hypernyms[name] = LabelSpace(arrays[name])
            out.randoms[name] = [(r, LabelSpace(arrays[r])) for r in draws]
        return out


def build_spaces(hierarchy: Hierarchy, specs: Sequence[Any], random_draws: int, seed: int,
                 named: Mapping[str, LabelSpace] | None = None) -> SpaceSet:
    """Resolve the configured hypernym spaces and draw their random isomorphic counterparts.

    Parameters
    ----------
    hierarchy : the class hierarchy.
    specs : each an int n (``Hierarchy.superclasses(n=n)``), a string ``"level:k"``, or the name of a
        space in ``named``.
    random_draws : random isomorphic draws per hypernym space.
    seed : draw k of the i-th space uses seed ``seed + 1000 * i + k``.
    named : spaces defined by the dataset (e.g. CIFAR-100's ``S20``).
    """
    named = dict(named or {})
    out = SpaceSet()
    for spec in specs:
        if isinstance(spec, bool) or not isinstance(spec, int | str):
            raise ValueError(
                f"spaces.hypernyms: entries must be ints, 'level:k' or space names. Got {spec!r}."
            )
        if isinstance(spec, int):
            space = LabelSpace.from_hierarchy(hierarchy, n=spec)
            name = f"S{space.num_groups}"
        elif spec.startswith("level:"):
            space = LabelSpace.from_hierarchy(hierarchy, level=int(spec.partition(":")[2]))
            name = f"S{space.num_groups}"
        elif spec in named:
            space, name = named[spec], spec
        else:
            known = ", ".join(sorted(named)) or "none"
            raise ValueError(
                f"spaces.hypernyms: unknown space {spec!r} (the dataset defines: {known}; "
                "or use an int n or 'level:k')"
            )
        if name in out.hypernyms:
            continue
        out.hypernyms[name] = space
    for i, (name, space) in enumerate(out.hypernyms.items()):
        rname = out.random_name(name)
        out.randoms[name] = [(f"{rname}#{k}", space.random_isomorphic(seed + 1000 * i + k))
                             for k in range(random_draws)]
    return out


def space_metrics(confusion: np.ndarray, spaces: SpaceSet, split: str) -> pd.DataFrame:
    """Every accuracy-derived metric for every space, from one stack of confusion matrices.

    Parameters
    ----------
    confusion : array of shape (E, C, C), epoch 0 first.
    spaces : the experiment's spaces.
    split : the split name written in the rows.

    Returns
    -------
    Long-format DataFrame with :data:`COLUMNS`: metrics ``accuracy``, ``relative_accuracy``,
    ``relative_gain``, ``residual_relative_error`` for H, every S, every draw and the draws' mean
    ``R<n>``, and ``theoretical_accuracy`` (Eq. 22) for the random spaces.
    """
    epochs = np.arange(confusion.shape[0])
    counts = confusion[0].sum(axis=1)  # samples per true class, the same at every epoch
    acc_h = label_space_accuracy(confusion)
    frames: list[pd.DataFrame] = []

    def emit(name: str, curves: dict[str, np.ndarray]) -> None:
        for metric, values in curves.items():
            frames.append(pd.DataFrame({"epoch": epochs, "split": split, "space": name,
                                        "metric": metric, "value": values, "layer": ""}))

    identity = LabelSpace.identity(confusion.shape[-1])
    emit("H", _curves(acc_h, identity.chance_accuracy(counts)))
    for name, space in spaces.hypernyms.items():
        emit(name, _curves(label_space_accuracy(confusion, space), space.chance_accuracy(counts)))
        draws = spaces.randoms.get(name, [])
        if not draws:
            continue
        per_draw = []
        for rname, rspace in draws:
            curves = _curves(label_space_accuracy(confusion, rspace), rspace.chance_accuracy(counts))
            curves["theoretical_accuracy"] = rspace.theoretical_accuracy(acc_h, counts)
            emit(rname, curves)
            per_draw.append(curves)
        emit(spaces.random_name(name),
             {m: np.mean([d[m] for d in per_draw], axis=0) for m in per_draw[0]})
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def _curves(acc: np.ndarray, chance: float) -> dict[str, np.ndarray]:
    return {
        "accuracy": acc,
        "relative_accuracy": relative_accuracy(acc),
        "relative_gain": relative_gain(acc, chance),
        "residual_relative_error": residual_relative_error(acc),
    }


def convergence_summary(metrics: pd.DataFrame, spaces: SpaceSet, q: float) -> dict[str, Any]:
    """τ_q per split and space; for each R<n>, the mean and sd over its draws (sd with ddof = 1).

    Returns ``{"tau": {split: {space: epoch}}, "tau_sd": {split: {R<n>: sd}}, "draws": k}``.
    """
    acc = metrics[(metrics.metric == "accuracy") & (metrics.layer == "")]
    tau: dict[str, dict[str, float | None]] = {}
    tau_sd: dict[str, dict[str, float]] = {}
    for split, frame in acc.groupby("split", sort=False):
        wide = frame.pivot(index="epoch", columns="space", values="value").sort_index()
        epochs = wide.index.to_numpy()
        taus = {s: convergence_epoch(wide[s].to_numpy(), q=q, epochs=epochs) for s in wide.columns}
        split_tau: dict[str, float | None] = {}
        split_sd: dict[str, float] = {}
        for name in ["H", *spaces.hypernyms]:
            split_tau[name] = _maybe(taus[name])
            draws = [taus[r] for r, _ in spaces.randoms.get(name, [])]
            if draws:
                rname = spaces.random_name(name)
                split_tau[rname] = _maybe(np.nanmean(draws))
                split_sd[rname] = float(np.nanstd(draws, ddof=1)) if len(draws) > 1 else 0.0
                for r, _ in spaces.randoms[name]:
                    split_tau[r] = _maybe(taus[r])
        tau[str(split)] = split_tau
        tau_sd[str(split)] = split_sd
    return {"q": q, "tau": tau, "tau_sd": tau_sd,
            "draws": max((len(d) for d in spaces.randoms.values()), default=0)}


def _maybe(value: Any) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def convergence_finding(summary: dict[str, Any], spaces: SpaceSet, split: str = "val") -> list[str]:
    """One sentence per hypernym space comparing τ_q of S with its random counterparts and H."""
    q = summary["q"]
    tau, sd = summary["tau"].get(split, {}), summary["tau_sd"].get(split, {})
    sentences = []
    for name in spaces.hypernyms:
        rname = spaces.random_name(name)
        if tau.get(name) is None or tau.get(rname) is None:
            continue
        verdict = "earlier than" if tau[name] < tau[rname] else "not earlier than"
        sentences.append(
            f"{name} reached {100 * q:.0f}% of its best {split} accuracy at epoch {tau[name]:g}, "
            f"its random counterparts {rname} at epoch {tau[rname]:.1f} ± {sd.get(rname, 0.0):.1f} "
            f"(mean ± sd over {summary['draws']} draws), and the fine space H at epoch "
            f"{_fmt(tau.get('H'))}: hypernyms converge {verdict} random groupings of the same sizes."
        )
    return sentences


def _fmt(value: float | None) -> str:
    return "never" if value is None else f"{value:g}"
