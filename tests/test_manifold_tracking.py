"""Manifold analysis in a run and after the fact: tracked rows equal `hypbias analyze` rows."""

from __future__ import annotations

import pandas as pd
import pytest

from hypbias.cli import main
from hypbias.data import make_synthetic
from hypbias.errors import ConfigError
from hypbias.experiment import run_experiment
from hypbias.labelspace import SpaceSet
from hypbias.rundir import RunDir
from hypbias.train.components import ComponentContext
from hypbias.train.components.manifold import measured_epochs
from hypbias.train.config import load_config

pytestmark = pytest.mark.slow

OVERRIDES = ["train.epochs=3", "data.train_per_class=12", "data.val_per_class=12", "spaces.random_draws=1",
             "spaces.hypernyms=[4]", "nc.every=0", "manifold.every=[0, 2]", "manifold.k=3",
             "manifold.space=raw", "manifold.probe_method=ridge", "manifold.probe_k=4",
             "model.hidden=[32, 16]", "train.save_every=1"]
MANIFOLD = ["ccc_cover", "ccc_class_means", "ccc_direct", "self_cover", "mutual_cover", "probe_accuracy"]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    config = load_config(None, OVERRIDES)
    return run_experiment(config, tmp_path_factory.mktemp("mf"), progress=False, report=True)


def _manifold_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    rows = metrics[metrics.metric.isin(MANIFOLD)]
    return rows.sort_values(["epoch", "layer", "space", "metric"]).reset_index(drop=True)


def test_rows_per_layer_and_measured_epoch(tracked):
    rows = _manifold_rows(tracked.metrics)
    assert set(rows.epoch) == {0, 2}
    assert set(rows.layer) == {"body.act1", "body.act2", "head"}
    assert set(rows.metric) == set(MANIFOLD)
    probes = rows[rows.metric == "probe_accuracy"]
    assert set(probes.space) == {"H", "S4"}
    assert (probes.value.between(0, 100)).all()
    ccc = rows[rows.metric.str.startswith("ccc")].value
    assert ccc.between(-1, 1).all()


def test_analyze_reproduces_tracked_rows(tracked, tmp_path, capsys):
    before = _manifold_rows(tracked.metrics)
    assert main(["analyze", str(tracked.path), "--no-progress", "--no-report"]) == 0
    after = RunDir(tracked.path).metrics
    redone = _manifold_rows(after)
    # checkpoints exist for every epoch: the tracked epochs come back with the same values
    again = redone[redone.epoch.isin([0, 2])].reset_index(drop=True)
    pd.testing.assert_frame_equal(before, again, check_exact=False, rtol=1e-5)
    assert set(redone.epoch) == {0, 1, 2, 3}
    # the other rows survive, the accuracy metrics are re-derived once
    assert (after.metric == "accuracy").sum() == (tracked.metrics.metric == "accuracy").sum()
    assert RunDir(tracked.path).file("analysis.json").exists()
    assert "Cophenetic correlation" in capsys.readouterr().out


def test_report_has_manifold_section(tracked):
    html = tracked.file("report.html").read_text()
    assert "Layer-wise alignment of the feature manifold with the hierarchy" in html
    assert tracked.file("figures/manifold_ccc.png").exists()


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
    assert recorded["space"] == "raw"
