"""The embedded default end to end: run directory contents and the paper's qualitative results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hypbias.metrics import label_space_accuracy

pytestmark = pytest.mark.slow


def test_run_directory_contents(default_run):
    run = default_run
    for name in ("config.yaml", "environment.json", "hierarchy.json", "spaces.npz", "spaces.json",
                 "confusion.npz", "metrics.csv", "metrics.parquet", "summary.json", "model.pt",
                 "log.csv", "report.html", "figures/relative_accuracy.png", "figures/convergence.png",
                 "figures/relative_gain.png", "figures/theoretical_accuracy.png",
                 "figures/residual_error.png"):
        assert run.file(name).exists(), name
    conf = run.confusion()
    epochs = run.config["train"]["epochs"]
    assert set(conf) == {"val", "train"}
    assert conf["val"].shape == (epochs + 1, 100, 100)
    assert (conf["val"].sum(axis=(1, 2)) == 3000).all()
    csv = pd.read_csv(run.file("metrics.csv"))
    assert list(csv.columns) == ["epoch", "split", "space", "metric", "value", "layer"]
    spaces = set(csv.space)
    assert {"H", "S4", "R4", "R4#0", "R4#9", "S20", "R20"} <= spaces
    assert {"accuracy", "relative_accuracy", "relative_gain", "residual_relative_error",
            "theoretical_accuracy"} <= set(csv.metric)
    env = json.loads(run.file("environment.json").read_text())
    assert env["versions"]["torch"] and "seed" in run.config


def test_metrics_agree_with_confusion_matrices(default_run):
    run = default_run
    conf = run.confusion()["val"]
    arrays = run.space_arrays()
    m = run.metrics
    from hypbias import LabelSpace

    for name in ("S4", "R4#3", "S20"):
        got = m[(m.space == name) & (m.metric == "accuracy") & (m.split == "val")].sort_values("epoch")
        np.testing.assert_allclose(got.value, label_space_accuracy(conf, LabelSpace(arrays[name])))


def test_hypernyms_converge_before_random_spaces(default_run):
    tau = default_run.summary["tau"]["val"]
    assert tau["S4"] < tau["R4"]
    assert tau["S20"] < tau["R20"]
    assert tau["S4"] <= tau["H"]
    stated = f"is {tau['S4']:g} in S4 against {tau['R4']:.1f} ± "
    assert default_run.summary["findings"][0].startswith("This run ")
    assert stated in default_run.summary["findings"][0]
    assert stated in default_run.file("report.html").read_text()


def test_random_space_accuracy_follows_eq22(default_run):
    m = default_run.metrics
    sel = m[(m.split == "val") & (m.space.str.startswith("R4#"))]
    wide = sel.pivot_table(index=["epoch", "space"], columns="metric", values="value")
    late = wide[wide.index.get_level_values("epoch") >= 3]
    gap = (late["accuracy"] - late["theoretical_accuracy"]).groupby("epoch").mean()
    assert gap.abs().max() < 2.0  # percentage points, mean over draws


def test_relative_gain_of_random_space_matches_fine_space(default_run):
    """Paper §4.2: a random space's relative gain tracks the fine space's."""
    m = default_run.metrics
    sel = m[(m.split == "val") & (m.metric == "relative_gain")]
    wide = sel.pivot(index="epoch", columns="space", values="value")
    diff = (wide["R4"] - wide["H"]).abs()
    assert diff.max() < 0.05
    assert (wide["S4"] - wide["H"]).abs().max() > 0.15  # the hypernym space does not


def test_rerun_is_identical(tmp_path):
    from hypbias.experiment import run_experiment
    from hypbias.train.config import load_config

    config = load_config(None, ["train.epochs=3", "spaces.random_draws=2", "data.train_per_class=40"])
    first = run_experiment(config, tmp_path / "first", progress=False, report=False)
    again = run_experiment(config, tmp_path / "again", progress=False, report=False)
    for split, stack in first.confusion().items():
        np.testing.assert_array_equal(again.confusion()[split], stack)
    pd.testing.assert_frame_equal(first.metrics, again.metrics)


def test_config_yaml_reads_back_to_the_run_config(default_run):
    from hypbias.experiment import open_run
    from hypbias.train.config import fingerprint, load_config

    _, config = open_run(default_run.path)
    assert config.as_dict() == load_config(None).as_dict()
    assert fingerprint(config) == fingerprint(load_config(None))
