"""Manifold analysis in a run and after the fact: tracked rows and pictures equal those of
`hypbias analyze`; pictures survive a resumed run; the section's keys are checked before a run."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hypbias import Hierarchy, Tracker
from hypbias.analysis.metric_names import split_metric
from hypbias.analysis.umap_pictures import read_pictures
from hypbias.cli import main
from hypbias.data import make_synthetic
from hypbias.errors import ConfigError
from hypbias.experiment import run_experiment
from hypbias.experiment.analyze import analyzed_metric
from hypbias.labelspace import SpaceSet
from hypbias.rundir import RunDir
from hypbias.train.components import ComponentContext
from hypbias.train.components.manifold import measured_epochs
from hypbias.train.config import load_config

pytestmark = pytest.mark.slow

OVERRIDES = ["train.epochs=3", "data.train_per_class=12", "data.val_per_class=12", "spaces.random_draws=1",
             "spaces.hypernyms=[4]", "nc.every=0", "manifold.every=[0, 2]", "manifold.k=3",
             "manifold.space=both", "manifold.n_epochs=20", "manifold.probe_method=ridge",
             "manifold.probe_k=4", "manifold.probe_train_spaces=all", "model.hidden=[32, 16]",
             "train.save_every=1"]
MANIFOLD = ["ccc_cover", "ccc_class_means", "ccc_direct", "self_cover", "mutual_cover", "probe_accuracy"]
QUIET = ["--no-progress", "--no-report"]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    config = load_config(None, OVERRIDES)
    return run_experiment(config, tmp_path_factory.mktemp("mf"), progress=False, report=True)


@pytest.fixture(scope="module")
def tracked_arrays(tracked):
    """``manifold.npz`` as the run wrote it (``hypbias analyze`` rewrites it)."""
    with np.load(tracked.file("manifold.npz")) as data:
        return {k: data[k] for k in data.files}


def _manifold_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The manifold rows, parameterised ones (``@space=raw``, ``@trained=S4``) included."""
    rows = metrics[metrics.metric.map(lambda m: split_metric(m)[0] in MANIFOLD)]
    return rows.sort_values(["epoch", "layer", "space", "metric"]).reset_index(drop=True)


def test_rows_per_layer_and_measured_epoch(tracked):
    rows = _manifold_rows(tracked.metrics)
    assert set(rows.epoch) == {0, 2}
    assert set(rows.layer) == {"body.act1", "body.act2", "head"}
    assert set(rows.metric) == {*MANIFOLD, *(f"{m}@space=raw" for m in MANIFOLD[:-1]),
                                "probe_accuracy@trained=S4"}
    probes = rows[rows.metric == "probe_accuracy"]
    assert set(probes.space) == {"H", "S4"}
    assert (probes.value.between(0, 100)).all()
    assert set(rows[rows.metric == "probe_accuracy@trained=S4"].space) == {"S4"}
    ccc = rows[rows.metric.str.startswith("ccc")].value
    assert ccc.between(-1, 1).all()


def test_pictures_of_the_top_layer_below_the_head_at_each_measured_epoch(tracked, tracked_arrays):
    found = read_pictures(tracked_arrays)
    assert list(found) == ["body.act2"]  # the penultimate features, not the head's logits
    assert list(found["body.act2"]) == [0, 2]
    c = tracked.hierarchy.num_classes
    for pic in found["body.act2"].values():  # every query and support example, 3 + 3 a class
        np.testing.assert_array_equal(np.sort(pic.labels), np.repeat(np.arange(c), 6))
        assert pic.points.shape == (6 * c, 2) and np.isfinite(pic.points).all()
        assert pic.centres.shape == (c, 2) and np.isfinite(pic.centres).all()


def test_analyze_reproduces_tracked_rows_and_pictures(tracked, tracked_arrays, capsys):
    before = _manifold_rows(tracked.metrics)
    assert main(["analyze", str(tracked.path), *QUIET, "--probe-types", "5"]) == 0
    after = RunDir(tracked.path).metrics
    redone = _manifold_rows(after)
    types = redone.metric.str.contains("@probe=")
    # checkpoints exist for every epoch: the tracked epochs come back with the same values, once
    again = redone[redone.epoch.isin([0, 2]) & ~types].reset_index(drop=True)
    pd.testing.assert_frame_equal(before, again, check_exact=False, rtol=1e-5)
    assert set(redone.epoch) == {0, 1, 2, 3}
    # Fig. 14's probes on the last checkpoint, in every space
    kinds = redone[types]
    assert set(kinds.epoch) == {3} and set(kinds.space) == {"H", "S4"}
    assert set(kinds.metric) == {f"probe_accuracy@probe={k}" for k in
                                 ("fewshot-ridge", "fewshot-logistic", "trained")}
    assert kinds.value.between(0, 100).all()
    # the other rows survive, the accuracy metrics are re-derived once
    assert (after.metric == "accuracy").sum() == (tracked.metrics.metric == "accuracy").sum()
    assert RunDir(tracked.path).file("analysis.json").exists()
    assert "claim that the feature manifold aligns with the hierarchy" in capsys.readouterr().out
    with np.load(tracked.file("manifold.npz")) as data:
        pictures = read_pictures({k: data[k] for k in data.files})
    assert list(pictures["body.act2"]) == [0, 1, 2, 3]
    for epoch, pic in read_pictures(tracked_arrays)["body.act2"].items():
        np.testing.assert_array_equal(pictures["body.act2"][epoch].labels, pic.labels)
        np.testing.assert_allclose(pictures["body.act2"][epoch].points, pic.points, atol=1e-4)


@pytest.mark.parametrize(("name", "probe_types", "replaced"), [
    ("ccc_cover", False, True), ("self_cover@space=raw", False, True),
    ("probe_accuracy@trained=S4", False, True), ("probe_accuracy@probe=trained", False, False),
    ("probe_accuracy@probe=trained", True, True), ("accuracy", True, False),
    ("blur_accuracy@sigma=2", True, False), ("nc1", False, False)])
def test_analyze_replaces_the_manifold_rows_and_fig14_rows_only_when_measured(name, probe_types,
                                                                              replaced):
    assert analyzed_metric(name, probe_types) is replaced


def test_a_resumed_run_keeps_the_pictures_of_its_checkpoints(tracked, tracked_arrays, tmp_path):
    killed = tmp_path / "killed"
    killed.mkdir()
    shutil.copy(tracked.file("config.yaml"), killed / "config.yaml")
    (killed / "checkpoints").mkdir()
    for epoch in (0, 1, 2):  # killed during epoch 3: the pictures of 0 and 2 are in the checkpoint
        shutil.copy(tracked.checkpoints / f"epoch_{epoch:03d}.pt", killed / "checkpoints")
    assert main(["run", "--resume", str(killed), *QUIET]) == 0
    with np.load(killed / "manifold.npz") as data:
        resumed = {k: data[k] for k in data.files}
    assert sorted(resumed) == sorted(tracked_arrays)
    for key, value in tracked_arrays.items():
        np.testing.assert_array_equal(resumed[key], value)


def test_report_has_manifold_and_picture_sections(tracked):
    html = tracked.file("report.html").read_text()
    assert "Layer-wise alignment of the feature manifold with the hierarchy" in html
    assert "The feature manifold in pictures" in html
    assert "Table 7: accuracy in S4" in html
    assert tracked.file("figures/manifold_ccc.png").exists()
    assert tracked.file("figures/umap_body.act2.png").exists()
    assert tracked.file("figures/manifold_cover_spaces.png").exists()  # Fig. 2a next to 2b


def test_analyze_without_checkpoints_is_one_line_error(tmp_path, capsys):
    config = load_config(None, [*OVERRIDES[:-1], "manifold.every=0"])
    run_experiment(config, tmp_path, progress=False, report=False)
    assert main(["analyze", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no epoch_XXX.pt checkpoints to analyse" in err
    assert "\n" not in err


@pytest.mark.parametrize(("every", "expected"),
                         [(0, set()), (2, {0, 2, 4, 5}), ([0, 3], {0, 3}), ([0, 1, 9], {0, 1})])
def test_measured_epochs(every, expected):
    assert measured_epochs(every, 5, _context()) == expected


def test_bad_measured_epochs():
    with pytest.raises(ConfigError, match=r"'manifold.every' must be an int >= 0 or a list of epochs"):
        measured_epochs([0, -1], 5, _context())


def _context() -> ComponentContext:
    return ComponentContext(make_synthetic(branching=(2, 2), train_per_class=2, val_per_class=2),
                            SpaceSet(), ("val",), seed=0, epochs=5)


def test_umap_and_layer_settings_are_recorded(tracked):
    import json

    env = json.loads(tracked.file("environment.json").read_text())
    recorded = env["components"]["manifold"]
    assert recorded["layers"] == ["body.act1", "body.act2", "head"]
    assert recorded["seed"] == 0
    assert recorded["umap_n_jobs"] == 1
    assert recorded["space"] == "both"
    assert recorded["probe_train_spaces"] == "all" and recorded["token"] is None
    assert recorded["pictures"] == ["body.act2"] and recorded["anchor"] == 0
    assert recorded["picture_points"] == 5000


TINY = ["train.epochs=1", "data.train_per_class=4", "data.val_per_class=4", "spaces.random_draws=1",
        "spaces.hypernyms=[4]", "nc.every=0", "manifold.every=1", "manifold.k=1",
        "manifold.probes=false", "model.hidden=[8]"]


@pytest.mark.parametrize(("setting", "message"), [
    ("manifold.pictures=[body.act9]", "'manifold.pictures' names 'body.act9', which is not a module "
                                      "of the model (close matches: body.act1"),
    ("manifold.layers=[body.linear1]", "'manifold.layers' names 'body.linear1', which is not a "
                                       "module of the model (close matches:"),
    ("manifold.probe_train_spaces=[S9]", "'manifold.probe_train_spaces' names 'S9', which is not a "
                                         "space of this run (spaces: H, S4)"),
    ("manifold.probe_train_spaces=some", "'manifold.probe_train_spaces' must be 'H', 'all' or a "
                                         "non-empty list of space names. Got 'some' instead."),
    ("manifold.anchor=zebra", "manifold.anchor: 'zebra' is neither a class name nor an index in "
                              "0..99"),
    ("manifold.anchor=100", "manifold.anchor: 100 is neither a class name nor an index in 0..99"),
    ("manifold.token=first", "'manifold.token' must be one of 'cls', 'mean' or null. Got 'first' "
                             "instead."),
    ("manifold.picture_points=0", "'manifold.picture_points' must be an int >= 1. Got 0 instead."),
])
def test_bad_manifold_settings_are_refused_before_anything_is_written(setting, message, tmp_path,
                                                                      capsys):
    out = tmp_path / "run"
    sets = [arg for item in [*TINY, setting] for arg in ("--set", item)]
    assert main(["run", "--out", str(out), *QUIET, *sets]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(f"hypbias run: error: --set {setting}: ")
    assert message in err
    assert not out.exists()


def test_pictures_follow_the_anchor_and_layers_given(tmp_path):
    sets = [*TINY, "manifold.pictures=[body.act1, head]", "manifold.anchor=c1.2.3",
            "manifold.picture_points=40"]
    run = run_experiment(load_config(None, sets), tmp_path, progress=False, report=True)
    with np.load(run.file("manifold.npz")) as data:
        found = read_pictures({k: data[k] for k in data.files})
    assert list(found) == ["body.act1", "head"] and all(list(e) == [0, 1] for e in found.values())
    anchor = run.hierarchy.classes.index("c1.2.3")
    for pic in (p for by_epoch in found.values() for p in by_epoch.values()):
        assert len(pic.labels) == 40 and anchor in pic.labels  # 40 of the 100 classes, one each
    assert "colour" in run.file("report.html").read_text() and "c1.2.3" in run.file(
        "report.html").read_text()
    with pytest.raises(ConfigError, match="'manifold.pictures' names 'nope'"):
        run_experiment(load_config(None, [*TINY, "manifold.pictures=[nope]"]), tmp_path / "x",
                       progress=False, report=False)


class TokenNet(nn.Module):
    """A sequence model: ``tokens`` outputs (N, 4, 6) token states, the head reads token 0."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.tokens = nn.Sequential(nn.Linear(8, 24), nn.Unflatten(1, (4, 6)))
        self.head = nn.Linear(6, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(x)[:, 0])


def test_token_cls_measures_the_class_token_of_sequence_outputs():
    """``manifold.token: cls`` reads token 0 of a (N, T, D) layer: the class-mean CCC equals the one
    of the class tokens computed by hand (NumPy means, distances and Pearson's r)."""
    hierarchy = Hierarchy.from_nested({"a": ["a0", "a1", "a2"], "b": ["b0", "b1", "b2"]})
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(6).repeat_interleave(10)
    data = {split: TensorDataset(torch.randn(60, 8, generator=gen) + y[:, None] % 3, y)
            for split in ("train", "val")}
    torch.manual_seed(0)
    model = TokenNet(6)
    tracker = Tracker.from_hierarchy(
        hierarchy, ("val",), hypernyms=[2], random_draws=1, nc=False, mistakes=False, epochs=0,
        data=data, manifold={"every": 1, "layers": ["tokens"], "token": "cls", "k": 3,
                             "space": "raw", "probes": False, "n_epochs": 20})
    tracker.bind(model)
    tracker.evaluate(model, DataLoader(data["val"], batch_size=16), split="val")
    tracker.end_epoch(0)
    got = {r["metric"]: r["value"] for r in tracker.rows if r["layer"] == "tokens"}
    arrays = next(c for c in tracker.components if c.name == "manifold").artifacts()
    idx = np.concatenate([arrays["query"], arrays["support"]])
    with torch.no_grad():
        cls = model.tokens(data["train"].tensors[0][idx])[:, 0].double().numpy()
    labels = y.numpy()[idx]
    means = np.stack([cls[labels == c].mean(axis=0) for c in range(6)])
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    upper = np.triu_indices(6, k=1)
    expected = np.corrcoef(dist[upper], hierarchy.graph_distance_matrix()[upper])[0, 1]
    assert got["ccc_class_means"] == pytest.approx(expected, abs=1e-6)
    assert "umap2d:tokens:0:points" in arrays  # the top layer below the head is pictured


def test_analyze_checkpoints_labels_the_pictures_of_each_checkpoint_with_its_epoch(
        tracked, tracked_arrays, tmp_path):
    """A series of checkpoints measured by ``hypbias analyze-checkpoints`` (each as epoch 0 of a
    fresh tracker) keeps every checkpoint's picture under the epoch the checkpoint stands for."""
    out = tmp_path / "series"
    sets = [arg for item in OVERRIDES for arg in ("--set", item)]
    assert main(["analyze-checkpoints", "--model", "mlp", "--checkpoints",
                 str(tracked.checkpoints / "*.pt"), "--out", str(out), *QUIET, *sets]) == 0
    with np.load(out / "manifold.npz") as data:
        series = read_pictures({k: data[k] for k in data.files})["body.act2"]
    assert list(series) == [0, 1, 2, 3]
    for epoch, pic in read_pictures(tracked_arrays)["body.act2"].items():
        np.testing.assert_array_equal(series[epoch].labels, pic.labels)
        np.testing.assert_allclose(series[epoch].points, pic.points, atol=1e-4)


def test_covers_and_pictures_read_one_pass_over_the_sample():
    """A measured epoch runs the model once over the query and support examples, for the analysed
    layers and the pictured ones together (here a layer that is only pictured)."""
    hierarchy = Hierarchy.from_nested({"a": ["a0", "a1", "a2"], "b": ["b0", "b1", "b2"]})
    y = torch.arange(6).repeat_interleave(10)
    data = {split: TensorDataset(torch.randn(60, 8, generator=torch.Generator().manual_seed(1)), y)
            for split in ("train", "val")}
    torch.manual_seed(0)
    model = TokenNet(6)
    tracker = Tracker.from_hierarchy(
        hierarchy, ("val",), hypernyms=[2], random_draws=1, nc=False, mistakes=False, epochs=0,
        data=data, manifold={"every": 1, "layers": ["tokens"], "pictures": ["head"], "k": 3,
                             "token": "cls", "space": "raw", "probes": False, "n_epochs": 20})
    tracker.bind(model)
    tracker.evaluate(model, DataLoader(data["val"], batch_size=16), split="val")
    inputs = []
    handle = model.register_forward_pre_hook(lambda module, args: inputs.append(len(args[0])))
    tracker.end_epoch(0)
    handle.remove()
    assert inputs == [36]  # 3 query + 3 support examples of each of the 6 classes, one batch
    assert {r["layer"] for r in tracker.rows if r["metric"] == "ccc_cover"} == {"tokens"}
    arrays = next(c for c in tracker.components if c.name == "manifold").artifacts()
    assert "umap2d:head:0:points" in arrays and "umap2d:tokens:0:points" not in arrays
