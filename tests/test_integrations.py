"""Lightning and Hugging Face callbacks on CPU with tiny models: every epoch tracked (epoch 0 before
training included), accuracies equal to the final and initial models' own predictions, NC rows in
every space, a run directory whose report renders; the examples of the README executed."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hypbias as hb
from hypbias.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
NC_METRICS = {"nc1", "nc2_equinorm_means", "nc2_equinorm_weights", "nc2_equiangular_means",
              "nc2_equiangular_weights", "nc2_maxangle_means", "nc2_maxangle_weights", "nc3", "nc4"}
SPACES = {"H", "S3", "R3", "R3#0", "R3#1"}


def _hierarchy() -> hb.Hierarchy:
    return hb.Hierarchy.from_nested({f"g{g}": [f"c{g}{k}" for k in range(3)] for g in range(3)})


def _tracker() -> hb.Tracker:
    return hb.Tracker.from_hierarchy(_hierarchy(), ("val", "train"), hypernyms=[3], random_draws=2)


def _vectors(n_per_class: int, seed: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(9).repeat_interleave(n_per_class)
    means = torch.randn(9, 6, generator=torch.Generator().manual_seed(1)) * 2
    return TensorDataset(means[y] + torch.randn(len(y), 6, generator=gen), y)


def _accuracy(model: nn.Module, x, y) -> float:
    model.eval()
    with torch.no_grad():
        out = model(**x) if isinstance(x, dict) else model(x)
    logits = getattr(out, "logits", out)
    return 100.0 * (logits.argmax(1) == y).double().mean().item()


def _check_run(run: RunDir, epochs: int) -> None:
    m = run.metrics
    nc = m[m.metric.isin(NC_METRICS)]
    assert set(nc.space) == SPACES
    for space, frame in nc.groupby("space"):
        assert set(frame.metric) == NC_METRICS, space
        assert sorted(frame.epoch.unique()) == list(range(epochs + 1)), space
    assert np.isfinite(nc.value).all()
    assert run.log.epoch.tolist() == list(range(epochs + 1))
    assert np.isnan(run.log.loss[0]) and np.isfinite(run.log.loss[1:]).all()
    html = run.file("report.html").read_text()
    assert "Neural collapse" in html and "Hypernym bias" in html


def _final_accuracy(run: RunDir, split: str, epoch: int) -> float:
    m = run.metrics
    return m[(m.metric == "accuracy") & (m.space == "H") & (m.split == split)
             & (m.epoch == epoch)].value.item()


# ---------------------------------------------------------------- Lightning


def test_lightning_callback_tracks_every_epoch(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    from hypbias.integrations.lightning import HypbiasCallback

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 9))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, index):
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)

    torch.manual_seed(0)
    train, val = _vectors(20, 0), _vectors(10, 1)
    module = Module()
    initial = copy.deepcopy(module)
    callback = HypbiasCallback(_tracker(), tmp_path / "run", {
        "val": DataLoader(val, batch_size=32), "train": DataLoader(train, batch_size=64)})
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", devices=1, logger=False, callbacks=[callback],
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(module, DataLoader(train, batch_size=16, shuffle=True))
    run = RunDir(tmp_path / "run")
    assert callback.run.path == run.path
    _check_run(run, 3)
    assert _final_accuracy(run, "val", 0) == pytest.approx(_accuracy(initial, *val.tensors))
    assert _final_accuracy(run, "val", 3) == pytest.approx(_accuracy(module, *val.tensors))
    assert _final_accuracy(run, "train", 3) == pytest.approx(_accuracy(module, *train.tensors))
    assert "lr" in run.log and "train_loss" not in run.log


def test_lightning_callback_state_round_trip(tmp_path):
    pytest.importorskip("lightning.pytorch")
    from hypbias.integrations.lightning import HypbiasCallback

    train, val = _vectors(5, 0), _vectors(5, 1)
    loaders = {"val": [val.tensors], "train": [train.tensors]}
    first = HypbiasCallback(_tracker(), tmp_path / "first", loaders)
    model = nn.Sequential(nn.Linear(6, 9))
    first.recorder.start(model)
    first.recorder.measure(model, 1, {"loss": 0.5})
    saved = torch.load(_saved(first.state_dict()), weights_only=True)
    second = HypbiasCallback(_tracker(), tmp_path / "second", loaders)
    second.load_state_dict(saved)
    assert second.tracker.next_epoch == 2
    np.testing.assert_array_equal(second.tracker.confusion("val"), first.tracker.confusion("val"))
    assert second.tracker.rows == first.tracker.rows
    nc_first, nc_second = (next(c for c in t.components if c.name == "nc")
                           for t in (first.tracker, second.tracker))
    for name, array in nc_first.artifacts().items():
        np.testing.assert_array_equal(nc_second.artifacts()[name], array)


def _saved(state):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_a_loader_for_every_tracked_split_is_required():
    pytest.importorskip("lightning.pytorch")
    from hypbias.integrations.lightning import HypbiasCallback

    with pytest.raises(ValueError, match=r"must hold a loader for every tracked split \['val', "
                                         r"'train'\]. Got none for \['train'\]."):
        HypbiasCallback(_tracker(), "out", {"val": []})


# ---------------------------------------------------------------- Hugging Face


def _token_data(n_per_class: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Sequences of 8 tokens: noise, one token of the class's group and one of the class."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for c in range(9):
        for _ in range(n_per_class):
            ids = torch.randint(20, 40, (8,), generator=gen)
            ids[0] = 1
            where = torch.randperm(7, generator=gen)[:2] + 1
            ids[where[0]], ids[where[1]] = 3 + c // 3, 10 + c
            rows.append({"input_ids": ids, "attention_mask": torch.ones(8, dtype=torch.long),
                         "labels": torch.tensor(c)})
    return rows


def test_transformers_callback_tracks_every_epoch(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from hypbias.integrations.transformers import HypbiasCallback

    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=16, num_labels=9)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    initial = copy.deepcopy(model)
    train, val = _token_data(12, 0), _token_data(6, 1)
    callback = HypbiasCallback(_tracker(), tmp_path / "run", {
        "val": DataLoader(val, batch_size=32), "train": DataLoader(train, batch_size=64)})
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "trainer"), num_train_epochs=2, per_device_train_batch_size=16,
        learning_rate=5e-3, report_to=[], save_strategy="no", logging_strategy="epoch",
        use_cpu=True, disable_tqdm=True, seed=0)
    transformers.Trainer(model=model, args=args, train_dataset=train, callbacks=[callback]).train()
    run = RunDir(tmp_path / "run")
    _check_run(run, 2)
    batch = next(iter(DataLoader(val, batch_size=len(val))))
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    assert _final_accuracy(run, "val", 0) == pytest.approx(_accuracy(initial, inputs, batch["labels"]))
    assert _final_accuracy(run, "val", 2) == pytest.approx(_accuracy(model, inputs, batch["labels"]))
    assert (run.log.lr[1:] > 0).all()


def test_trainer_log_takes_the_last_loss_of_each_epoch():
    pytest.importorskip("transformers")
    from hypbias.integrations.transformers import trainer_log

    history = [{"loss": 2.0, "learning_rate": 0.1, "epoch": 0.5},
               {"loss": 1.5, "learning_rate": 0.09, "epoch": 1.0},
               {"eval_loss": 9.0, "epoch": 1.0},
               {"loss": 1.0, "learning_rate": 0.05, "epoch": 2.0}]
    assert trainer_log(history, 1) == {"loss": 1.5, "lr": 0.09}
    assert trainer_log(history, 2) == {"loss": 1.0, "lr": 0.05}
    assert np.isnan(trainer_log(history, 0)["loss"])


# ---------------------------------------------------------------- the README's examples


@pytest.mark.slow
@pytest.mark.parametrize(("script", "packages"), [
    ("lightning_callback.py", ["lightning"]),
    ("hf_trainer.py", ["transformers", "accelerate"]),
])
def test_the_integration_examples_run(tmp_path, script, packages):
    for package in packages:
        pytest.importorskip(package)
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script), str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-3000:]
    run = RunDir(out)
    nc = run.metrics[run.metrics.metric.isin(NC_METRICS)]
    assert {"H", "S4"} <= set(nc.space)
    assert set(nc[nc.space == "S4"].metric) == NC_METRICS
    assert run.file("report.html").exists()
