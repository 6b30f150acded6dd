"""Training options of App. B.1 run end to end on fabricated CIFAR-100 images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fabricate import write_cifar100
from hypbias.errors import ConfigError
from hypbias.experiment import run_experiment
from hypbias.losses import JensenShannonCrossEntropy
from hypbias.train.checkpoint import read_checkpoint
from hypbias.train.component import TrackerComponent
from hypbias.train.config import load_config
from hypbias.train.loop import build_model, build_optimizer, prepare_training, train, training_views

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
    ["train.optimizer=rmsprop", "train.lr=0.001", "train.eps=0.0316", "train.rmsprop_alpha=0.9",
     "train.augment=null"],
    ["loss.name=jsd", "train.augment=crop_flip", "train.label_smoothing=0.1"],
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


def test_rmsprop_takes_its_hyper_parameters_from_the_config(cifar_root):
    config = _config(cifar_root, "train.optimizer=rmsprop", "train.lr=0.064", "train.eps=0.0316",
                     "train.rmsprop_alpha=0.9", "train.momentum=0.8", "train.weight_decay=1e-5")
    model = torch.nn.Linear(3, 2)
    optimizer = build_optimizer(model, config.train)
    assert isinstance(optimizer, torch.optim.RMSprop)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["eps"], group["alpha"], group["momentum"], group["weight_decay"]) == (
        0.064, 0.0316, 0.9, 0.8, 1e-5)


def test_training_views_are_the_clean_batch_then_independent_draws():
    draws = iter(range(1, 10))

    def augment(x):
        return x + 100 * next(draws)

    x = torch.arange(6.0).view(3, 2)
    assert torch.equal(training_views(x, None, 1), x)
    assert torch.equal(training_views(x, augment, 1), x + 100)
    views = training_views(x, augment, 3)
    assert torch.equal(views, torch.cat([x, x + 200, x + 300]))


def test_the_jensen_shannon_loss_sees_every_view_of_each_batch(cifar_root, monkeypatch):
    seen = []
    original = JensenShannonCrossEntropy.forward

    def spy(self, logits, targets):
        seen.append((tuple(logits.shape), tuple(targets.shape)))
        return original(self, logits, targets)

    monkeypatch.setattr(JensenShannonCrossEntropy, "forward", spy)
    result = train(_config(cifar_root, "loss.name=jsd", "loss.views=3", "train.augment=crop_flip",
                           "train.epochs=1"), progress=False)
    assert seen == [((150, 100), (50,)), ((150, 100), (50,)), ((150, 100), (50,)), ((150, 100), (50,))]
    assert np.isfinite(result.log[1]["loss"])


def test_the_jensen_shannon_loss_without_augmentation_is_refused(cifar_root):
    with pytest.raises(ConfigError, match=r"'train.augment' is null, but loss 'jsd' compares 3 views "
                                          r"of each image \(the clean one and augmented draws\): "
                                          r"set it to 'crop_flip', 'autoaugment' or 'randaugment'$"):
        prepare_training(_config(cifar_root, "loss.name=jsd", "train.augment=null"))
