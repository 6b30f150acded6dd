"""Tracker and ConfusionMatrix: exact counts, refusal of bad batches, epoch bookkeeping.

Batching, merging and persistence of ConfusionMatrix are in tests/test_accumulators.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import assert_refused
from hypbias import Tracker
from hypbias.metrics.confusion import ConfusionMatrix


def reference_confusion(y: np.ndarray, pred: np.ndarray, c: int) -> np.ndarray:
    m = np.zeros((c, c), dtype=np.int64)
    for a, b in zip(y, pred, strict=True):
        m[a, b] += 1
    return m


def test_confusion_counts_predictions_given_as_labels():
    cm = ConfusionMatrix(4)
    cm.update(torch.tensor([0, 3, 3, 1]), torch.tensor([0, 3, 2, 2]))
    np.testing.assert_array_equal(cm.compute(), reference_confusion(
        np.array([0, 3, 2, 2]), np.array([0, 3, 3, 1]), 4))


LOGITS = torch.eye(4)[[0, 1, 2]]
OWNER = "ConfusionMatrix.update"


@pytest.mark.parametrize(("logits", "targets", "message"), [
    (torch.tensor([5, 0]), torch.tensor([0, 1]),  # once counted as cell (1, 1): 100% accuracy
     f"The 'logits' parameter of {OWNER} must hold values in [0, 4). Got values in [0, 5] instead."),
    (LOGITS, torch.tensor([0.0, 1.0, 2.7]),  # once truncated to 2
     f"The 'targets' parameter of {OWNER} must be a 1-d integer array. Got shape (3,) and dtype "
     "torch.float32 instead."),
    (LOGITS, torch.tensor([True, False, True]),
     f"The 'targets' parameter of {OWNER} must be a 1-d integer array. Got shape (3,) and dtype "
     "torch.bool instead."),
    (LOGITS, torch.tensor([0, -1, 2]),  # once a raw torch error
     f"The 'targets' parameter of {OWNER} must hold values in [0, 4). Got values in [-1, 2] "
     "instead."),
    (LOGITS, torch.tensor([0, 1, 4]),
     f"The 'targets' parameter of {OWNER} must hold values in [0, 4). Got values in [0, 4] "
     "instead."),
    (torch.tensor([[float("nan"), 0.0, 0.0, 0.0]]), torch.tensor([1]),  # once predicted class 0
     f"The 'logits' parameter of {OWNER} must be finite. Got 1 non-finite values (the first: nan) "
     "instead."),
    (torch.zeros(2, 5), torch.tensor([0, 1]),
     f"The 'logits' parameter of {OWNER} must be a non-empty float array of shape (n, 4). Got "
     "shape (2, 5) and dtype torch.float32 instead."),
    (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long),
     f"The 'logits' parameter of {OWNER} must be a non-empty float array of shape (n, 4). Got "
     "shape (0, 4) and dtype torch.float32 instead."),
    (LOGITS, torch.tensor([0, 1]),
     f"The 'targets' parameter of {OWNER} must have length 3. Got 2 instead."),
    (LOGITS, torch.tensor([[0, 1, 2]]),
     f"The 'targets' parameter of {OWNER} must be a 1-d integer array. Got shape (1, 3) and dtype "
     "torch.int64 instead."),
])
def test_tracker_update_refuses_bad_batches(logits, targets, message):
    tracker = Tracker(4)
    assert_refused(lambda: tracker.update(logits, targets), message)
    tracker.update(LOGITS, torch.tensor([0, 1, 1]))  # a refused batch leaves nothing behind
    tracker.end_epoch(0)
    np.testing.assert_array_equal(tracker.confusion()[0], reference_confusion(
        np.array([0, 1, 1]), np.array([0, 1, 2]), 4))


def test_confusion_matrix_needs_classes():
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
