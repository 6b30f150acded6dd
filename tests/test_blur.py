"""Frequency analysis (App. C.5): the Gaussian blur against NumPy and SciPy, confusion matrices of a
tiny CNN on blurred fabricated CIFAR-100 images against a sample-by-sample computation, the rows
against their formulas, and the figure by its content."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from fabricate import write_cifar100
from hypbias.analysis.blur import (
    blur_confusions,
    blur_rows,
    blur_sigmas,
    blur_table,
    check_images,
    gaussian_blur,
    gaussian_kernel,
    kernel_radius,
)
from hypbias.data.cifar import load_cifar100
from hypbias.errors import DataError
from hypbias.models import create
from hypbias.report.figures_blur import plot_blur


def numpy_blur(images: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """A 2-d Gaussian written out: edge-padded images convolved with the outer product kernel."""
    r = int(truncate * sigma + 0.5)
    x = np.arange(-r, r + 1)
    k1 = np.exp(-x**2 / (2 * sigma**2))
    k2 = np.outer(k1, k1) / k1.sum() ** 2
    padded = np.pad(images, ((0, 0), (0, 0), (r, r), (r, r)), mode="edge")
    windows = sliding_window_view(padded, (2 * r + 1, 2 * r + 1), axis=(2, 3))
    return np.einsum("nchwij,ij->nchw", windows, k2)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.5])
def test_blur_equals_a_numpy_2d_convolution_and_scipy(rng, sigma):
    images = rng.normal(size=(3, 2, 11, 8))
    got = gaussian_blur(torch.from_numpy(images), sigma).numpy()
    np.testing.assert_allclose(got, numpy_blur(images, sigma), atol=1e-12)
    np.testing.assert_allclose(got, ndimage.gaussian_filter(images, (0, 0, sigma, sigma),
                                                            mode="nearest"), atol=1e-12)


def test_kernel_is_normalised_symmetric_and_as_wide_as_stated():
    k = gaussian_kernel(1.3, dtype=torch.float64)
    assert len(k) == 2 * kernel_radius(1.3) + 1 == 11
    assert k.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(k, k.flip(0))
    assert gaussian_kernel(0.0).tolist() == [1.0]


def test_blur_keeps_dtype_and_device_rounds_integers_and_leaves_sigma_zero_alone(rng):
    images = torch.from_numpy(rng.integers(0, 256, size=(2, 3, 9, 9), dtype=np.uint8))
    out = gaussian_blur(images, 1.0)
    assert out.dtype == torch.uint8
    expected = np.clip(np.round(numpy_blur(images.numpy().astype(np.float64), 1.0)), 0, 255)
    assert np.abs(out.numpy().astype(int) - expected).max() <= 1  # float32 vs float64 rounding
    assert gaussian_blur(images, 0) is images
    constant = torch.full((1, 1, 5, 5), 7.0)
    torch.testing.assert_close(gaussian_blur(constant, 3.0), constant)  # borders replicated
    with pytest.raises(ValueError, match=re.escape(
            "The 'images' parameter of gaussian_blur must have shape (N, C, H, W). Got shape (5, 5) "
            "instead.")):
        gaussian_blur(torch.zeros(5, 5), 1.0)


def test_blur_commutes_with_per_channel_standardisation(rng):
    images = rng.uniform(0, 255, size=(2, 3, 10, 10))
    mean, std = np.array([120.0, 100.0, 90.0]), np.array([60.0, 50.0, 55.0])

    def standardise(x):
        return (x - mean[:, None, None]) / std[:, None, None]

    np.testing.assert_allclose(gaussian_blur(torch.from_numpy(standardise(images)), 1.5).numpy(),
                               standardise(numpy_blur(images, 1.5)), atol=1e-10)


def test_sigmas_start_with_the_unblurred_reference():
    assert blur_sigmas([4, 1, 0, 1]) == [0.0, 1.0, 4.0]
    assert blur_sigmas() == [0.0, 0.5, 1.0, 2.0, 4.0]
    with pytest.raises(ValueError, match=re.escape(
            "The 'sigmas' parameter of blur_sigmas must be a finite float >= 0. Got -1 instead.")):
        blur_sigmas([-1])


def test_data_that_are_not_images_are_refused_in_one_line():
    assert check_images((3, 32, 32), "run") == (3, 32, 32)
    with pytest.raises(DataError) as err:
        check_images((64,), "runs/default")
    assert str(err.value) == (
        "runs/default: the frequency analysis blurs images of shape (channels, height, width); "
        "these inputs have shape (64,), so there is nothing to blur")


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """Fabricated CIFAR-100 (4 test images per class) and a tiny CNN with random weights."""
    root = tmp_path_factory.mktemp("cifar")
    write_cifar100(root, n_train=2, n_test=4)
    bundle = load_cifar100(root)
    torch.manual_seed(0)
    model = create("small_cnn", num_classes=100, in_channels=3, widths=(8, 16))
    return bundle, model


def test_confusions_of_a_cnn_equal_a_direct_computation_and_ignore_batching(cifar):
    bundle, model = cifar
    x, y = bundle.val.x, bundle.val.y
    sigmas = [0.0, 1.0, 3.0]

    def batches(size):
        return ((x[i:i + size], y[i:i + size]) for i in range(0, len(y), size))

    model.train()
    got = blur_confusions(model, batches(37), sigmas, 100)
    assert model.training  # mode restored
    assert got.shape == (3, 100, 100) and got.dtype == np.int64
    np.testing.assert_array_equal(got, blur_confusions(model, batches(400), sigmas, 100))
    model.eval()
    for s, sigma in enumerate(sigmas):
        blurred = x.numpy() if sigma == 0 else numpy_blur(x.numpy().astype(np.float64), sigma)
        with torch.no_grad():
            pred = model(torch.as_tensor(blurred, dtype=torch.float32)).argmax(dim=1).numpy()
        expected = np.zeros((100, 100), dtype=np.int64)
        np.add.at(expected, (y.numpy(), pred), 1)
        np.testing.assert_array_equal(got[s], expected)
    assert not np.array_equal(got[0], got[2])  # blur changes what a random CNN predicts


def test_rows_equal_their_formulas(cifar):
    bundle, model = cifar
    sigmas = [0.0, 2.0]
    x, y = bundle.val.x, bundle.val.y.numpy()
    conf = blur_confusions(model, [(x, bundle.val.y)], sigmas, 100)
    s20 = bundle.spaces["S20"]
    rows = pd.DataFrame(blur_rows(conf, sigmas, {"H": None, "S20": s20}, epoch=7, split="val"))
    assert set(rows.metric) == {f"{m}@sigma={s:g}" for m in
                                ("blur_accuracy", "blur_relative_accuracy", "blur_relative_gain")
                                for s in sigmas}
    assert set(rows.epoch) == {7} and set(rows.split) == {"val"} and set(rows.layer) == {""}
    value = rows.set_index(["space", "metric"]).value
    for sigma in sigmas:
        counts = conf[sigmas.index(sigma)]
        true, pred = np.nonzero(counts)
        weights = counts[true, pred]
        acc_s20 = 100 * np.sum(weights * (s20.t[true] == s20.t[pred])) / weights.sum()
        assert value["S20", f"blur_accuracy@sigma={sigma:g}"] == pytest.approx(acc_s20)
    a0, a2 = (value["S20", f"blur_accuracy@sigma={s}"] for s in ("0", "2"))
    assert value["S20", "blur_relative_accuracy@sigma=2"] == pytest.approx(a2 / a0)
    share = np.bincount(s20.t[y], minlength=20) / len(y)
    chance = 100 * np.sum(share**2)
    assert value["S20", "blur_relative_gain@sigma=2"] == pytest.approx((a2 - chance) / (a0 - chance))
    assert value["H", "blur_relative_accuracy@sigma=0"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="must include 0, the unblurred reference"):
        blur_rows(conf[1:], [2.0], {"H": None}, epoch=0, split="val")


def blur_metrics() -> pd.DataFrame:
    """Blur rows of two checkpoints in H and S3, with values chosen by hand."""
    rows = []
    acc = {(10, "H"): [60, 40, 20], (10, "S3"): [90, 80, 70],
           (195, "H"): [80, 50, 20], (195, "S3"): [98, 85, 70]}
    for (epoch, space), values in acc.items():
        for sigma, a in zip((0, 1, 4), values, strict=True):
            rows.append({"epoch": epoch, "split": "val", "space": space, "layer": "",
                         "metric": f"blur_accuracy@sigma={sigma}", "value": float(a)})
            rows.append({"epoch": epoch, "split": "val", "space": space, "layer": "",
                         "metric": f"blur_relative_accuracy@sigma={sigma}", "value": a / values[0]})
            rows.append({"epoch": epoch, "split": "val", "space": space, "layer": "",
                         "metric": f"blur_relative_gain@sigma={sigma}", "value": a / values[0] - 0.1})
    rows.append({"epoch": 195, "split": "val", "space": "H", "layer": "", "metric": "accuracy",
                 "value": 80.0})
    return pd.DataFrame(rows)


def test_table_reads_sigma_back_into_a_column():
    table = blur_table(blur_metrics())
    assert list(table.columns) == ["epoch", "split", "space", "metric", "sigma", "value"]
    assert len(table) == 4 * 3 * 3
    sel = table[(table.epoch == 195) & (table.space == "S3") & (table.metric == "blur_accuracy")]
    assert sel.sigma.tolist() == [0.0, 1.0, 4.0] and sel.value.tolist() == [98, 85, 70]
    assert blur_table(blur_metrics().iloc[-1:]).empty


def test_figure_has_a_column_per_space_a_row_per_quantity_and_a_line_per_checkpoint():
    fig = plot_blur(blur_metrics(), sizes={"H": 1000, "S3": 3})
    axes = np.array(fig.axes).reshape(3, 2)
    assert [ax.get_title() for ax in axes[0]] == ["H (K=1000)", "S3 (K=3)"]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["accuracy (%)", "A_σ / A_0", "relative gain G"]
    assert axes[-1, 0].get_xlabel() == "blur σ (pixels)"
    assert [t.get_text() for t in axes[-1, 0].get_xticklabels()] == ["0", "1", "4"]
    lines = axes[0, 1].lines
    assert [line.get_label() for line in lines] == ["epoch 10", "epoch 195"]
    np.testing.assert_allclose(lines[1].get_xdata(), [0, 1, 4])
    np.testing.assert_allclose(lines[1].get_ydata(), [98, 85, 70])
    np.testing.assert_allclose(axes[1, 0].lines[0].get_ydata(), [1, 40 / 60, 20 / 60])
    assert plot_blur(blur_metrics().iloc[-1:]) is None
