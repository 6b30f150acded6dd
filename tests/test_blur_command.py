"""``hypbias blur``: a tiny CNN trained on a fabricated CIFAR-100 folder, its checkpoints classifying
blurred validation images; rows against an independent SciPy computation and the run's own
accuracy, replacement of earlier rows, the report's figure, and one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from fabricate import write_cifar100
from hypbias.analysis.blur import blur_table
from hypbias.analysis.findings import blur_finding
from hypbias.cli import main
from hypbias.data.cifar import load_cifar100
from hypbias.models import create
from hypbias.rundir import RunDir
from hypbias.train.checkpoint import load_evaluated_weights, read_checkpoint

pytestmark = pytest.mark.slow

QUIET = ["--no-progress"]
CNN = ["model.name=small_cnn", "model.widths=[4, 8]", "train.epochs=2", "train.batch_size=50",
       "train.save_every=1", "track.splits=[val]", "spaces.random_draws=1", "nc.every=0",
       "manifold.every=0", "train.augment=null"]


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def cifar_run(tmp_path_factory):
    """A run of a tiny CNN on fabricated CIFAR-100 (2 train and 3 val images per class)."""
    root = tmp_path_factory.mktemp("cifar")
    write_cifar100(root, n_train=2, n_test=3)
    out = root / "run"
    assert main(["run", "cifar100_resnet18", "--data-dir", str(root), "--out", str(out), *QUIET,
                 "--no-report", *_sets(CNN)]) == 0
    return RunDir(out), root


def _blurred_accuracy(run: RunDir, root, epoch: int, sigma: float) -> tuple[float, float]:
    """Accuracy (%) in H and S20 of the checkpoint of ``epoch`` on val images blurred by SciPy
    (Gaussian truncated at 4σ, edges replicated), image by image."""
    bundle = load_cifar100(root)
    torch.manual_seed(0)
    model = create("small_cnn", num_classes=100, in_channels=3, widths=(4, 8))
    load_evaluated_weights(read_checkpoint(run.checkpoints / f"epoch_{epoch:03d}.pt"), model)
    x = bundle.val.x.numpy().astype(np.float64)
    if sigma > 0:
        x = ndimage.gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="nearest", truncate=4.0)
    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(x, dtype=torch.float32)).argmax(dim=1).numpy()
    y = bundle.val.y.numpy()
    coarse = run.spaces.hypernyms["S20"].t
    return 100 * np.mean(pred == y), 100 * np.mean(coarse[pred] == coarse[y])


def _blur_rows(run: RunDir):
    m = run.metrics
    return m[m.metric.str.startswith("blur_")]


def test_blur_writes_rows_of_an_early_and_the_last_checkpoint_and_the_figure(cifar_run, capsys):
    run, root = cifar_run
    before = run.metrics
    assert main(["blur", str(run.path), *QUIET]) == 0
    run = RunDir(run.path)
    rows = _blur_rows(run)
    assert set(rows.epoch) == {1, 2} and set(rows.split) == {"val"}
    assert set(rows.space) == {"H", "S20"}
    assert set(rows.metric) == {f"{base}@sigma={s}" for base in
                                ("blur_accuracy", "blur_relative_accuracy", "blur_relative_gain")
                                for s in ("0", "0.5", "1", "2", "4")}
    acc = rows[rows.metric.str.startswith("blur_accuracy@")].set_index(["epoch", "space", "metric"])
    for epoch in (1, 2):
        # unblurred: the accuracy the run tracked at that epoch
        tracked = before[(before.metric == "accuracy") & (before.epoch == epoch) &
                         (before.split == "val")].set_index("space").value
        for space in ("H", "S20"):
            assert acc.value[(epoch, space, "blur_accuracy@sigma=0")] == pytest.approx(tracked[space])
        for sigma in (0.5, 1.0, 2.0, 4.0):
            h, s20 = _blurred_accuracy(run, root, epoch, sigma)
            assert acc.value[(epoch, "H", f"blur_accuracy@sigma={sigma:g}")] == pytest.approx(h)
            assert acc.value[(epoch, "S20", f"blur_accuracy@sigma={sigma:g}")] == pytest.approx(s20)
    rel = rows[rows.metric == "blur_relative_accuracy@sigma=4"].set_index(["epoch", "space"]).value
    assert rel[(2, "H")] == pytest.approx(acc.value[(2, "H", "blur_accuracy@sigma=4")] /
                                          acc.value[(2, "H", "blur_accuracy@sigma=0")])
    # the rest of the table is kept; the report shows the section and its figure
    others = run.metrics[~run.metrics.metric.str.startswith("blur_")]
    assert len(others) == len(before)
    assert run.file("figures/blur.png").exists()
    assert "Frequency analysis: accuracy on blurred images" in run.file("report.html").read_text()
    finding = blur_finding(blur_table(run.metrics))  # the early against the late checkpoint
    assert finding and capsys.readouterr().out.strip() == finding


def test_a_second_blur_replaces_the_earlier_rows(cifar_run):
    run, _ = cifar_run
    assert main(["blur", str(run.path), *QUIET, "--no-report", "--sigmas", "1.5",
                 "--epochs", "0,2"]) == 0
    rows = _blur_rows(RunDir(run.path))
    assert set(rows.epoch) == {0, 2}
    assert {m.split("=")[1] for m in rows.metric} == {"0", "1.5"}
    assert len(rows) == 2 * 2 * 3 * 2  # epochs × spaces × metrics × sigmas
    assert main(["blur", str(run.path), *QUIET, "--no-report", "--sigmas", "2",
                 "--epochs", "all"]) == 0
    assert set(_blur_rows(RunDir(run.path)).epoch) == {0, 1, 2}


@pytest.mark.parametrize(("args", "message"), [
    (["--epochs", "5"], "/checkpoints: no checkpoint of epoch 5 (epochs saved: 0, 1, 2)"),
    (["--epochs", "1,x"], "--epochs '1,x': expected 'all' or comma-separated integers, e.g. 1,30"),
    (["--sigmas", "1", "-2"], "--sigmas: every sigma must be a finite number >= 0. Got -2 instead."),
])
def test_bad_arguments_are_one_line_errors_and_leave_the_table(cifar_run, capsys, args, message):
    run, _ = cifar_run
    before = run.file("metrics.csv").read_bytes()
    assert main(["blur", str(run.path), *QUIET, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hypbias blur: error: ") and err.endswith(message) and "\n" not in err
    assert run.file("metrics.csv").read_bytes() == before


def test_data_that_are_not_images_and_runs_without_checkpoints_are_refused(tmp_path, capsys):
    out = tmp_path / "synthetic"
    tiny = ["train.epochs=1", "data.train_per_class=4", "data.val_per_class=4", "nc.every=0",
            "spaces.random_draws=1", "model.hidden=[8]", "train.save_every=1"]
    assert main(["run", "--out", str(out), *QUIET, "--no-report", *_sets(tiny)]) == 0
    capsys.readouterr()
    assert main(["blur", str(out), *QUIET]) == 2
    dim = RunDir(out).config["data"].get("dim", 64)
    assert capsys.readouterr().err.strip() == (
        f"hypbias blur: error: {out}: the frequency analysis blurs images of shape (channels, "
        f"height, width); these inputs have shape ({dim},), so there is nothing to blur")
    assert main(["blur", str(tmp_path / "nowhere"), *QUIET]) == 2
    assert capsys.readouterr().err.strip() == (
        f"hypbias blur: error: {tmp_path / 'nowhere'}: no such run directory")


def test_an_image_run_without_checkpoints_is_refused(cifar_run, tmp_path, capsys):
    _, root = cifar_run
    out = tmp_path / "nockpt"
    assert main(["run", "cifar100_resnet18", "--data-dir", str(root), "--out", str(out), *QUIET,
                 "--no-report", *_sets([*CNN, "train.epochs=1", "train.save_every=0"])]) == 0
    capsys.readouterr()
    assert main(["blur", str(out), *QUIET]) == 2
    assert capsys.readouterr().err.strip() == (
        f"hypbias blur: error: {out / 'checkpoints'}: no epoch_XXX.pt checkpoints to blur (train "
        "the run with --set train.save_every=K)")
