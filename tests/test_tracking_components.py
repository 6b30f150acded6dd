"""Tracker components in a real run: neural collapse and mistake severity equal direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from collapse_reference import reference_collapse
from hypbias.errors import ConfigError
from hypbias.experiment import run_experiment
from hypbias.models import create
from hypbias.train.config import load_config
from hypbias.train.loop import build_bundle

OVERRIDES = ["train.epochs=2", "data.train_per_class=20", "data.val_per_class=10", "spaces.random_draws=2",
             "spaces.hypernyms=[4, 20]", "track.splits=[val, train]", "nc.every=1", "model.hidden=[64, 32]"]


@pytest.fixture(scope="module")
def nc_run(tmp_path_factory):
    config = load_config(None, OVERRIDES)
    return run_experiment(config, tmp_path_factory.mktemp("nc"), progress=False, report=True)


def _final_outputs(run):
    config = run.config
    bundle = build_bundle(config)
    model = create("mlp", bundle.num_classes, in_features=64, hidden=config["model"]["hidden"])
    model.load_state_dict(torch.load(run.file("model.pt")))
    model.eval()
    with torch.no_grad():
        logits, feats = model.forward_with_features(bundle.train.x)
        val_logits = model(bundle.val.x)
    return model, bundle, logits, feats, val_logits


def test_collapse_rows_equal_direct_numpy_computation(nc_run):
    model, bundle, _, feats, _ = _final_outputs(nc_run)
    spaces = nc_run.spaces.all()
    m = nc_run.metrics
    last = m[(m.epoch == 2) & (m.split == "train")]
    w = model.head.weight.detach().double().numpy()
    b = model.head.bias.detach().double().numpy()
    h = feats.double().numpy()
    y = bundle.train.labels()
    for name, t in (("H", None), ("S4", spaces["S4"].t), ("R20#1", spaces["R20#1"].t)):
        expected = reference_collapse(h, y, w, b, t)
        got = last[last.space == name].set_index("metric").value
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), (name, key)


def numpy_mistake_metrics(logits: np.ndarray, y: np.ndarray, hierarchy, ks) -> dict[str, float]:
    """Mistake severity and hier_dist@k with d = H − depth(LCA), from root paths, sample by sample."""
    paths = [[*reversed(hierarchy.ancestors(c)), name] for c, name in enumerate(hierarchy.classes)]
    height = max(len(p) for p in paths) - 1

    def distance(i: int, j: int) -> int:
        if i == j:
            return 0
        shared = next(k for k, (a, b) in enumerate(zip(paths[i], paths[j], strict=False)) if a != b)
        return height - (shared - 1)

    ranked = np.argsort(-logits, axis=1, kind="stable")
    d = np.array([[distance(t, c) for c in row[:max(ks)]] for t, row in zip(y, ranked, strict=True)])
    wrong = ranked[:, 0] != y
    return {"mistake_severity": float(d[wrong, 0].mean()),
            **{f"hier_dist@{k}": float(d[:, :k].mean()) for k in ks}}


def test_mistake_severity_rows_equal_direct_computation(nc_run):
    _, bundle, _, _, val_logits = _final_outputs(nc_run)
    m = nc_run.metrics
    last = m[(m.epoch == 2) & (m.split == "val") & (m.space == "H")].set_index("metric").value
    expected = numpy_mistake_metrics(val_logits.double().numpy(), np.asarray(bundle.val.y),
                                     bundle.hierarchy, (1, 5, 20))
    for metric, value in expected.items():
        assert last[metric] == pytest.approx(value, rel=1e-9), metric


def test_collapse_section_in_report(nc_run):
    html = nc_run.file("report.html").read_text()
    assert "Neural collapse in hyponym, hypernym and random label spaces" in html
    assert "claim that neural collapse shows earlier in hypernym label spaces than in H" in html
    assert nc_run.file("figures/collapse.png").exists()


def test_collapse_is_measured_every_k_epochs(tmp_path):
    config = load_config(None, [*OVERRIDES, "nc.every=2", "train.epochs=3", "nc.spaces=[H, S4]"])
    run = run_experiment(config, tmp_path, progress=False, report=False)
    nc = run.metrics[run.metrics.metric == "nc1"]
    assert sorted(nc.epoch.unique()) == [0, 2]
    assert set(nc.space) == {"H", "S4"}
    assert np.isfinite(nc.value).all()


@pytest.mark.parametrize(("override", "message"), [
    ("nc.split=test", "'nc.split' must be one of 'train', 'val'. Got 'test' instead."),
    ("track.splits=[val]", "'nc.split' = 'train' must be one of track.splits"),
    ("nc.spaces=[S7]", "'nc.spaces' must be 'all' or a list of space names among H, S4"),
    ("nc.every=-1", "'nc.every' must be an int >= 0. Got -1 instead."),
])
def test_bad_nc_sections(override, message, tmp_path):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        run_experiment(load_config(None, [*OVERRIDES, override]), tmp_path, progress=False,
                       report=False)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_final_class_statistics_are_saved_and_give_the_same_collapse(nc_run):
    from hypbias.metrics import ClassStatistics, neural_collapse

    model, bundle, _, feats, _ = _final_outputs(nc_run)
    with np.load(nc_run.file("nc.npz")) as data:
        saved = {k: data[k] for k in data.files}
    assert int(saved["epoch"]) == 2
    h, y = feats.double().numpy(), bundle.train.labels()
    c = bundle.num_classes
    means = np.stack([h[y == k].mean(axis=0) for k in range(c)])
    centred = h - means[y]
    np.testing.assert_array_equal(saved["counts"], np.bincount(y, minlength=c))
    np.testing.assert_allclose(saved["means"], means, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(saved["scatter"], centred.T @ centred, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(saved["weight"], model.head.weight.detach().numpy())
    np.testing.assert_array_equal(saved["bias"], model.head.bias.detach().numpy())
    stats = ClassStatistics(c, h.shape[1])
    stats.load_state_dict({k: saved[k] for k in ("counts", "means", "scatter")})
    space = nc_run.spaces.hypernyms["S4"]
    again = neural_collapse(stats, saved["weight"], saved["bias"], space)
    w, b = saved["weight"].astype(np.float64), saved["bias"].astype(np.float64)
    expected = reference_collapse(h, y, w, b, space.t)
    for key, value in again.items():
        assert value == pytest.approx(expected[key], rel=1e-5, abs=1e-9), key


def test_random_draw_means_are_written(nc_run):
    m = nc_run.metrics
    nc1 = m[(m.metric == "nc1") & (m.split == "train")]
    draws = nc1[nc1.space.str.startswith("R4#")].groupby("epoch").value.mean()
    mean = nc1[nc1.space == "R4"].set_index("epoch").value
    np.testing.assert_allclose(mean.sort_index(), draws.sort_index())


@pytest.mark.parametrize("lca", ["depth", "height"])
def test_mistakes_section_chooses_the_lca_convention(small_tree, lca):
    """On an unbalanced tree the conventions differ; the rows follow ``mistakes.lca``."""
    from hypbias.labelspace import SpaceSet
    from hypbias.metrics import mistake_severity
    from hypbias.train.components import ComponentContext
    from hypbias.train.components.mistakes import MistakesSection, build_mistakes_tracker

    ctx = ComponentContext(None, SpaceSet(), ("val",), 0, 1, hierarchy=small_tree,
                           num_classes=small_tree.num_classes)
    tracker = build_mistakes_tracker(MistakesSection(lca=lca), ctx)
    logits = torch.tensor(np.random.default_rng(0).normal(size=(40, 6)))
    y = torch.arange(40) % 6
    tracker.update("val", logits, y, None)
    rows = {r["metric"]: r["value"] for r in tracker.end_epoch(0, None)}
    assert tracker.settings() == {"lca": lca}
    assert rows["mistake_severity"] == pytest.approx(mistake_severity(logits, y, small_tree, lca=lca))
    other = "height" if lca == "depth" else "depth"
    assert rows["mistake_severity"] != pytest.approx(mistake_severity(logits, y, small_tree, lca=other))
