"""A loop of one's own: Tracker.bind on any module, Tracker.evaluate, from_hierarchy and save.

Values are checked against plain NumPy from the model's own outputs (the features recomputed by
running the layers before the head by hand), the example of the README is executed, and the run
directory it writes is read by ``hypbias report``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hypbias as hb
from collapse_reference import reference_collapse
from hypbias.cli import main as cli_main
from hypbias.errors import ConfigError
from hypbias.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
NC_METRICS = {"nc1", "nc2_equinorm_means", "nc2_equinorm_weights", "nc2_equiangular_means",
              "nc2_equiangular_weights", "nc2_maxangle_means", "nc2_maxangle_weights", "nc3", "nc4"}


def _hierarchy() -> hb.Hierarchy:
    return hb.Hierarchy.from_nested({f"g{g}": [f"c{g}{k}" for k in range(3)] for g in range(3)})


def _data(n_per_class: int = 12, seed: int = 0) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(9).repeat_interleave(n_per_class)
    means = torch.randn(9, 6, generator=torch.Generator().manual_seed(1))
    return TensorDataset(means[y] + 0.7 * torch.randn(len(y), 6, generator=gen), y)


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 9))


def _train(model: nn.Module, data: TensorDataset, steps: int = 30) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = data.tensors
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def _tracker(**kw) -> hb.Tracker:
    options = {"hypernyms": [3], "random_draws": 2, "nc": True, **kw}
    return hb.Tracker.from_hierarchy(_hierarchy(), ("val", "train"), **options)


def _track_two_epochs(tracker, model, train, val, batch_size):
    tracker.bind(model)
    for epoch in range(2):
        if epoch:
            _train(model, train)
        tracker.evaluate(model, DataLoader(val, batch_size=batch_size), split="val")
        tracker.evaluate(model, DataLoader(train, batch_size=batch_size), split="train")
        tracker.end_epoch(epoch, log={"loss": float(epoch)})
    return tracker


def _rows(tracker, epoch, split, space):
    return {r["metric"]: r["value"] for r in tracker.rows
            if (r["epoch"], r["split"], r["space"]) == (epoch, split, space)}


def test_evaluate_equals_plain_numpy_on_the_models_own_outputs():
    train, val = _data(seed=0), _data(seed=1)
    model = _model()
    tracker = _track_two_epochs(_tracker(), model, train, val, batch_size=16)
    x, y = train.tensors
    with torch.no_grad():
        feats = model[1](model[0](x)).double().numpy()
        preds = model(val.tensors[0]).argmax(1).numpy()
    expected = np.zeros((9, 9), dtype=np.int64)
    np.add.at(expected, (val.tensors[1].numpy(), preds), 1)
    np.testing.assert_array_equal(tracker.confusion("val")[1], expected)
    w, b = model[2].weight.detach().double().numpy(), model[2].bias.detach().double().numpy()
    for name in ("H", "S3", "R3#1"):
        t = None if name == "H" else tracker.spaces.all()[name].t
        want = reference_collapse(feats, y.numpy(), w, b, t)
        got = _rows(tracker, 1, "train", name)
        assert set(got) >= NC_METRICS
        for metric, value in want.items():
            assert got[metric] == pytest.approx(value, rel=1e-6, abs=1e-9), (name, metric)


def test_evaluate_is_invariant_to_batching():
    train, val = _data(seed=0), _data(seed=1)
    small = _track_two_epochs(_tracker(), _model(), train, val, batch_size=5)
    large = _track_two_epochs(_tracker(), _model(), train, val, batch_size=200)
    for split in ("val", "train"):
        np.testing.assert_array_equal(small.confusion(split), large.confusion(split))
    a = pd.DataFrame(small.rows).set_index(["epoch", "split", "space", "metric"]).value
    b = pd.DataFrame(large.rows).set_index(["epoch", "split", "space", "metric"]).value
    pd.testing.assert_series_equal(a, b, rtol=1e-7, atol=1e-10)


def test_evaluate_restores_the_mode_and_refuses_a_one_shot_iterator():
    train = _data()
    model = _model().train()
    tracker = _tracker()
    tracker.evaluate(model, DataLoader(train, batch_size=50), split="train")
    assert model.training
    batches = iter(DataLoader(train, batch_size=50))
    with pytest.raises(ValueError, match=re.escape(
            "The 'batches' parameter of Tracker.evaluate must be re-iterable (a DataLoader or a "
            "list): neural collapse needs two passes over 'train'. Got an iterator")):
        tracker.evaluate(model, batches, split="train")
    # one pass suffices without neural collapse: a generator is fine
    tracker.evaluate(model, ((x, y) for x, y in DataLoader(train, batch_size=50)), split="val")
    assert tracker.end_epoch(0)["val"] >= 0


class _Output:
    def __init__(self, logits):
        self.logits = logits


class _KeywordNet(nn.Module):
    """Takes keyword inputs and returns an object with a ``logits`` field (as Hugging Face models)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(6, 8)
        self.classifier = nn.Linear(8, 9, bias=False)
        self.unused = nn.Linear(2, 2)  # registered after the classifier

    def forward(self, pixel_values, scale):
        return _Output(self.classifier(torch.relu(self.body(pixel_values)) * scale))


def test_keyword_inputs_logits_fields_named_heads_and_heads_without_bias():
    train = _data()
    model = _KeywordNet()
    tracker = hb.Tracker.from_hierarchy(_hierarchy(), ("train",), hypernyms=[3], random_draws=0)
    tracker.bind(model, head="classifier")
    batches = [({"pixel_values": x, "scale": torch.tensor(2.0)}, y)
               for x, y in DataLoader(train, batch_size=40)]
    tracker.evaluate(model, batches, split="train")
    tracker.end_epoch(0)
    x, y = train.tensors
    with torch.no_grad():
        feats = (torch.relu(model.body(x)) * 2.0).double().numpy()
    w = model.classifier.weight.detach().double().numpy()
    want = reference_collapse(feats, y.numpy(), w, np.zeros(9))
    got = _rows(tracker, 0, "train", "H")
    for metric, value in want.items():
        assert got[metric] == pytest.approx(value, rel=1e-6, abs=1e-9), metric


def test_bind_picks_the_head_or_says_why_not():
    tracker = hb.Tracker(9)
    seq = _model()
    tracker.bind(seq)
    assert tracker._head is seq[2]
    with pytest.raises(ValueError, match=re.escape(
            "The 'head' parameter of Tracker.bind must be an nn.Linear layer. Got '1', a Tanh, "
            "instead.")):
        tracker.bind(seq, head="1")
    with pytest.raises(ValueError, match=re.escape(
            "The 'head' parameter of Tracker.bind must name a module of Sequential (see "
            "model.named_modules()). Got 'fc' instead.")):
        tracker.bind(seq, head="fc")
    with pytest.raises(ValueError, match="Sequential has no nn.Linear layer; pass head="):
        tracker.bind(nn.Sequential(nn.Flatten()))


class _TokenNet(nn.Module):
    """Applies its classifier to every token, then averages the logits."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = nn.Linear(6, 9)

    def forward(self, x):
        return self.classifier(x).mean(dim=1)


def test_a_head_that_is_not_called_or_reads_sequences_is_reported():
    tracker = hb.Tracker.from_hierarchy(_hierarchy(), ("train",), hypernyms=[3], random_draws=0)
    model = _KeywordNet()
    tracker.bind(model, head="unused")
    batch = [({"pixel_values": torch.randn(4, 6), "scale": 1.0}, torch.arange(4))]
    with pytest.raises(ValueError, match="the head 'unused' was not called in the forward pass"):
        tracker.evaluate(model, batch, split="train")
    tracker.bind(_TokenNet())
    with pytest.raises(ValueError, match=re.escape(
            "the input of the head 'classifier' has shape (4, 5, 6); the tracker needs penultimate "
            "features of shape (4, D)")):
        tracker.evaluate(tracker.model, [(torch.randn(4, 5, 6), torch.arange(4))], split="train")


def test_save_writes_a_run_directory_that_the_report_reads(tmp_path):
    train, val = _data(seed=0), _data(seed=1)
    model = _model()
    tracker = _track_two_epochs(_tracker(), model, train, val, batch_size=32)
    run = tracker.save(tmp_path / "run", model=model)
    for name in ("config.yaml", "environment.json", "hierarchy.json", "spaces.npz", "spaces.json",
                 "confusion.npz", "log.csv", "metrics.csv", "summary.json", "nc.npz", "model.pt"):
        assert run.file(name).exists(), name
    assert run.hierarchy.classes == _hierarchy().classes
    assert run.log.epoch.tolist() == [0, 1] and run.log.loss.tolist() == [0.0, 1.0]
    np.testing.assert_array_equal(run.confusion()["val"], tracker.confusion("val"))
    acc = run.metrics[(run.metrics.metric == "accuracy") & (run.metrics.space == "H")
                      & (run.metrics.split == "val")].sort_values("epoch").value.to_numpy()
    np.testing.assert_allclose(acc, [row["acc_val"] for row in tracker.log])
    assert set(run.spaces.hypernyms) == {"S3"}
    assert cli_main(["report", str(run.path)]) == 0
    html = run.file("report.html").read_text()
    assert "Neural collapse" in html and "Hypernym bias" in html


def test_save_without_a_hierarchy_or_an_epoch_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"Tracker.save needs the class hierarchy"):
        hb.Tracker(9).save(tmp_path)
    with pytest.raises(ValueError, match=r"no epoch recorded yet"):
        _tracker().save(tmp_path)


def test_from_hierarchy_takes_the_options_of_a_config():
    tracker = _tracker(nc={"every": 2, "split": "val", "spaces": ["H", "S3"]}, mistakes=False)
    assert [c.name for c in tracker.components] == ["nc"]
    nc = tracker.components[0]
    assert (nc.every, nc.split, list(nc.spaces)) == (2, "val", ["H", "S3"])
    assert tracker.config["nc"] == {"every": 2, "split": "val", "spaces": ["H", "S3"]}
    assert [c.name for c in _tracker(nc=False).components] == ["mistakes"]
    only_val = hb.Tracker.from_hierarchy(_hierarchy(), ("val",), hypernyms=[3], random_draws=0)
    assert only_val.components[0].split == "val"
    with pytest.raises(ConfigError, match=r"^Tracker.from_hierarchy: 'nc.split' .*'test'"):
        _tracker(nc={"split": "test"})
    with pytest.raises(ConfigError, match=r"^Tracker.from_hierarchy: 'nc.split' .*track.splits"):
        hb.Tracker.from_hierarchy(_hierarchy(), ("val",), hypernyms=[3], nc={"split": "train"})
    with pytest.raises(ValueError, match="needs data= .* and epochs="):
        _tracker(manifold={"every": 1, "layers": ["0"]})


def test_the_manifold_analysis_runs_from_datasets(tmp_path):
    train, val = _data(seed=0), _data(seed=1)
    tracker = _tracker(manifold={"every": 1, "layers": ["1"], "k": 3, "space": "raw",
                                 "probe_k": 2}, data={"train": train, "val": val}, epochs=1)
    _track_two_epochs(tracker, _model(), train, val, batch_size=64)
    layers = {r["layer"] for r in tracker.rows if r["metric"] == "ccc_cover"}
    assert layers == {"1"}
    assert {r["epoch"] for r in tracker.rows if r["metric"] == "ccc_cover"} == {0, 1}


@pytest.mark.slow
def test_the_readme_example_runs_and_its_run_holds_nc_in_every_space(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "own_loop.py"), str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-2000:]
    run = RunDir(out)
    nc = run.metrics[run.metrics.metric.str.startswith("nc")]
    assert set(nc.space) == {"H", "S4", "R4", *(f"R4#{k}" for k in range(5))}
    for space, frame in nc.groupby("space"):
        assert set(frame.metric) == NC_METRICS, space
        assert sorted(frame.epoch.unique()) == list(range(11)), space
    assert run.file("report.html").exists()
    readme = (ROOT / "README.md").read_text()
    assert (ROOT / "examples" / "own_loop.py").read_text().strip() in readme
