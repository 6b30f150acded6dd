"""Per-epoch logging through one hook: log.csv rewritten after every epoch, TensorBoard scalars read
back from the event files against the run's own tables, a console line per epoch, W&B and MLflow
when installed; the same hook from hypbias run, an own loop, Lightning and analyze-checkpoints;
the multi-level loss's terms per epoch; refusals before anything is written."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import hypbias as hb
from hypbias.errors import ConfigError, MissingDependencyError
from hypbias.labelspace import LabelSpace, SpaceSet
from hypbias.labelspace.spaceset import build_spaces
from hypbias.losses import MultiLevelCrossEntropy
from hypbias.metrics.rows import metric_row
from hypbias.train import loggers
from hypbias.train.checkpoint import checkpoints
from hypbias.train.component import TrackerComponent
from hypbias.train.config import parse_config
from hypbias.train.loggers import ConsoleLog, EpochRecord, space_accuracy_rows
from hypbias.train.loop import build_bundle, train

TINY = {"seed": 0,
        "data": {"name": "synthetic", "branching": [2, 2, 2], "train_per_class": 40,
                 "val_per_class": 10},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": 3, "batch_size": 16, "lr": 0.05},
        "track": {"splits": ["val", "train"]},
        "spaces": {"hypernyms": [2, 4], "random_draws": 2}}


def _config(**sections):
    return parse_config({**TINY, **{k: {**TINY.get(k, {}), **v} for k, v in sections.items()}})


def _train(tmp_path, components=(), **sections):
    config = _config(**sections)
    bundle = build_bundle(config)
    spaces = build_spaces(bundle.hierarchy, [2, 4], 2, 0)
    return train(config, bundle=bundle, spaces=spaces, components=list(components), progress=False,
                 run_dir=tmp_path / "run", checkpoint_dir=tmp_path / "run" / "checkpoints")


def _scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a TensorBoard folder: tag -> [(step, value)] (purged steps dropped)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(directory))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _same(got: list[tuple[int, float]], expected: Iterable[tuple[int, float]],
          rel: float = 1e-6) -> None:
    """The same steps, in order, with values equal within ``rel`` (TensorBoard stores float32)."""
    expected = [(int(step), float(value)) for step, value in expected]
    assert [step for step, _ in got] == [step for step, _ in expected]
    np.testing.assert_allclose([v for _, v in got], [v for _, v in expected], rtol=rel)


# ---------------------------------------------------------------- the record and its scalars


def test_scalars_tag_each_metric_row_and_each_number_of_the_row():
    rows = [metric_row(2, "val", "S4", "accuracy", 61.5),
            metric_row(2, "train", "H", "ccc_cover", 0.25, layer="block1"),
            metric_row(2, "train", "S4", "nc1", math.nan)]
    row = {"epoch": 2, "loss": 0.5, "lr": 0.1, "acc_val": 40.0, "note": "x", "seconds": 3.0}
    assert EpochRecord(2, row, rows, [row]).scalars() == {
        "val/S4/accuracy": 61.5, "train/H/ccc_cover/block1": 0.25, "log/loss": 0.5, "log/lr": 0.1,
        "log/seconds": 3.0}


def test_space_accuracy_rows_equal_sums_over_the_confusion_matrix():
    rng = np.random.default_rng(0)
    m = rng.integers(0, 20, size=(8, 8))
    s2 = LabelSpace([0, 0, 0, 0, 1, 1, 1, 1])
    draws = [LabelSpace([0, 1, 0, 1, 0, 1, 0, 1]), LabelSpace([1, 1, 0, 0, 0, 0, 1, 1])]
    spaces = SpaceSet({"S2": s2}, {"S2": [("R2#0", draws[0]), ("R2#1", draws[1])]})

    def accuracy(t):
        t = np.asarray(t)
        return 100.0 * m[t[:, None] == t[None, :]].sum() / m.sum()

    got = {(r["space"], r["metric"]): r["value"]
           for r in space_accuracy_rows(5, {"val": m}, spaces)}
    assert set(got) == {("H", "accuracy"), ("S2", "accuracy"), ("R2", "accuracy"),
                        ("R2", "theoretical_accuracy")}
    assert got["H", "accuracy"] == pytest.approx(100.0 * np.trace(m) / m.sum())
    assert got["S2", "accuracy"] == pytest.approx(accuracy(s2.t))
    assert got["R2", "accuracy"] == pytest.approx(np.mean([accuracy(d.t) for d in draws]))
    p_h = np.trace(m) / m.sum()
    counts = m.sum(axis=1)
    eq22 = [100 * (p_h + (1 - p_h) * sum((counts[d.t == g].sum() / counts.sum()) ** 2
                                         for g in range(2))) for d in draws]
    assert got["R2", "theoretical_accuracy"] == pytest.approx(np.mean(eq22))


def test_label_space_rows_are_derived_only_when_a_logger_reads_them(tmp_path, monkeypatch):
    """log.csv and the console line do not read the label spaces' accuracies: no derivation then;
    scalar loggers get them, derived once per epoch however many read them."""
    calls = []
    derive = loggers.space_accuracy_rows
    monkeypatch.setattr(loggers, "space_accuracy_rows",
                        lambda *args: calls.append(args[0]) or derive(*args))

    class Scalars:
        def __init__(self):
            self.seen = []

        def log_epoch(self, record):
            self.seen.append(record.scalars())

        def close(self):
            pass

    m = np.diag([3, 4]) + 1  # [[4, 1], [1, 5]]: 9 of 11 right
    row = {"epoch": 1, "loss": 0.5, "acc_val": 70.0, "seconds": 1.0}
    plain = [loggers.CsvLog(tmp_path), ConsoleLog()]
    loggers.dispatch(plain, 1, [row], {"val": m}, None, [])
    assert calls == [] and (tmp_path / "log.csv").is_file()
    readers = [Scalars(), Scalars()]
    measured = [metric_row(1, "val", "H", "nc1", 0.25)]
    loggers.dispatch([*plain, *readers], 1, [row], {"val": m}, None, measured)
    assert calls == [1]
    expected = {"val/H/accuracy": pytest.approx(100.0 * 9 / 11), "val/H/nc1": 0.25,
                "log/loss": 0.5, "log/seconds": 1.0}
    assert readers[0].seen == readers[1].seen == [expected]


def test_console_line_says_epoch_loss_accuracy_speed_and_elapsed(capsys):
    row = {"epoch": 3, "loss": 0.41234, "lr": 0.0095, "images_per_s": 12345.6, "acc_val": 71.234,
           "acc_train": 80.1, "seconds": 83.4}
    ConsoleLog(30).log_epoch(EpochRecord(3, row, [], [row]))
    first = {"epoch": 0, "loss": math.nan, "acc_val": 10.0, "seconds": 0.0}
    ConsoleLog().log_epoch(EpochRecord(0, first, [], [first]))
    assert capsys.readouterr().out.splitlines() == [
        "epoch 3/30  loss 0.4123  lr 0.0095  acc val 71.23% train 80.10%  12,346 img/s  0:01:23",
        "epoch 0  loss -  acc val 10.00%  0:00:00"]


def test_console_auto_follows_the_terminal_and_progress(monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert loggers.console_wanted("auto", True) and not loggers.console_wanted("auto", False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert not loggers.console_wanted("auto", True)
    assert loggers.console_wanted("always", False) and not loggers.console_wanted("never", True)


# ---------------------------------------------------------------- the training loop


class _LogCsvReader(TrackerComponent):
    """Reads log.csv when each epoch closes (before the loggers have written that epoch)."""

    name = "log_reader"
    splits = ("val",)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: dict[int, list[int]] = {}

    def end_epoch(self, epoch, model):
        self.seen[epoch] = pd.read_csv(self.path).epoch.tolist() if self.path.exists() else []
        return []


def test_log_csv_grows_every_epoch_and_tensorboard_holds_the_runs_numbers(tmp_path):
    pytest.importorskip("tensorboard")
    reader = _LogCsvReader(tmp_path / "run" / "log.csv")
    result = _train(tmp_path, [reader], log={"tensorboard": True}, loss={"name": "multilevel"})
    assert reader.seen == {0: [], 1: [0], 2: [0, 1], 3: [0, 1, 2]}
    written = pd.read_csv(tmp_path / "run" / "log.csv")
    pd.testing.assert_frame_equal(written, pd.DataFrame(result.log), check_dtype=False)

    scalars = _scalars(tmp_path / "run" / "tensorboard")
    for split in ("val", "train"):
        _same(scalars[f"{split}/H/accuracy"], [(row["epoch"], row[f"acc_{split}"]) for row in result.log])
    _same(scalars["log/lr"], [(row["epoch"], row["lr"]) for row in result.log])
    assert [step for step, _ in scalars["log/loss"]] == [1, 2, 3]  # epoch 0 has no loss
    terms = {(r["epoch"], r["space"]): r["value"] for r in result.tracker.rows
             if r["metric"] == "loss_term"}
    for space in ("H", "S2", "S4"):
        _same(scalars[f"train/{space}/loss_term"], [(e, terms[e, space]) for e in (1, 2, 3)])
    assert {"val/S2/accuracy", "val/R2/accuracy", "val/R4/theoretical_accuracy"} <= set(scalars)
    assert not any("#" in tag for tag in scalars)


def test_loss_terms_sum_to_the_loss_and_a_zero_weight_gives_a_zero_term(tmp_path):
    result = _train(tmp_path, loss={"name": "multilevel", "weights": [0.0, 1.0]})
    terms = pd.DataFrame([r for r in result.tracker.rows if r["metric"] == "loss_term"])
    assert set(terms.split) == {"train"}
    assert sorted(terms.epoch.unique()) == [1, 2, 3]
    wide = terms.pivot(index="epoch", columns="space", values="value")
    assert list(wide.columns) == ["H", "S2", "S4"]
    assert (wide["S2"] == 0).all() and (wide["S4"] > 0).all()
    losses = [row["loss"] for row in result.log[1:]]
    np.testing.assert_allclose(wide.sum(axis=1), losses, rtol=1e-6)  # float32 per batch


def test_multilevel_terms_equal_plain_numpy():
    g = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn(12, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 6, (12,), generator=g)
    spaces = [LabelSpace([0, 0, 1, 1, 2, 2]), LabelSpace([0, 1, 0, 1, 0, 1])]
    loss = MultiLevelCrossEntropy(spaces, [0.5, 2.0], fine_weight=0.7, names=["A", "B"])
    terms = loss.terms(logits, y).numpy()
    z = logits.numpy()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    rows = np.arange(12)
    expected = [-0.7 * np.log(p[rows, y])]
    for space, w in zip(spaces, (0.5, 2.0), strict=True):
        same = space.t[None, :] == space.t[y.numpy()][:, None]
        expected.append(-w * np.log((p * same).sum(1)))
    np.testing.assert_allclose(terms, np.stack(expected), rtol=1e-10)
    assert loss.term_names == ("H", "A", "B")
    total = loss(logits, y)
    np.testing.assert_allclose(loss.last_terms.numpy(), np.stack(expected).mean(1), rtol=1e-10)
    assert float(total) == pytest.approx(np.stack(expected).sum(0).mean(), rel=1e-10)
    with pytest.raises(ValueError, match="'names' parameter of MultiLevelCrossEntropy must hold 2"):
        MultiLevelCrossEntropy(spaces, names=["A", "A"])


def test_a_resumed_run_shows_each_epoch_once_in_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    full = _train(tmp_path / "full", log={"tensorboard": True}, train={"save_every": 1})
    run = tmp_path / "cut" / "run"
    _train(tmp_path / "cut", log={"tensorboard": True}, train={"save_every": 1})
    checkpoints(run / "checkpoints")[-1].unlink()  # killed after epoch 3 was logged, not saved
    config = _config(log={"tensorboard": True}, train={"save_every": 1})
    bundle = build_bundle(config)
    resumed = train(config, bundle=bundle, spaces=build_spaces(bundle.hierarchy, [2, 4], 2, 0),
                    progress=False, run_dir=run, checkpoint_dir=run / "checkpoints", resume=True)
    assert [row["acc_val"] for row in resumed.log] == [row["acc_val"] for row in full.log]
    scalars = _scalars(run / "tensorboard")
    expected = [(row["epoch"], row["acc_val"]) for row in full.log]
    _same(scalars["val/H/accuracy"], expected)
    assert pd.read_csv(run / "log.csv").epoch.tolist() == [0, 1, 2, 3]


def test_a_missing_package_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    real = loggers.find_spec
    monkeypatch.setattr(loggers, "find_spec", lambda name: None if name == "wandb" else real(name))
    with pytest.raises(MissingDependencyError, match=r"log.wandb needs the optional package 'wandb'"
                       r".*pip install 'hypbias\[wandb\]'"):
        _train(tmp_path, log={"wandb": True})
    assert not (tmp_path / "run").exists()


def test_log_options_are_checked():
    with pytest.raises(ConfigError, match=r"'log.console' must be one of 'auto', 'always', 'never'. "
                                          r"Got 'sometimes' instead."):
        _config(log={"console": "sometimes"})
    tracker = hb.Tracker(4)
    with pytest.raises(ConfigError, match=r"^Tracker.log_to: 'log.tensorboard' must be true or "
                                          r"false. Got 'yes' instead.$"):
        tracker.log_to(None, tensorboard="yes")


# ---------------------------------------------------------------- the other loops


def _hierarchy() -> hb.Hierarchy:
    return hb.Hierarchy.from_nested({f"g{g}": [f"c{g}{k}" for k in range(3)] for g in range(3)})


def _vectors(n_per_class: int, seed: int):
    from torch.utils.data import TensorDataset

    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(9).repeat_interleave(n_per_class)
    means = torch.randn(9, 6, generator=torch.Generator().manual_seed(1)) * 2
    return TensorDataset(means[y] + torch.randn(len(y), 6, generator=gen), y)


def test_an_own_loop_logs_every_epoch_with_its_nc_rows(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.data import DataLoader

    tracker = hb.Tracker.from_hierarchy(_hierarchy(), ("val", "train"), hypernyms=[3],
                                        random_draws=2)
    tracker.log_to(tmp_path / "run", tensorboard=True, console="never")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 9))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loaders = {"val": DataLoader(_vectors(4, 1), batch_size=16),
               "train": DataLoader(_vectors(8, 0), batch_size=16)}
    for epoch in range(3):
        if epoch:
            for x, y in loaders["train"]:
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
        for split, loader in loaders.items():
            tracker.evaluate(model, loader, split)
        tracker.end_epoch(epoch, log={"loss": 1.0 / (epoch + 1)})
        assert pd.read_csv(tmp_path / "run" / "log.csv").epoch.tolist() == list(range(epoch + 1))
    tracker.close_loggers()
    scalars = _scalars(tmp_path / "run" / "tensorboard")
    nc1 = {(r["epoch"], r["space"]): r["value"] for r in tracker.rows if r["metric"] == "nc1"}
    _same(scalars["train/S3/nc1"], [(e, nc1[e, "S3"]) for e in range(3)])
    _same(scalars["log/loss"], [(e, 1.0 / (e + 1)) for e in range(3)])


def test_the_lightning_callback_logs_through_the_same_hook(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    pytest.importorskip("tensorboard")
    from torch.utils.data import DataLoader

    from hypbias.integrations.lightning import HypbiasCallback

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(),
                                           torch.nn.Linear(8, 9))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            loss = torch.nn.functional.cross_entropy(self(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    tracker = hb.Tracker.from_hierarchy(_hierarchy(), ("val", "train"), hypernyms=[3],
                                        random_draws=2)
    loaders = {"val": DataLoader(_vectors(4, 1), batch_size=16),
               "train": DataLoader(_vectors(8, 0), batch_size=16)}
    callback = HypbiasCallback(tracker, tmp_path / "run", loaders, report=False,
                               log={"tensorboard": True, "console": "never"})
    torch.manual_seed(0)
    pl.Trainer(max_epochs=2, callbacks=[callback], logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False, accelerator="cpu").fit(
        Module(), DataLoader(_vectors(8, 0), batch_size=16, shuffle=True))
    scalars = _scalars(tmp_path / "run" / "tensorboard")
    log = pd.read_csv(tmp_path / "run" / "log.csv")
    _same(scalars["val/H/accuracy"], zip(log.epoch, log.acc_val, strict=True))
    _same(scalars["log/loss"], zip(log.epoch[1:], log.loss[1:], strict=True))
    assert [step for step, _ in scalars["train/S3/nc4"]] == [0, 1, 2]
    assert not tracker.loggers  # closed when fit ended


def test_analyze_checkpoints_logs_each_checkpoint_at_its_epoch(tmp_path):
    pytest.importorskip("tensorboard")
    from hypbias.integrations.checkpoints import analyze_checkpoints

    trained = _train(tmp_path / "trained", train={"save_every": 1})
    config_file = tmp_path / "experiment.yaml"
    config_file.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "series"
    analyze_checkpoints(str(tmp_path / "trained" / "run" / "checkpoints" / "epoch_*.pt"), "mlp",
                        config=config_file, overrides=["log.tensorboard=true", "log.console=never"],
                        out=out, report=False)
    scalars = _scalars(out / "tensorboard")
    _same(scalars["val/H/accuracy"], [(row["epoch"], row["acc_val"]) for row in trained.log])
    assert pd.read_csv(out / "log.csv").epoch.tolist() == [0, 1, 2, 3]


def test_hypbias_run_prints_one_line_per_epoch_unless_asked_not_to(tmp_path, capsys):
    from hypbias.cli import main

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], "epochs": 2}}))
    assert main(["run", str(config), "--out", str(tmp_path / "a"), "--no-report"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    log = pd.read_csv(tmp_path / "a" / "log.csv")
    assert [line.split()[1] for line in lines] == ["0/2", "1/2", "2/2"]
    assert f"acc val {log.acc_val.iloc[-1]:.2f}% train {log.acc_train.iloc[-1]:.2f}%" in lines[-1]
    assert main(["run", str(config), "--out", str(tmp_path / "b"), "--no-report",
                 "--no-progress"]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]


# ---------------------------------------------------------------- W&B and MLflow, when installed


def test_wandb_offline_run_holds_the_last_values_and_a_resume_continues_it(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    rows = [metric_row(1, "val", "S2", "accuracy", 55.0)]
    row = {"epoch": 1, "loss": 0.7, "acc_val": 40.0, "seconds": 1.0}
    first = loggers.WandbLog(tmp_path, "hypbias-test", {"train": {"lr": 0.1}}, resume=False)
    first.log_epoch(EpochRecord(1, row, rows, [row]))
    assert first.run.summary["val/S2/accuracy"] == 55.0 and first.run.summary["log/loss"] == 0.7
    assert dict(first.run.config)["train"] == {"lr": 0.1}
    run_id = first.run.id
    first.close()
    again = loggers.WandbLog(tmp_path, "hypbias-test", {}, resume=True)
    assert again.run.id == run_id
    again.close()


def test_mlflow_run_holds_every_scalar_per_epoch_and_the_config(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = _train(tmp_path, log={"mlflow": True}, train={"epochs": 2})
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'run' / 'mlruns' / 'mlflow.db'}")
    run_id = (tmp_path / "run" / "mlruns" / "hypbias-run-id").read_text()
    history = client.get_metric_history(run_id, "val/H/accuracy")
    _same([(m.step, m.value) for m in history], [(row["epoch"], row["acc_val"]) for row in result.log])
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["train.lr"] == "0.05"
