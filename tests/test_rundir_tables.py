"""Run-directory tables: CSV always, Parquet only with pyarrow, never two copies that differ."""

from __future__ import annotations

import pandas as pd
import pytest

from hypbias import rundir
from hypbias.rundir import RunDir


def _frame(value: float) -> pd.DataFrame:
    return pd.DataFrame({"epoch": [0], "split": ["val"], "space": ["H"], "metric": ["accuracy"],
                         "value": [value], "layer": [""]})


def test_without_pyarrow_only_csv_is_written_and_a_stale_parquet_is_removed(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    run = RunDir(tmp_path)
    run.write_table("metrics", _frame(1.0))
    assert (tmp_path / "metrics.parquet").exists()
    monkeypatch.setattr(rundir, "_has_pyarrow", lambda: False)
    run.write_table("metrics", _frame(2.0))
    assert not (tmp_path / "metrics.parquet").exists()
    assert RunDir(tmp_path).metrics.value.tolist() == [2.0]


def test_with_pyarrow_both_copies_hold_the_same_table(tmp_path):
    pytest.importorskip("pyarrow")
    RunDir(tmp_path).write_table("metrics", _frame(3.0))
    csv = pd.read_csv(tmp_path / "metrics.csv", keep_default_na=False, dtype={"layer": str})
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "metrics.parquet"), csv)
