"""Every accumulator through one harness (tests/harness.py) against plain float64 NumPy references.

Each reference below is written independently of hypbias: counts by ``np.add.at``, means and
scatter in two passes, LCA distances from root paths (tests/lca_reference.py), nearest means by ``cdist``,
Pearson's r by ``np.corrcoef``. A new accumulator without a case here fails
:func:`test_every_accumulator_has_a_case`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from scipy.spatial.distance import cdist

import hypbias
from harness import (
    Case,
    all_reduce_results,
    assert_close,
    assert_refused,
    check_batches,
    check_merge,
    check_pickle,
    check_reset,
    check_state_dict,
    concat,
    split_rows,
)
from hypbias import Hierarchy
from hypbias.labelspace import LabelSpace
from hypbias.metrics import (
    Accumulator,
    ClassStatistics,
    ConfusionMatrix,
    HierarchicalMistakes,
    NearestMeanMismatch,
    PearsonAccumulator,
    State,
)
from lca_reference import NESTED, reference_lca_distances

# ---------------------------------------------------------------------------- confusion matrix
C = 6


def _classification(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, C, size=150)
    logits = rng.normal(size=(150, C)) + 1.5 * np.eye(C)[y]
    return logits, y


def _confusion_reference(rows):
    logits, y = rows
    m = np.zeros((C, C), dtype=np.int64)
    np.add.at(m, (y, logits.argmax(axis=1)), 1)
    return m


# ---------------------------------------------------------------------------- class statistics
D = 4
OFFSET = np.array([50.0, -20.0, 3.0, 1e3])


def _features(rng: np.random.Generator, classes: int = C - 1) -> tuple[np.ndarray, np.ndarray]:
    """Features (160, D) far from the origin; by default the last class never occurs."""
    y = rng.integers(0, classes, size=160)
    means = 3.0 * np.random.default_rng(0).normal(size=(C, D)) + OFFSET
    return means[y] + rng.normal(size=(160, D)), y


def _class_statistics_reference(rows):
    h, y = rows
    counts = np.bincount(y, minlength=C).astype(np.float64)
    means = np.full((C, D), np.nan)
    for c in np.unique(y):
        means[c] = h[y == c].mean(axis=0)
    centred = h - means[y]
    return {"counts": counts, "means": means, "global_mean": h.mean(axis=0),
            "within": centred.T @ centred / len(y)}


def _class_statistics_result(acc: ClassStatistics):
    means = acc.means.numpy().copy()
    means[acc.counts.numpy() == 0] = np.nan
    return {"counts": acc.counts.numpy(), "means": means, "global_mean": acc.global_mean.numpy(),
            "within": acc.within_covariance.numpy()}


# ---------------------------------------------------------------------------- NC4
NC4_SPACE = LabelSpace([0, 0, 1, 1, 1, 2])
NC4_FIT = _features(np.random.default_rng(1), classes=C)
NC4_WEIGHT = np.random.default_rng(2).normal(size=(C, D))
NC4_BIAS = np.random.default_rng(3).normal(size=C)


def _nc4_make() -> NearestMeanMismatch:
    stats = ClassStatistics(C, D)
    stats.update(*NC4_FIT)
    return NearestMeanMismatch(stats, NC4_WEIGHT, NC4_BIAS, {"H": None, "S": NC4_SPACE},
                               chunk_size=7)


def _nc4_data(rng: np.random.Generator) -> tuple[np.ndarray]:
    return (_features(rng)[0] + 2.0 * rng.normal(size=(160, D)),)


def _nc4_reference(rows):
    (h,) = rows
    fit_h, fit_y = NC4_FIT
    out = {}
    for name, t in (("H", np.arange(C)), ("S", NC4_SPACE.t)):
        k = t.max() + 1
        means = np.stack([fit_h[t[fit_y] == s].mean(axis=0) for s in range(k)])
        w = np.stack([NC4_WEIGHT[t == s].mean(axis=0) for s in range(k)])
        b = np.array([NC4_BIAS[t == s].mean() for s in range(k)])
        out[name] = float(np.mean((h @ w.T + b).argmax(1) != cdist(h, means).argmin(1)))
    return out


# ---------------------------------------------------------------------------- hierarchical
TREE = Hierarchy.from_nested(NESTED)


def _mistakes_reference(convention: str, ks=(1, 3, 10)):
    dist_matrix = reference_lca_distances(convention)

    def reference(rows):
        logits, y = rows
        ranked = np.argsort(-logits, axis=1, kind="stable")
        d = dist_matrix[y[:, None], ranked]
        wrong = ranked[:, 0] != y
        out = {"mistake_severity": d[wrong, 0].mean() if wrong.any() else np.nan}
        out.update({f"hier_dist@{k}": d[:, :k].mean() for k in ks})
        return out

    return reference


def _tree_classification(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 10, size=120)
    return rng.normal(size=(120, 10)) + np.eye(10)[y], y


# ---------------------------------------------------------------------------- Pearson
def _pairs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=130) + 5.0
    return x, 0.6 * x + rng.normal(size=130)


# ---------------------------------------------------------------------------- max and min
class Extremes(Accumulator):
    """Test-only accumulator of column-wise maxima and minima: the "max" and "min" reductions."""

    states = (State("high", ("dim",), reduce="max", initial=-np.inf),
              State("low", ("dim",), reduce="min", initial=np.inf))

    def __init__(self, dim: int = 3) -> None:
        self.dim = dim
        super().__init__()

    def update(self, x) -> None:
        x = torch.as_tensor(x, dtype=torch.float64)
        dev = self._device_for(x.device)
        self.high = torch.maximum(self.high, x.amax(dim=0).to(dev))
        self.low = torch.minimum(self.low, x.amin(dim=0).to(dev))

    def compute(self) -> dict[str, np.ndarray]:
        return {"high": self.high.numpy(), "low": self.low.numpy()}


CASES = {
    "confusion": Case(lambda: ConfusionMatrix(C), _classification, _confusion_reference,
                      lambda acc: acc.compute(), rtol=0, atol=0),
    "class_statistics": Case(lambda: ClassStatistics(C, D), _features,
                             _class_statistics_reference, _class_statistics_result, rtol=1e-9),
    "nc4": Case(_nc4_make, _nc4_data, _nc4_reference, lambda acc: acc.compute(), rtol=0,
                atol=1e-15),
    "mistakes_depth": Case(lambda: HierarchicalMistakes(TREE, ks=(1, 3, 10)), _tree_classification,
                           _mistakes_reference("depth"), lambda acc: acc.compute()),
    "mistakes_height": Case(lambda: HierarchicalMistakes(TREE, ks=(1, 3, 10), lca="height"),
                            _tree_classification, _mistakes_reference("height"),
                            lambda acc: acc.compute()),
    "pearson": Case(PearsonAccumulator, _pairs, lambda rows: np.corrcoef(*rows)[0, 1],
                    lambda acc: acc.compute(), rtol=1e-11),
    "extremes": Case(Extremes, lambda rng: (rng.normal(size=(90, 3)),),
                     lambda rows: {"high": rows[0].max(axis=0), "low": rows[0].min(axis=0)},
                     lambda acc: acc.compute(), rtol=0, atol=0),
}


def _import_every_module() -> None:
    """Import all of hypbias, so that every Accumulator subclass is defined."""
    for info in pkgutil.walk_packages(hypbias.__path__, "hypbias."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as err:  # an optional dependency that is not installed
            if (err.name or "").startswith("hypbias"):
                raise


def test_every_accumulator_has_a_case():
    _import_every_module()
    covered = {type(case.make()) for case in CASES.values()}
    missing = [cls.__qualname__ for cls in Accumulator.registered() if cls not in covered]
    assert not missing, f"accumulators without a harness case in {__file__}: {missing}"


CHECKS = [check_batches, check_merge, check_state_dict, check_pickle, check_reset]


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_harness(name, check, seed):
    check(CASES[name], seed)


# ---------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("name", CASES)
def test_merge_refuses_another_kind(name):
    acc = CASES[name].make()
    other = PearsonAccumulator() if not isinstance(acc, PearsonAccumulator) else ConfusionMatrix(2)
    kind = type(acc).__name__
    with pytest.raises(ValueError, match=re.escape(f"The 'other' parameter of {kind}.merge must "
                                                   f"be a {kind}")) as info:
        acc.merge(other)
    assert str(info.value).endswith(f"Got a {type(other).__name__} instead.")


@pytest.mark.parametrize(("make", "other", "message"), [
    (lambda: ConfusionMatrix(3), lambda: ConfusionMatrix(4),
     "The 'other' parameter of ConfusionMatrix.merge must be a ConfusionMatrix with "
     "num_classes=3. Got num_classes=4 instead."),
    (lambda: ClassStatistics(3, 2), lambda: ClassStatistics(3, 4),
     "The 'other' parameter of ClassStatistics.merge must be a ClassStatistics with "
     "num_classes=3, dim=2. Got num_classes=3, dim=4 instead."),
    (lambda: HierarchicalMistakes(TREE, ks=[1]), lambda: HierarchicalMistakes(TREE, lca="height",
                                                                             ks=[1]),
     "The 'other' parameter of HierarchicalMistakes.merge must be a HierarchicalMistakes with "
     "num_classes=10, ks=(1,), lca='depth'. Got num_classes=10, ks=(1,), lca='height' instead."),
])
def test_merge_refuses_other_settings(make, other, message):
    assert_refused(lambda: make().merge(other()), message)


@pytest.mark.parametrize("name", CASES)
def test_load_state_dict_names_the_bad_key_or_shape(name):
    acc = CASES[name].make()
    state = acc.state_dict()
    kind = type(acc).__name__
    first = next(iter(state))
    with pytest.raises(ValueError, match="lacks the key") as info:
        acc.load_state_dict({k: v for k, v in state.items() if k != first})
    assert str(info.value).startswith(f"The 'state' parameter of {kind}.load_state_dict lacks the "
                                      f"key '{first}'.")
    with pytest.raises(ValueError, match="has the unknown key 'extra'"):
        acc.load_state_dict({**state, "extra": torch.zeros(1)})
    with pytest.raises(ValueError, match="must have shape") as info:
        acc.load_state_dict({**state, first: torch.zeros(7, 7, 7)})
    assert str(info.value) == (f"The '{first}' entry of {kind}.load_state_dict must have shape "
                               f"{tuple(state[first].shape)}. Got (7, 7, 7) instead.")


def test_state_stays_where_it_is_put():
    acc = ConfusionMatrix(3, device="cpu")
    assert acc.device == torch.device("cpu") and acc.to("cpu") is acc
    stats = ClassStatistics(3, 2)
    stats.update(torch.ones(4, 2, dtype=torch.bfloat16), torch.tensor([0, 1, 2, 2]))
    assert stats.means.dtype == torch.float64 and stats.device == torch.device("cpu")
    assert repr(stats) == "ClassStatistics(3 classes, dim 2, 4 samples, device cpu)"


def test_all_reduce_without_a_process_group_changes_nothing():
    for case in CASES.values():
        rng = np.random.default_rng(5)
        acc = case.make()
        acc.update(*case.data(rng))
        before = case.result(acc)
        acc.all_reduce()
        assert_close(case.result(acc), before, 0.0, 0.0)


# ---------------------------------------------------------------------------- two processes
def _all_reduce_worker(rank: int, store: str, seed: int, out) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        out[rank] = all_reduce_results(CASES, rank, 2, seed)
    finally:
        dist.destroy_process_group()


def test_all_reduce_over_two_gloo_processes_equals_one_process(tmp_path):
    """Two processes (one of which sees no batch in the "idle" scenario) agree with the reference."""
    seed = 11
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_all_reduce_worker, nprocs=2, join=True, args=(str(tmp_path / "store"), seed, out))
        results = dict(out)
    for name, case in CASES.items():
        rng = np.random.default_rng(seed)
        want = case.reference(concat(split_rows(case.data(rng), rng)))
        for scenario in ("split", "idle"):
            (got0, state0), (got1, state1) = results[0][name, scenario], results[1][name, scenario]
            assert_close(got0, want, case.rtol, case.atol, f"{name} {scenario}")
            assert_close(got1, got0, 0.0, 0.0, f"{name} {scenario}, rank 1")
            for key, value in state0.items():  # every process holds the same bits
                torch.testing.assert_close(state1[key], value, rtol=0, atol=0)


def test_a_state_declares_a_known_reduction():
    with pytest.raises(ValueError, match=re.escape(
            "State 'x': reduce must be one of ('sum', 'max', 'min', 'custom'). Got 'mean' instead.")):
        State("x", (3,), reduce="mean")
