"""Report figures by their content (axes, labels, data), and a report of a fabricated run directory
holding every section of the paper's items (pictures, Table 6–7, Fig. 8, severity, blur)."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from hypbias.analysis import Labelled, ManifoldSettings, manifold_metrics
from hypbias.analysis.blur import blur_rows
from hypbias.analysis.space_accuracy import convergence_summary, space_metrics
from hypbias.analysis.umap_pictures import layer_pictures, picture_arrays
from hypbias.data.synthetic import synthetic_hierarchy
from hypbias.labelspace import LabelSpace
from hypbias.labelspace.spaceset import build_spaces
from hypbias.metrics.rows import metric_row
from hypbias.report import figures as F
from hypbias.report import write_report
from hypbias.report.figures_collapse import plot_collapse, plot_equality
from hypbias.report.figures_compare import (
    accuracy_table,
    plot_relative_accuracy_overlay,
    plot_tau_vs_superclasses,
)
from hypbias.report.figures_manifold import (
    plot_ccc_heatmap,
    plot_cover_curves,
    plot_cover_spaces,
    plot_probe_depth,
)
from hypbias.report.html import figure_png
from hypbias.rundir import RunDir

EPOCHS = 15


def curves_table(epochs: int = EPOCHS) -> pd.DataFrame:
    """relative_accuracy rows of H, S4 and three draws of R4, chosen by hand."""
    rows = []
    for e in range(epochs + 1):
        frac = e / epochs
        values = {"H": frac, "S4": min(1.0, 3 * frac), "R4#0": frac ** 0.5, "R4#1": frac ** 0.6,
                  "R4#2": frac ** 0.7}
        rows += [metric_row(e, "val", s, "relative_accuracy", v) for s, v in values.items()]
    return pd.DataFrame(rows)


def drawn(fig) -> None:
    fig.canvas.draw()


def test_space_curves_use_a_symlog_epoch_axis_label_k_and_draw_visible_bands():
    fig = F.plot_relative_accuracy(curves_table(), "val", sizes={"H": 100, "S4": 4, "R4": 4})
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog"
    assert ax.get_xlabel() == "epoch (log scale beyond 1)"
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["H (K=100)", "S4 (K=4)", "R4 (K=4), random: mean ± sd of 3"]
    draws = np.stack([curves_table().query("space == @s").value.to_numpy()
                      for s in ("R4#0", "R4#1", "R4#2")])
    np.testing.assert_allclose(ax.lines[2].get_ydata(), draws.mean(axis=0))
    band = ax.collections[0]
    assert band.get_alpha() == F.BAND_ALPHA >= 0.3
    top = band.get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx((draws.mean(axis=0) + draws.std(axis=0, ddof=1)).max())
    short = F.plot_relative_accuracy(curves_table(epochs=5), "val")
    assert short.axes[0].get_xscale() == "linear" and short.axes[0].get_xlabel() == "epoch"
    for f in (fig, short):
        plt.close(f)


def test_legends_sit_outside_the_data():
    fig = F.plot_relative_accuracy(curves_table(), "val")
    drawn(fig)
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    assert ax.get_legend().get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    plt.close(fig)


def space_set() -> tuple:
    h = synthetic_hierarchy((3, 4))
    return h, build_spaces(h, [3], random_draws=3, seed=0)


def fabricated_confusions(rng, h, epochs: int = EPOCHS, per_class: int = 20) -> np.ndarray:
    """Per epoch a confusion matrix: right more often, and wrong within the top group early on."""
    c = h.num_classes
    group = LabelSpace.from_hierarchy(h, level=1).t
    out = np.zeros((epochs + 1, c, c), dtype=np.int64)
    for e in range(epochs + 1):
        p_right = 0.05 + 0.9 * e / epochs
        for i in range(c):
            near = np.flatnonzero(group == group[i])
            p = np.full(c, (1 - p_right) * 0.2 / c)
            p[near] += (1 - p_right) * 0.8 / len(near)
            p[i] += p_right
            out[e, i] = rng.multinomial(per_class, p / p.sum())
    return out


def test_theoretical_accuracy_has_a_residual_panel_of_measured_minus_eq22(rng):
    h, spaces = space_set()
    metrics = space_metrics(fabricated_confusions(rng, h), spaces, "val")
    fig = F.plot_theoretical_accuracy(metrics, spaces, "val")
    top, res = fig.axes
    draws = [r for r, _ in spaces.randoms["S3"]]
    acc = metrics[metrics.metric == "accuracy"].pivot(index="epoch", columns="space", values="value")
    theo = metrics[metrics.metric == "theoretical_accuracy"].pivot(index="epoch", columns="space",
                                                                   values="value")
    np.testing.assert_allclose(res.lines[0].get_ydata(), (acc[draws] - theo[draws]).mean(axis=1))
    assert res.get_ylabel() == "residual (points)"
    assert top.lines[0].get_label() == "R3 (K=3) measured (mean ± sd)"
    assert [line.get_ydata()[0] for line in res.lines[1:]] == [0.0]  # the zero line
    plt.close(fig)


def test_confusions_in_dfs_order_with_blocks_colour_bar_and_both_axes_labelled(rng):
    h, spaces = space_set()
    confusion = fabricated_confusions(rng, h)
    order = h.dfs_order()
    space = spaces.hypernyms["S3"]
    fig = F.plot_confusions(confusion, order, [1, 4, EPOCHS], space, "S3")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in panels] == ["epoch 1", "epoch 4", f"epoch {EPOCHS}"]
    assert all(ax.get_xlabel() == "predicted class (DFS order)" for ax in panels)
    assert panels[0].get_ylabel() == "true class (DFS order)"
    colorbar = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbar) == 1 and "log10" in colorbar[0].get_ylabel()
    m = confusion[4][np.ix_(order, order)].astype(float)
    np.testing.assert_allclose(panels[1].images[0].get_array(),
                               np.log10(m / m.sum(axis=1, keepdims=True) + 1e-3))
    edges = sorted({line.get_ydata()[0] for line in panels[0].lines if line.get_ydata()[0] ==
                    line.get_ydata()[-1]})
    sizes = np.cumsum(np.bincount(space.t[order]))[:-1]
    np.testing.assert_allclose(edges, sizes - 0.5)
    plt.close(fig)


def nc_table() -> pd.DataFrame:
    rows = []
    for e in range(EPOCHS + 1):
        for space in ("H", "S4", "R4#0", "R4#1"):
            for metric in ("nc1", "nc3", "nc4", "nc2_equinorm_means", "nc2_equinorm_weights",
                           "nc2_equiangular_means", "nc2_equiangular_weights",
                           "nc2_maxangle_means", "nc2_maxangle_weights"):
                rows.append(metric_row(e, "train", space, metric, 1.0 / (1 + e) + 0.01))
    return pd.DataFrame(rows)


def test_collapse_titles_divide_by_each_space_k_and_nc2_shows_the_max_angle():
    fig = plot_collapse(nc_table(), sizes={"H": 100, "S4": 4})
    assert fig.axes[0].get_title() == "NC1: tr(Σ_W Σ_B†) / K, K = groups of each space"
    assert "S4 (K=4)" in [line.get_label() for line in fig.axes[0].lines]
    eq = plot_equality(nc_table())
    titles = [ax.get_title() for ax in eq.axes]
    assert titles[4:] == ["max-angle of means: avg |cos + 1/(K−1)|",
                          "max-angle of weights: avg |cos + 1/(K−1)|"]
    np.testing.assert_allclose(eq.axes[4].lines[0].get_ydata(),
                               [1.0 / (1 + e) + 0.01 for e in range(EPOCHS + 1)])


def manifold_table() -> pd.DataFrame:
    rows = []
    epochs = (0, 1, 2, 4, 8, 30)
    for i, epoch in enumerate(epochs):
        for depth, layer in enumerate(("conv", "fc")):
            rows.append(metric_row(epoch, "train", "H", "ccc_cover", 0.1 * i + 0.1 * depth, layer))
            for suffix, shift in (("", 0.0), ("@space=raw", -0.3)):
                rows.append(metric_row(epoch, "train", "H", f"self_cover{suffix}", 0.5 + 0.05 * i,
                                       layer))
                rows.append(metric_row(epoch, "train", "H", f"mutual_cover{suffix}",
                                       0.5 - 0.05 * i + shift, layer))
            for k, space in enumerate(("H", "S2", "S4", "S8")):
                rows.append(metric_row(epoch, "val", space, "probe_accuracy",
                                       20 + 10 * k + 5 * i + 10 * depth, layer))
    return pd.DataFrame(rows)


def test_ccc_heatmap_places_epochs_by_value():
    table = manifold_table()
    fig = plot_ccc_heatmap(table)
    ax = fig.axes[0]
    mesh = ax.collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(2, 6),
                               [[0.1 * i for i in range(6)], [0.1 * i + 0.1 for i in range(6)]])
    edges = mesh.get_coordinates()[0, :, 0]
    epochs = np.array([0, 1, 2, 4, 8, 30])
    assert ((edges[:-1] < epochs) & (epochs < edges[1:])).all()
    u = ax.xaxis.get_transform().transform  # the symlog scale the axis draws with
    np.testing.assert_allclose(u(edges[1:-1]), (u(epochs[:-1]) + u(epochs[1:])) / 2)
    assert np.ptp(np.diff(u(epochs))) > 0.1  # the cells are not evenly spaced
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "4", "8", "30"]
    plt.close(fig)


def test_probe_figure_is_a_grid_with_a_shared_accuracy_axis_and_names_the_method():
    fig = plot_probe_depth(manifold_table(), max_epochs=2, method="ridge")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 6 and len(visible) == 4
    assert [ax.get_title() for ax in visible] == [f"probes scored in {s}" for s in
                                                  ("H", "S2", "S4", "S8")]
    assert all(visible[0].get_shared_y_axes().joined(visible[0], ax) for ax in visible)
    assert fig.get_suptitle() == "Few-shot ridge probes trained in H, scored in each space"
    line = visible[3].lines[-1]
    np.testing.assert_allclose(line.get_xdata(), [0, 1])
    np.testing.assert_allclose(line.get_ydata(), [50 + 25, 60 + 25])
    plt.close(fig)


def test_covers_in_raw_and_umap_space_side_by_side():
    table = manifold_table()
    fig = plot_cover_spaces(table)
    raw, umap = fig.axes
    assert raw.get_title() == "(a) feature space, layer fc"
    assert umap.get_title() == "(b) UMAP embedding space, layer fc"
    np.testing.assert_allclose(raw.lines[1].get_ydata(), [0.2 - 0.05 * i for i in range(6)])
    np.testing.assert_allclose(umap.lines[1].get_ydata(), [0.5 - 0.05 * i for i in range(6)])
    plain = plot_cover_curves(table)
    assert [ax.get_title() for ax in plain.axes] == ["conv", "fc"]
    assert plot_cover_spaces(table[~table.metric.str.contains("@")]) is None
    for f in (fig, plain):
        plt.close(f)


def compare_runs_tables(rng) -> tuple:
    h, spaces = space_set()
    runs = {}
    for name, seed in (("resnet", 1), ("vit", 2)):
        conf = fabricated_confusions(np.random.default_rng(seed), h)
        runs[name] = space_metrics(conf, spaces, "val")
    return h, spaces, runs


def test_relative_accuracy_overlay_has_a_panel_per_space_and_a_line_per_run(rng):
    _, _, runs = compare_runs_tables(rng)
    fig = plot_relative_accuracy_overlay(runs, "val")
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == [
        "H (fine classes)", "S3 (K=3) (hypernyms)", "R3 (K=3) (mean of random draws)"]
    s3 = fig.axes[1]
    assert [line.get_label() for line in s3.lines] == ["resnet", "vit"]
    vit = runs["vit"]
    expected = vit[(vit.metric == "relative_accuracy") & (vit.space == "S3")].value.to_numpy()
    np.testing.assert_allclose(s3.lines[1].get_ydata(), expected)
    draws = vit[(vit.metric == "relative_accuracy") & vit.space.str.startswith("R3#")]
    np.testing.assert_allclose(fig.axes[2].lines[1].get_ydata(),
                               draws.groupby("epoch").value.mean().to_numpy())
    plt.close(fig)


def test_tau_against_superclasses_draws_one_line_pair_per_run(rng):
    h = synthetic_hierarchy((2, 2, 3))
    spaces = build_spaces(h, [2, 4], random_draws=2, seed=0)
    summaries = {
        "a": ({"q": 0.95, "tau": {"val": {"S2": 2.0, "S4": 3.0, "R2": 6.0, "R4": 7.0}},
               "tau_sd": {"val": {"R2": 1.0, "R4": 0.5}}}, spaces),
        "b": ({"q": 0.95, "tau": {"val": {"S2": 1.0, "S4": None, "R2": 4.0, "R4": 5.0}},
               "tau_sd": {"val": {"R2": 0.0, "R4": 0.0}}}, spaces),
    }
    fig = plot_tau_vs_superclasses(summaries, "val")
    ax = fig.axes[0]
    by_label = {c.get_label(): c.lines[0] for c in ax.containers}
    assert sorted(by_label) == ["hypernym S_n, a", "hypernym S_n, b", "random R_n, a",
                                "random R_n, b"]
    np.testing.assert_allclose(by_label["hypernym S_n, a"].get_xdata(), [2, 4])
    np.testing.assert_allclose(by_label["hypernym S_n, a"].get_ydata(), [2, 3])
    np.testing.assert_allclose(by_label["hypernym S_n, b"].get_xdata(), [2])  # S4 never converged
    np.testing.assert_allclose(by_label["random R_n, a"].get_ydata(), [6, 7])
    assert ax.get_xlabel() == "number of superclasses n"
    plt.close(fig)


def test_table_1_holds_the_last_epoch_accuracy_of_every_space_per_run(rng):
    _, _, runs = compare_runs_tables(rng)
    table = accuracy_table(runs, "val")
    assert list(table.columns) == ["resnet", "vit"] and list(table.index) == ["H", "S3", "R3"]
    for name, m in runs.items():
        last = m[(m.metric == "accuracy") & (m.epoch == EPOCHS)].set_index("space").value
        assert table.loc["H", name] == pytest.approx(last["H"])
        assert table.loc["R3", name] == pytest.approx(last[[f"R3#{k}" for k in range(3)]].mean())


def test_every_figure_is_saved_as_png_and_pdf(tmp_path):
    fig = F.plot_relative_accuracy(curves_table(), "val")
    data = figure_png(fig, tmp_path / "curves.png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "curves.png").read_bytes() == data
    assert (tmp_path / "curves.pdf").read_bytes()[:5] == b"%PDF-"


# ------------------------------------------------------------------------------ a whole report
@pytest.fixture(scope="module")
def fabricated_run(tmp_path_factory):
    """A run directory as a tracked run with pictures, Table 7 probes, severity and blur would leave
    it; its manifold rows and pictures are computed by the analysis functions on a small MLP."""
    rng = np.random.default_rng(0)
    h = synthetic_hierarchy((3, 4))
    spaces = build_spaces(h, [3], random_draws=3, seed=0)
    confusion = fabricated_confusions(rng, h)
    frames = [space_metrics(confusion, spaces, "val")]
    centres = np.repeat(rng.normal(size=(3, 6)) * 6, 4, axis=0) + rng.normal(size=(12, 6))

    def sample(n):
        y = np.repeat(np.arange(12), n)
        return Labelled(torch.as_tensor(centres[y] + rng.normal(size=(len(y), 6)),
                                        dtype=torch.float32), y)

    query, support, probe_train, probe_test = sample(6), sample(6), sample(4), sample(6)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 12))
    rows, pictures = [], []
    settings = ManifoldSettings(n_epochs=30, space="both", probe_method="ridge",
                                probe_train_spaces="all")
    for epoch in (0, 2, EPOCHS):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.2)
        rows += manifold_metrics(model, ["1", "2"], query, support, h.graph_distance_matrix(),
                                 {"H": None, **spaces.hypernyms}, epoch=epoch,
                                 probe_train=probe_train, probe_test=probe_test, settings=settings,
                                 progress=False)
        pictures += layer_pictures(model, ["2"], torch.cat([query.x, support.x]),
                                   np.concatenate([query.y, support.y]), 12, epoch=epoch,
                                   n_epochs=30)
    for e in range(EPOCHS + 1):
        rows.append(metric_row(e, "val", "H", "mistake_severity", 2.5 - e / EPOCHS))
        rows.append(metric_row(e, "val", "H", "hier_dist@5", 3.0 - e / EPOCHS))
    for epoch in (2, EPOCHS):
        blurred = np.stack([fabricated_confusions(np.random.default_rng(s), h)[epoch]
                            for s in range(3)])
        rows += blur_rows(blurred, [0.0, 1.0, 2.0], {"H": None, **spaces.hypernyms}, epoch=epoch,
                          split="val")
    frames.append(pd.DataFrame(rows))
    metrics = pd.concat(frames, ignore_index=True)

    run = RunDir(tmp_path_factory.mktemp("run"))
    run.write_yaml("config.yaml", {
        "seed": 0, "data": {"name": "synthetic"}, "model": {"name": "mlp"},
        "train": {"epochs": EPOCHS}, "track": {"splits": ["val"]},
        "manifold": {"k": 6, "dim": 10, "space": "both", "probe_method": "ridge", "probe_k": 4,
                     "anchor": "c1.1"}})
    run.write_json("hierarchy.json", h.to_dict())
    run.write_spaces(spaces)
    run.write_npz("confusion.npz", {"val": confusion})
    run.write_npz("manifold.npz", {"query": np.arange(3), **picture_arrays(pictures)})
    metrics.to_csv(run.file("metrics.csv"), index=False)
    summary = convergence_summary(metrics, spaces, 0.95)
    run.write_json("summary.json", {**summary, "final_accuracy": {}, "findings": ["a finding"]})
    pd.DataFrame({"epoch": range(EPOCHS + 1), "loss": np.linspace(2, 0.1, EPOCHS + 1),
                  "acc_val": np.linspace(5, 90, EPOCHS + 1),
                  "seconds": np.arange(EPOCHS + 1.0)}).to_csv(run.file("log.csv"), index=False)
    return run


def test_report_holds_pictures_tables_confusions_severity_and_blur(fabricated_run):
    page = write_report(fabricated_run).read_text(encoding="utf-8")
    sections = page.split("<h2>")[1:]
    titles = [s.split("</h2>")[0] for s in sections]
    assert titles == [
        "Hypernym bias: greedy accuracy in hypernym and random label spaces",
        "The feature manifold in pictures: UMAP embeddings coloured by the hierarchy",
        "Layer-wise alignment of the feature manifold with the hierarchy",
        "Mistake severity and hierarchical distances",
        "Frequency analysis: accuracy on blurred images",
        "Training",
    ]
    bias, pictures, manifold, severity, blur, training = sections
    assert "alt='confusion'" in bias and "alt='confusion'" not in training
    assert "alt='umap_2'" in pictures and "distance to c1.1" in pictures
    assert "in the 2-D UMAP of the class means of layer 2" in pictures
    assert "Table 6: CCC" in manifold and "<th>average</th>" in manifold
    assert "Table 7: accuracy in S3" in manifold and "trained in S3" in manifold
    assert "ridge probes, closed-form ridge least squares" in manifold
    assert "alt='manifold_cover_spaces'" in manifold and "alt='manifold_ccc_direct'" in manifold
    assert "goes from 2.50 at epoch 0 to 1.50 at epoch 15" in severity
    assert "blurred with σ = 2" in blur and "alt='blur'" in blur
    for section in (bias, pictures, manifold, severity, blur):  # each opens with its verdict
        assert "<p class='finding'>This run " in section
    figures = {p.name for p in fabricated_run.figures.iterdir()}
    for stem in ("umap_2", "confusion", "blur", "severity", "manifold_cover_spaces"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= figures
    assert json.loads(fabricated_run.file("summary.json").read_text())["findings"] == ["a finding"]
