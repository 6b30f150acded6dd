"""Tracker and ConfusionMatrix: exact counts, refusal of bad batches, epoch bookkeeping.

Batching, merging and persistence of ConfusionMatrix are in tests/test_accumulators.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import assert_refused
from hypbias import Tracker
from hypbias.data.synthetic import synthetic_hierarchy
from hypbias.metrics import _inputs
from hypbias.metrics.collapse import ClassStatistics
from hypbias.metrics.confusion import ConfusionMatrix
from hypbias.metrics.hierarchical import HierarchicalMistakes


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

BAD_BATCHES = [  # (logits, targets, the message with {owner} for the method refusing them)
    (torch.tensor([5, 0]), torch.tensor([0, 1]),  # once counted as cell (1, 1): 100% accuracy
     "The 'logits' parameter of {owner} must hold values in [0, 4). Got values in [0, 5] instead."),
    (LOGITS, torch.tensor([0.0, 1.0, 2.7]),  # once truncated to 2
     "The 'targets' parameter of {owner} must be a 1-d integer array. Got shape (3,) and dtype "
     "torch.float32 instead."),
    (LOGITS, torch.tensor([True, False, True]),
     "The 'targets' parameter of {owner} must be a 1-d integer array. Got shape (3,) and dtype "
     "torch.bool instead."),
    (LOGITS, torch.tensor([0, -1, 2]),  # once a raw torch error
     "The 'targets' parameter of {owner} must hold values in [0, 4). Got values in [-1, 2] "
     "instead."),
    (LOGITS, torch.tensor([0, 1, 4]),
     "The 'targets' parameter of {owner} must hold values in [0, 4). Got values in [0, 4] "
     "instead."),
    (torch.tensor([[float("nan"), 0.0, 0.0, 0.0]]), torch.tensor([1]),  # once predicted class 0
     "The 'logits' parameter of {owner} must be finite. Got 1 non-finite values (the first: nan) "
     "instead."),
    (torch.zeros(2, 5), torch.tensor([0, 1]),
     "The 'logits' parameter of {owner} must be a non-empty float array of shape (n, 4). Got "
     "shape (2, 5) and dtype torch.float32 instead."),
    (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long),
     "The 'logits' parameter of {owner} must be a non-empty float array of shape (n, 4). Got "
     "shape (0, 4) and dtype torch.float32 instead."),
    (LOGITS, torch.tensor([0, 1]),
     "The 'targets' parameter of {owner} must have length 3. Got 2 instead."),
    (LOGITS, torch.tensor([[0, 1, 2]]),
     "The 'targets' parameter of {owner} must be a 1-d integer array. Got shape (1, 3) and dtype "
     "torch.int64 instead."),
]


@pytest.mark.parametrize(("logits", "targets", "message"), BAD_BATCHES)
def test_confusion_matrix_update_refuses_bad_batches(logits, targets, message):
    cm = ConfusionMatrix(4)
    assert_refused(lambda: cm.update(logits, targets), message.format(owner="ConfusionMatrix.update"))
    assert cm.compute().sum() == 0


@pytest.mark.parametrize(("logits", "targets", "message"), BAD_BATCHES)
def test_tracker_update_refuses_bad_batches(logits, targets, message):
    tracker = Tracker(4)
    assert_refused(lambda: tracker.update(logits, targets), message.format(owner="Tracker.update"))
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


def _tracker_with_components() -> Tracker:
    """4 classes, neural collapse and mistake severity on the train split, bound to a 3 -> 4 head."""
    tracker = Tracker.from_hierarchy(synthetic_hierarchy([2, 2]), splits=("train",), hypernyms=[2],
                                     random_draws=1)
    tracker.bind(torch.nn.Linear(3, 4))
    return tracker


def _component_states(tracker: Tracker) -> dict[str, torch.Tensor]:
    parts = {c.name: c for c in tracker.components}
    return {"confusion": torch.as_tensor(tracker._current["train"].compute()),
            "mistakes": parts["mistakes"].acc["train"].sums.clone(),
            "nc_counts": parts["nc"].stats.counts.clone()}


def test_tracker_checks_a_batch_once_and_feeds_every_accumulator(monkeypatch):
    rng = np.random.default_rng(0)
    logits, y = torch.tensor(rng.standard_normal((20, 4))), torch.tensor(rng.integers(0, 4, 20))
    features = torch.tensor(rng.standard_normal((20, 3)))
    tracker = _tracker_with_components()
    calls = []
    checked = _inputs.check_values
    monkeypatch.setattr(_inputs, "check_values", lambda *a: calls.append(a) or checked(*a))
    tracker.update(logits, y, split="train", features=features)
    assert len(calls) == 1  # one host transfer for logits, targets and features together
    monkeypatch.undo()
    parts = {c.name: c for c in tracker.components}
    mistakes, stats = HierarchicalMistakes(tracker.hierarchy), ClassStatistics(4, 3)
    mistakes.update(logits, y)
    stats.update(features, y)
    np.testing.assert_array_equal(tracker._current["train"].compute(),
                                  reference_confusion(y.numpy(), logits.argmax(1).numpy(), 4))
    assert parts["mistakes"].acc["train"].compute() == mistakes.compute()
    for name, value in stats.state_dict().items():
        torch.testing.assert_close(parts["nc"].stats.state_dict()[name], value, rtol=0, atol=0)


FEATURES_OK = torch.zeros(3, 3)


@pytest.mark.parametrize(("logits", "features", "message"), [
    (LOGITS, torch.tensor([[0.0, float("nan"), 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
     "The 'features' parameter of Tracker.update must be finite. Got 1 non-finite values "
     "(the first: nan) instead."),
    (LOGITS, torch.zeros(2, 3),
     "The 'features' parameter of Tracker.update must be a non-empty float array of shape (3, D). "
     "Got shape (2, 3) and dtype torch.float32 instead."),
    (LOGITS, torch.zeros(3, 3, dtype=torch.long),
     "The 'features' parameter of Tracker.update must be a non-empty float array of shape (3, D). "
     "Got shape (3, 3) and dtype torch.int64 instead."),
    (torch.tensor([[float("inf"), 0.0, 0.0, 0.0], [0.0] * 4, [0.0] * 4]), FEATURES_OK,
     "The 'logits' parameter of Tracker.update must be finite. Got 1 non-finite values "
     "(the first: inf) instead."),
])
def test_tracker_refuses_a_bad_batch_before_any_accumulator_sees_it(logits, features, message):
    tracker = _tracker_with_components()
    before = _component_states(tracker)
    assert_refused(lambda: tracker.update(logits, torch.tensor([0, 1, 2]), split="train",
                                          features=features), message)
    for name, value in _component_states(tracker).items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize(("logits", "features", "message"), [
    (LOGITS, torch.zeros(3, 5),  # D is checked by the component that knows it
     "The 'features' parameter of Tracker.update must be a non-empty float array of shape (n, 3). "
     "Got shape (3, 5) and dtype torch.float32 instead."),
    (torch.tensor([0, 1, 2]), FEATURES_OK,  # predictions count for the confusion matrix only
     "The 'logits' parameter of Tracker.update must be a non-empty float array of shape (n, 4). "
     "Got shape (3,) and dtype torch.int64 instead."),
])
def test_components_refuse_what_they_cannot_use(logits, features, message):
    tracker = _tracker_with_components()
    assert_refused(lambda: tracker.update(logits, torch.tensor([0, 1, 2]), split="train",
                                          features=features), message)
