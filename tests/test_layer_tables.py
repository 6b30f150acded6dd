"""Table 6 and Table 7 from the metrics table, and the epochs figures pick (analysis.layer_tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hypbias.analysis.layer_tables import ccc_table, pick_epochs, probe_table
from hypbias.metrics.rows import metric_row

LAYERS = ("layer1", "layer2", "fc")


def ccc_metrics(rng) -> tuple[pd.DataFrame, dict]:
    """Random CCC rows for three layers at epochs 0, 1, 5, and the values by (metric, layer, epoch)."""
    values, rows = {}, []
    for epoch in (0, 1, 5):
        for layer in LAYERS:
            for metric in ("ccc_cover", "ccc_class_means", "ccc_direct"):
                v = float(rng.uniform(-0.2, 1.0))
                values[metric, layer, epoch] = v
                rows.append(metric_row(epoch, "train", "H", metric, v, layer))
    rows.append(metric_row(5, "val", "H", "accuracy", 50.0))
    return pd.DataFrame(rows), values


def test_ccc_table_holds_every_value_and_the_mean_over_layers(rng):
    metrics, values = ccc_metrics(rng)
    table = ccc_table(metrics, epochs=[1, 5])
    assert list(table.index) == [*LAYERS, "average"]
    assert list(table.columns) == [(e, h) for e in (1, 5)
                                   for h in ("direct comparison", "class means", "mutual cover")]
    for (epoch, heading), metric in [((1, "mutual cover"), "ccc_cover"),
                                     ((5, "direct comparison"), "ccc_direct"),
                                     ((5, "class means"), "ccc_class_means")]:
        column = [values[metric, layer, epoch] for layer in LAYERS]
        np.testing.assert_allclose(table[epoch, heading].to_numpy(), [*column, np.mean(column)])
    assert list(ccc_table(metrics).columns.get_level_values(0).unique()) == [0, 1, 5]


def probe_metrics() -> pd.DataFrame:
    rows = []
    for epoch, shift in ((2, 0.0), (9, 10.0)):
        for depth, layer in enumerate(LAYERS):
            rows.append(metric_row(epoch, "val", "S3", "probe_accuracy", 70 + 10 * depth + shift,
                                   layer))
            rows.append(metric_row(epoch, "val", "H", "probe_accuracy", 30 + shift, layer))
            rows.append(metric_row(epoch, "val", "S3", "probe_accuracy@trained=S3",
                                   72 + 9 * depth + shift, layer))
    return pd.DataFrame(rows)


def test_probe_table_puts_probes_trained_in_s_next_to_those_trained_in_h():
    table = probe_table(probe_metrics(), "S3")
    assert list(table.index) == list(LAYERS)
    assert list(table.columns) == ["trained in S3", "trained in H"]
    np.testing.assert_allclose(table["trained in H"], [80, 90, 100])
    np.testing.assert_allclose(table["trained in S3"], [82, 91, 100])
    np.testing.assert_allclose(probe_table(probe_metrics(), "S3", epoch=2)["trained in H"],
                               [70, 80, 90])
    assert list(probe_table(probe_metrics(), "H").columns) == ["trained in H"]
    with pytest.raises(ValueError, match="no per-layer probe rows scored in 'S9'"):
        probe_table(probe_metrics(), "S9")


@pytest.mark.parametrize(("epochs", "expected"), [
    ([0, 1, 2, 4, 8, 30], [1, 4, 30]),
    (range(201), [1, 14, 200]),
    ([0, 5], [0, 5]),
    ([3, 0, 7, 1], [1, 3, 7]),
])
def test_pick_epochs_takes_early_geometric_middle_and_last(epochs, expected):
    assert pick_epochs(epochs) == expected
    assert pick_epochs(range(31), n=4) == [1, 3, 10, 30]
