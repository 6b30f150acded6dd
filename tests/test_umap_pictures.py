"""UMAP pictures (Fig. 1b, 12, 13): thinning, class means, the 2-D embeddings, their storage in
manifold.npz, the class-mean agreement with a grouping, and the figure drawn from them."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from torch import nn

from hypbias.analysis.umap_pictures import (
    Picture,
    anchor_distances,
    anchor_index,
    centre_agreement,
    class_means,
    layer_pictures,
    make_picture,
    picture_arrays,
    picture_sample,
    read_pictures,
)
from hypbias.errors import ConfigError
from hypbias.labelspace import LabelSpace
from hypbias.report.figures_umap import DISTANCE_CMAP, plot_umap_pictures


def clustered(rng, groups=3, per_group=4, per_class=12, dim=10):
    """Classes whose means sit around their group's centre: groups far apart, classes nearer."""
    group_centres = rng.normal(size=(groups, dim)) * 30
    t = np.repeat(np.arange(groups), per_group)
    class_centres = group_centres[t] + rng.normal(size=(len(t), dim)) * 4
    y = np.repeat(np.arange(len(t)), per_class)
    return class_centres[y] + rng.normal(size=(len(y), dim)), y, t


def test_sample_takes_the_same_number_per_class_and_is_seeded(rng):
    y = rng.integers(0, 10, size=400)
    idx = picture_sample(y, 10, max_points=50, seed=3)
    assert np.bincount(y[idx], minlength=10).tolist() == [5] * 10
    np.testing.assert_array_equal(idx, picture_sample(y, 10, max_points=50, seed=3))
    assert not np.array_equal(idx, picture_sample(y, 10, max_points=50, seed=4))
    assert len(np.unique(idx)) == len(idx)
    everything = picture_sample(y, 10, max_points=10_000)
    np.testing.assert_array_equal(everything, np.arange(400))


def test_sample_keeps_the_anchor_when_classes_are_dropped():
    y = np.repeat(np.arange(30), 2)
    for seed in range(5):
        idx = picture_sample(y, 30, max_points=8, seed=seed, anchor=17)
        kept = set(y[idx])
        assert len(idx) == 8 and len(kept) == 8 and 17 in kept


def test_class_means_equal_numpy(rng):
    x, y, _ = clustered(rng)
    means = class_means(torch.as_tensor(x, dtype=torch.float32), y, 13)
    for c in range(12):
        np.testing.assert_allclose(means[c], x[y == c].mean(axis=0), atol=1e-4)
    assert np.isnan(means[12]).all()


def test_picture_keeps_clusters_and_the_class_means_keep_the_groups(rng):
    x, y, t = clustered(rng)
    pic = make_picture(x, y, 12, layer="fc", epoch=4, seed=0, max_points=96, n_epochs=100)
    assert pic.points.shape == (96, 2) and pic.points.dtype == np.float32
    assert np.bincount(pic.labels).tolist() == [8] * 12
    assert pic.centres.shape == (12, 2) and np.isfinite(pic.centres).all()
    # Quality, not exact values: each example's nearest neighbour in the picture is of its group.
    d = np.linalg.norm(pic.points[:, None] - pic.points[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert np.mean(t[pic.labels[d.argmin(axis=1)]] == t[pic.labels]) > 0.95
    agreement, chance = centre_agreement(pic.centres, t)
    assert agreement > 0.9 and chance == pytest.approx(3 / 11)
    again = make_picture(x, y, 12, layer="fc", epoch=4, seed=0, max_points=96, n_epochs=100)
    np.testing.assert_array_equal(pic.points, again.points)


def test_centre_agreement_by_hand():
    centres = np.array([[0, 0], [0, 1], [5, 5], [5, 6.5], [np.nan, np.nan]])
    # nearest: 0<->1 (same group), 2->3 (other group), 3->2 (other group); class 4 not shown
    agreement, chance = centre_agreement(centres, [0, 0, 1, 0, 1])
    assert agreement == pytest.approx(2 / 4)
    assert chance == pytest.approx(np.mean([2 / 3, 2 / 3, 0, 2 / 3]))


def test_arrays_round_trip_through_an_npz_file_with_other_keys(tmp_path, rng):
    pics = [Picture(layer, epoch, rng.normal(size=(6, 2)).astype(np.float32),
                    np.arange(6) % 3, rng.normal(size=(3, 2)).astype(np.float32))
            for layer in ("body.act1", "head") for epoch in (30, 0, 2)]
    np.savez(tmp_path / "manifold.npz", query=np.arange(4), **picture_arrays(pics))
    with np.load(tmp_path / "manifold.npz") as data:
        back = read_pictures({k: data[k] for k in data.files})
    assert list(back) == ["body.act1", "head"]
    assert list(back["head"]) == [0, 2, 30]
    for pic in pics:
        got = back[pic.layer][pic.epoch]
        for field in ("points", "labels", "centres"):
            np.testing.assert_array_equal(getattr(got, field), getattr(pic, field))


def test_layer_pictures_embed_the_max_pooled_layer_features(rng):
    x, y, _ = clustered(rng, dim=6)
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 12))
    inputs = torch.as_tensor(x, dtype=torch.float32)
    pics = layer_pictures(model, ["1", "2"], inputs, y, 12, epoch=3, seed=1, max_points=48,
                          n_epochs=30)
    with torch.no_grad():
        hidden = torch.relu(model[0](inputs))
    direct = make_picture(hidden, y, 12, layer="1", epoch=3, seed=1, max_points=48, n_epochs=30)
    assert [p.layer for p in pics] == ["1", "2"] and pics[0].epoch == 3
    np.testing.assert_allclose(pics[0].points, direct.points, atol=1e-5)


def test_anchor_distances_are_the_anchor_row_and_the_anchor_is_a_name_or_an_index():
    d = np.array([[0, 2, 4], [2, 0, 4], [4, 4, 0]])
    np.testing.assert_array_equal(anchor_distances(d, 1), [2, 0, 4])
    with pytest.raises(ValueError, match="The 'anchor' parameter of anchor_distances"):
        anchor_distances(d, 3)
    classes = ["tabby", "tiger", "car"]
    assert (anchor_index(None, classes), anchor_index(2, classes), anchor_index("tiger", classes)) \
        == (0, 2, 1)
    with pytest.raises(ConfigError, match=re.escape(
            "manifold.anchor: 'lynx' is neither a class name nor an index in 0..2")):
        anchor_index("lynx", classes)


def test_figure_draws_rows_per_epoch_with_colours_by_distance_and_group(rng):
    x, y, t = clustered(rng, groups=2, per_group=3, per_class=4)
    pics = {e: make_picture(x + e, y, 6, layer="fc", epoch=e, n_epochs=20) for e in (1, 9)}
    distances = np.array([0.0, 2, 2, 4, 4, 4])
    groups = LabelSpace(t, names=["animals", "artifacts"])
    names = [f"c{i}" for i in range(6)]
    fig = plot_umap_pictures(pics, distances, anchor=0, class_names=names, groups=groups,
                             group_name="S2")
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(axes) == 6
    assert [ax.get_ylabel() for ax in axes[::3]] == ["epoch 1", "epoch 9"]
    assert [ax.get_title() for ax in axes[:3]] == [
        "examples by distance to c0", "examples by superclass (S2)", "class means"]
    by_distance = axes[0].collections[0]
    pic = pics[1]
    drawn = by_distance.get_offsets()
    order = np.argsort(-distances[pic.labels], kind="stable")  # near classes drawn last, on top
    np.testing.assert_allclose(drawn, pic.points[order])
    np.testing.assert_allclose(by_distance.get_array(), distances[pic.labels][order])
    assert by_distance.get_cmap().name == DISTANCE_CMAP
    by_group = axes[1].collections
    assert [c.get_label() for c in by_group] == ["animals", "artifacts"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["anchor: c0", "animals",
                                                                   "artifacts"]
    assert by_group[0].get_facecolor()[0].tolist() != by_group[1].get_facecolor()[0].tolist()
    np.testing.assert_allclose(by_group[1].get_offsets(), pic.points[t[pic.labels] == 1])
    star = axes[2].collections[1]
    np.testing.assert_allclose(star.get_offsets(), [pic.centres[0]])
    assert tuple(star.get_edgecolor()[0]) == to_rgba("black")
    assert fig.axes[-1].get_ylabel() == "hierarchy distance to c0"
