"""Training options of App. B.1 run end to end on fabricated CIFAR-100 images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fabricate import write_cifar100
from hypbias.experiment import run_experiment
from hypbias.train.checkpoint import read_checkpoint
from hypbias.train.component import TrackerComponent
from hypbias.train.config import load_config
from hypbias.train.loop import build_model, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar100(root, n_train=2, n_test=1)
    return root


def _config(root, *overrides):
    return load_config("cifar100_resnet18", [f"data.root={root}", "model.name=small_cnn",
                                             "model.widths=[8, 16]", "train.epochs=2",
                                             "train.batch_size=50", "spaces.random_draws=1",
                                             *overrides])


@pytest.mark.parametrize("options", [
    ["data.normalize=unit", "train.augment=autoaugment", "train.ema=0.9", "train.warmup_epochs=1",
     "train.label_smoothing=0.1", "train.nesterov=true", "train.schedule=step"],
    ["train.optimizer=adamw", "train.lr=0.001", "train.augment=null", "train.schedule=constant"],
])
def test_options_train_and_track(cifar_root, tmp_path, options):
    run = run_experiment(_config(cifar_root, *options), tmp_path / "run", progress=False, report=False)
    conf = run.confusion()["val"]
    assert conf.shape == (3, 100, 100)
    assert (conf.sum(axis=(1, 2)) == 100).all()
    assert np.isfinite(run.log["loss"].iloc[1:]).all()
    assert (run.log["images_per_s"].iloc[1:] > 0).all()


class _ValLogits(TrackerComponent):
    """Keeps the logits of every val batch, per epoch."""

    name = "val_logits"
    splits = ("val",)

    def __init__(self) -> None:
        self.batches: list[torch.Tensor] = []
        self.per_epoch: dict[int, torch.Tensor] = {}

    def update(self, split, logits, targets, features):
        self.batches.append(logits.detach().clone())

    def end_epoch(self, epoch, model):
        self.per_epoch[epoch] = torch.cat(self.batches)
        self.batches = []
        return []


def test_ema_weights_are_what_is_evaluated_and_returned(cifar_root, tmp_path):
    recorder = _ValLogits()
    config = _config(cifar_root, "train.augment=null", "train.ema=0.5", "train.save_every=1")
    result = train(config, components=[recorder], progress=False, checkpoint_dir=tmp_path)
    model = build_model(dict(config["model"]), result.bundle).eval()
    x = result.bundle.val.x
    for epoch in (1, 2):  # every epoch after the first update is evaluated with the average
        saved = read_checkpoint(tmp_path / f"epoch_{epoch:03d}.pt")
        with torch.no_grad():
            model.load_state_dict(saved["ema"]["shadow"])
            torch.testing.assert_close(recorder.per_epoch[epoch], model(x), rtol=1e-5, atol=1e-5)
            model.load_state_dict(saved["model"])
            assert not torch.allclose(recorder.per_epoch[epoch], model(x), rtol=1e-3, atol=1e-3)
    returned = result.model.state_dict()
    for key, value in read_checkpoint(tmp_path / "epoch_002.pt")["ema"]["shadow"].items():
        assert torch.equal(returned[key], value), key


def test_learning_rate_follows_the_schedule(cifar_root):
    result = train(_config(cifar_root, "train.schedule=step", "train.milestones=[0.5]",
                           "train.gamma=0.1", "train.lr=0.2", "train.augment=null"), progress=False)
    lrs = [row["lr"] for row in result.log[1:]]
    assert lrs == pytest.approx([0.2, 0.02])


def test_subnormal_flushing_is_scoped_to_training():
    from hypbias.train.loop import subnormals_flushed

    tiny = torch.tensor([1e-39], dtype=torch.float32)
    assert (tiny * 1.0).item() > 0
    with subnormals_flushed():
        assert (tiny * 1.0).item() == 0.0
    assert (tiny * 1.0).item() > 0
