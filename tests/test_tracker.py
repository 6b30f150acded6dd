"""Tracker and ConfusionMatrix: exact counts, batching and merge invariance, epoch bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hypbias import Tracker
from hypbias.metrics.confusion import ConfusionMatrix


def reference_confusion(y: np.ndarray, pred: np.ndarray, c: int) -> np.ndarray:
    m = np.zeros((c, c), dtype=np.int64)
    for a, b in zip(y, pred, strict=True):
        m[a, b] += 1
    return m


@given(st.integers(1, 300), st.integers(1, 64), st.integers(0, 10**6))
def test_confusion_invariant_to_batching_and_merging(n, batch, seed):
    c = 7
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    expected = reference_confusion(y.numpy(), logits.argmax(1).numpy(), c)
    whole, shard_a, shard_b = ConfusionMatrix(c), ConfusionMatrix(c), ConfusionMatrix(c)
    for k, start in enumerate(range(0, n, batch)):
        sl = slice(start, start + batch)
        whole.update(logits[sl], y[sl])
        (shard_a if k % 2 else shard_b).update(logits[sl], y[sl])
    np.testing.assert_array_equal(whole.compute(), expected)
    np.testing.assert_array_equal(shard_a.merge(shard_b).compute(), expected)


def test_confusion_errors():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="must have 3 columns. Got shape \\(2, 4\\)"):
        cm.update(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        cm.update(torch.zeros(2, 3), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="num_classes' parameter of ConfusionMatrix must be an int >= 1"):
        ConfusionMatrix(0)


def test_tracker_records_epoch_zero_and_stacks_epochs():
    c = 4
    tr = Tracker(c, splits=("val", "train"))
    logits = torch.eye(c)[[0, 1, 2, 3, 0]]
    y = torch.tensor([0, 1, 2, 3, 1])
    with pytest.raises(ValueError, match="expected epoch 0"):
        tr.end_epoch(1)
    tr.update(logits, y, split="val")
    acc = tr.end_epoch(0)
    assert acc["val"] == pytest.approx(80.0) and np.isnan(acc["train"])
    tr.update(logits, y, split="val")
    tr.update(logits, y, split="train")
    tr.end_epoch(1)
    stack = tr.confusion("val")
    assert stack.shape == (2, c, c)
    np.testing.assert_array_equal(stack[0], reference_confusion(y.numpy(), logits.argmax(1).numpy(), c))
    assert tr.confusion("train")[0].sum() == 0 and tr.confusion("train")[1].sum() == 5
    with pytest.raises(ValueError, match="The 'split' parameter of Tracker.update must be one of"):
        tr.update(logits, y, split="test")


def test_tracker_state_round_trip():
    tr = Tracker(3)
    tr.update(torch.eye(3), torch.tensor([0, 1, 1]))
    tr.end_epoch(0)
    clone = Tracker(3)
    clone.load_state_dict(tr.state_dict())
    assert clone.next_epoch == 1
    np.testing.assert_array_equal(clone.confusion(), tr.confusion())
