"""One test harness for every :class:`hypbias.metrics.Accumulator` (torchmetrics' MetricTester habit).

A :class:`Case` says how to build an accumulator, how to draw data for it, and how to compute the
expected result with plain float64 NumPy from the rows it has seen. The checks below run every
case through the same lifecycle:

* :func:`check_batches`: random batch sizes over shuffled rows; the result equals the reference
  after every batch and at the end;
* :func:`check_merge`: the batches dealt to random shards (one left empty), merged in random order;
* :func:`check_state_dict` and :func:`check_pickle`: round trips that continue accumulating;
* :func:`check_reset`: back to the state of a fresh accumulator;
* :func:`all_reduce_results`: run inside each process of a process group (tests/test_accumulators.py
  spawns two gloo processes, one of which sees no batch).
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from hypbias.metrics import Accumulator

Rows = tuple[np.ndarray, ...]
"""Arrays with one row per sample, aligned on the first axis (the arguments of ``update``)."""


@dataclass(frozen=True)
class Case:
    """How to test one accumulator class.

    Attributes
    ----------
    make : () -> Accumulator
        A fresh accumulator (the same settings every call).
    data : (rng) -> Rows
        All the rows of one test, drawn from ``rng``.
    reference : (Rows) -> result
        The expected result for the given rows, computed with plain float64 NumPy.
    result : (Accumulator) -> result
        The accumulator's result, in the structure ``reference`` returns (arrays, floats, dicts).
    rtol, atol : float
        Tolerance of the comparison.
    """

    make: Callable[[], Accumulator]
    data: Callable[[np.random.Generator], Rows]
    reference: Callable[[Rows], Any]
    result: Callable[[Accumulator], Any]
    rtol: float = 1e-10
    atol: float = 1e-12


def assert_refused(call: Callable[[], Any], message: str) -> None:
    """``call()`` raises ``ValueError`` with exactly ``message``."""
    with pytest.raises(ValueError, match=re.escape(message[:40])) as info:
        call()
    assert str(info.value) == message


def assert_close(got: Any, want: Any, rtol: float, atol: float, where: str = "result") -> None:
    """Compare nested dicts of arrays and numbers (NaN equals NaN)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), (where, got, want)
        for key in want:
            assert_close(got[key], want[key], rtol, atol, f"{where}[{key!r}]")
        return
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64),
                               rtol=rtol, atol=atol, equal_nan=True, err_msg=where)


def split_rows(rows: Rows, rng: np.random.Generator, max_batch: int = 40) -> list[Rows]:
    """The rows in shuffled order, cut into batches of random sizes in [1, max_batch]."""
    n = len(rows[0])
    order = rng.permutation(n)
    batches, start = [], 0
    while start < n:
        idx = order[start:start + int(rng.integers(1, max_batch + 1))]
        batches.append(tuple(r[idx] for r in rows))
        start += len(idx)
    return batches


def concat(batches: Sequence[Rows]) -> Rows:
    """The rows of ``batches`` stacked back into one set of arrays."""
    return tuple(np.concatenate(parts) for parts in zip(*batches, strict=True))


def feed(acc: Accumulator, batches: Sequence[Rows], as_tensors: bool = False) -> Accumulator:
    """``acc.update(*batch)`` for every batch (as tensors when ``as_tensors``); returns ``acc``."""
    for batch in batches:
        args = tuple(torch.from_numpy(b) for b in batch) if as_tensors else batch
        acc.update(*args)
    return acc


def check_batches(case: Case, seed: int) -> None:
    rng = np.random.default_rng(seed)
    batches = split_rows(case.data(rng), rng)
    acc = case.make()
    for k, batch in enumerate(batches):
        feed(acc, [batch], as_tensors=bool(k % 2))  # NumPy and tensor input alike
        assert_close(case.result(acc), case.reference(concat(batches[:k + 1])), case.rtol,
                     case.atol, f"after batch {k}")
    assert_close(case.result(acc), case.reference(concat(batches)), case.rtol, case.atol, "end")


def check_merge(case: Case, seed: int, shards: int = 3) -> None:
    rng = np.random.default_rng(seed)
    batches = split_rows(case.data(rng), rng)
    owner = rng.integers(0, shards, size=len(batches))  # shard `shards` (empty) gets nothing
    accs = [feed(case.make(), [b for b, o in zip(batches, owner, strict=True) if o == s])
            for s in range(shards + 1)]
    order = rng.permutation(len(accs))
    merged = accs[order[0]]
    for i in order[1:]:
        assert merged.merge(accs[i]) is merged
    assert_close(case.result(merged), case.reference(concat(batches)), case.rtol, case.atol)


def check_state_dict(case: Case, seed: int) -> None:
    rng = np.random.default_rng(seed)
    batches = split_rows(case.data(rng), rng)
    half = max(1, len(batches) // 2)
    acc = feed(case.make(), batches[:half])
    state = acc.state_dict()
    assert list(state) == [s.name for s in type(acc).states]
    assert all(v.device.type == "cpu" for v in state.values())
    restored = case.make()
    restored.load_state_dict(state)
    assert_close(case.result(restored), case.result(acc), 0.0, 0.0, "restored")
    kept = {k: v.clone() for k, v in state.items()}
    feed(acc, batches[half:])
    feed(restored, batches[half:])
    assert_close(case.result(restored), case.reference(concat(batches)), case.rtol, case.atol)
    assert_close(case.result(acc), case.result(restored), 0.0, 0.0, "continued")
    for key, value in kept.items():  # a copy, not a view of the live state
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)


def check_pickle(case: Case, seed: int) -> None:
    rng = np.random.default_rng(seed)
    batches = split_rows(case.data(rng), rng)
    half = max(1, len(batches) // 2)
    acc = feed(case.make(), batches[:half])
    again = pickle.loads(pickle.dumps(acc))
    assert_close(case.result(again), case.result(acc), 0.0, 0.0, "unpickled")
    feed(again, batches[half:])
    assert_close(case.result(again), case.reference(concat(batches)), case.rtol, case.atol)


def check_reset(case: Case, seed: int) -> None:
    rng = np.random.default_rng(seed)
    acc = feed(case.make(), split_rows(case.data(rng), rng))
    acc.reset()
    fresh = case.make().state_dict()
    for name, value in acc.state_dict().items():
        torch.testing.assert_close(value, fresh[name], rtol=0, atol=0)


def all_reduce_results(cases: dict[str, Case], rank: int, world: int, seed: int) -> dict:
    """Per case and scenario, this process's result after ``all_reduce`` (call in every process).

    Scenarios: ``"split"`` deals the batches round-robin over the processes; ``"idle"`` gives all
    of them to rank 0, so the other ranks reduce state that saw no batch.
    """
    out = {}
    for name, case in cases.items():
        rng = np.random.default_rng(seed)
        batches = split_rows(case.data(rng), rng)
        for scenario, mine in (("split", batches[rank::world]),
                               ("idle", batches if rank == 0 else [])):
            acc = feed(case.make(), mine)
            acc.all_reduce()
            out[name, scenario] = (case.result(acc), acc.state_dict())
    return out
