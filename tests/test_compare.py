"""``hypbias compare`` on fabricated run directories: table, finding, page (with Table 1, Fig. 1a and
Fig. 4 across runs), errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hypbias import Hierarchy
from hypbias.cli import main
from hypbias.errors import ConfigError, DataError
from hypbias.hierarchy.files import write_hierarchy
from hypbias.labelspace import SpaceSet
from hypbias.report.compare import compare_runs, load_run, page_sections
from hypbias.rundir import RunDir

EPOCHS = range(5)


def fake_run(path: Path, loss: str, tau_s4: float, severity: float, acc_h: float) -> Path:
    """A run directory with accuracy curves, severity, NC rows and a summary."""
    rows = []
    for e in EPOCHS:
        frac = e / (len(EPOCHS) - 1)
        for space, final in (("H", acc_h), ("S4", 99.0), ("R4#0", 50.0), ("R4#1", 60.0)):
            rows.append((e, "val", space, "accuracy", final * frac, ""))
            rows.append((e, "val", space, "relative_accuracy", frac, ""))
        rows.append((e, "train", "H", "accuracy", acc_h * frac, ""))
        rows.append((e, "val", "H", "mistake_severity", severity + (1 - frac), ""))
        for k in (1, 5):
            rows.append((e, "val", "H", f"hier_dist@{k}", k * (1 - frac) + 0.5, ""))
        for space in ("H", "S4", "R4#0"):
            rows.append((e, "train", space, "nc1", 10.0 ** (-frac), ""))
        rows.append((e, "val", "H", "covers", 1.0, "layer1"))  # a per-layer metric is ignored
    path.mkdir(parents=True)
    frame = pd.DataFrame(rows, columns=["epoch", "split", "space", "metric", "value", "layer"])
    frame.to_csv(path / "metrics.csv", index=False)
    summary = {"q": 0.95, "draws": 2,
               "tau": {"val": {"H": 4.0, "S4": tau_s4, "R4": 3.5, "R4#0": 3.0, "R4#1": 4.0},
                       "train": {"H": 4.0}},
               "tau_sd": {"val": {"R4": 0.7}}, "final_accuracy": {}, "findings": []}
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "config.yaml").write_text(yaml.safe_dump({"loss": {"name": loss}}))
    write_hierarchy(Hierarchy.from_nested({"g": ["a", "b"], "h": ["c", "d"]}),
                    path / "hierarchy.json")
    RunDir(path).write_spaces(SpaceSet.from_arrays(
        {"S4": np.arange(4), "R4#0": np.array([1, 0, 2, 3]), "R4#1": np.array([0, 2, 1, 3])},
        {"S4": ["R4#0", "R4#1"]}))
    return path


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    return [fake_run(tmp_path / "runs" / "ce", "ce", 3.0, 2.0, 90.0),
            fake_run(tmp_path / "runs" / "hxe", "hxe", 2.0, 1.5, 80.0),
            fake_run(tmp_path / "runs" / "soft", "soft", 3.0, 2.2, 88.0)]


FINDING = (
    "Against 'ce' (val split), 'hxe' shifts hypernym convergence τ_0.95 by -1 epochs on average "
    "over S4 (most in S4: 3 → 2) and changes the final mistake severity by -0.500 "
    "(2.000 → 1.500, -25%) at a fine accuracy of 80.0% (vs 90.0%); 'soft' leaves hypernym "
    "convergence τ_0.95 unchanged (S4 3) and changes the final mistake severity by +0.200 "
    "(2.000 → 2.200, +10%) at a fine accuracy of 88.0% (vs 90.0%)."
)


def test_compare_writes_table_finding_and_page(runs, tmp_path):
    page = compare_runs(runs)
    out = tmp_path / "runs" / "compare"
    assert page == out / "comparison.html"
    assert (out / "comparison.txt").read_text(encoding="utf-8").strip() == FINDING

    table = pd.read_csv(out / "comparison.csv").set_index(["quantity", "space", "split"])
    assert list(table.columns) == ["ce", "hxe", "soft", "Δ hxe", "Δ soft"]
    assert table.loc[("tau_0.95 (epochs)", "S4", "val")].tolist() == [3, 2, 3, -1, 0]
    assert table.loc[("tau_0.95 (epochs)", "R4", "val"), "ce"] == 3.5
    assert ("tau_0.95 (epochs)", "R4#0", "val") not in table.index
    assert table.loc[("final accuracy (%)", "R4", "val"), "hxe"] == pytest.approx(55.0)
    assert table.loc[("final mistake_severity", "H", "val")].tolist() == \
        pytest.approx([2.0, 1.5, 2.2, -0.5, 0.2])
    assert table.loc[("final hier_dist@5", "H", "val"), "soft"] == pytest.approx(0.5)
    assert table.loc[("final nc1", "S4", "train"), "ce"] == pytest.approx(0.1)
    assert ("final nc1", "R4", "train") not in table.index
    assert not table.index.get_level_values("quantity").str.contains("covers").any()

    text = page.read_text(encoding="utf-8")
    assert text.count("<img") == 6 and "data:image/png;base64," in text
    assert "Neural collapse per label space" in text and "Mistake severity" in text
    assert "Hypernym bias across runs" in text
    assert "hxe: " in text and "loss: name=hxe" in text
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(
        f"compare_{stem}.{ext}" for stem in ("accuracy", "nc", "severity", "tau",
                                             "relative_accuracy", "tau_superclasses")
        for ext in ("png", "pdf"))


def html_rows(table: str) -> dict[str, list[str]]:
    """First cell -> the other cells, per row of an HTML table."""
    rows = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
    return {cells[0]: cells[1:] for cells in rows if cells}


def test_table_1_and_the_fig_1a_and_fig_4_overlays_hold_each_run(runs):
    opened = [load_run(p, p.name) for p in runs[:2]]
    section = page_sections(opened, "val", pd.DataFrame(), "")[1]
    table1 = html_rows(section.tables[0])
    assert section.tables[0].count("Table 1") == 1
    assert table1["H"] == ["90.0", "80.0"]  # the last epoch's accuracy, one column a run
    assert table1["R4"] == ["55.0", "55.0"]  # the mean over the draws
    assert table1[""] == ["ce", "hxe"] and list(table1)[2:] == ["H", "S4", "R4"]
    figures = {stem: fig for stem, fig, _ in section.figures}
    rel = figures["compare_relative_accuracy"].axes
    lines = {(ax.get_title().split(" ")[0], line.get_label()): line.get_ydata()
             for ax in rel for line in ax.get_lines() if not line.get_label().startswith("_")}
    for name in ("ce", "hxe"):  # Fig. 1a: one curve per run in each space
        np.testing.assert_allclose(lines[("H", name)], np.linspace(0, 1, len(EPOCHS)))
    ax = figures["compare_tau_superclasses"].axes[0]
    points = {c.get_label(): c.lines[0].get_xydata().tolist() for c in ax.containers}
    assert points == {"hypernym S_n, ce": [[4.0, 3.0]], "random R_n, ce": [[4.0, 3.5]],
                      "hypernym S_n, hxe": [[4.0, 2.0]], "random R_n, hxe": [[4.0, 3.5]]}


def test_compare_without_severity_or_nc_leaves_those_sections_out(tmp_path):
    dirs = []
    for name, tau in (("a", 3.0), ("b", 2.0)):
        path = fake_run(tmp_path / name, "ce", tau, 1.0, 90.0)
        frame = pd.read_csv(path / "metrics.csv")
        frame = frame[frame.metric.isin(["accuracy", "relative_accuracy"])]
        frame.to_csv(path / "metrics.csv", index=False)
        dirs.append(path)
    page = compare_runs(dirs, out=tmp_path / "cmp", names=["base", "new"])
    text = page.read_text(encoding="utf-8")
    assert text.count("<img") == 4 and "Neural collapse" not in text
    assert "mistake severity is not available for both runs" in text


def test_cli_prints_the_finding(runs, tmp_path, capsys):
    assert main(["compare", *map(str, runs), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == FINDING
    assert str(tmp_path / "out" / "comparison.html") in captured.err


def test_missing_run_directory_is_named(runs, tmp_path, capsys):
    missing = tmp_path / "runs" / "nope"
    assert main(["compare", str(runs[0]), str(missing)]) == 2
    assert capsys.readouterr().err.strip() == \
        f"hypbias compare: error: {missing}: no such run directory"


def test_missing_metrics_file_is_named(runs):
    (runs[1] / "metrics.csv").unlink()
    with pytest.raises(DataError, match=str(runs[1] / "metrics.csv")):
        compare_runs(runs)
    assert not (runs[0].parent / "compare").exists()


def test_bad_names_and_single_run(runs):
    with pytest.raises(ConfigError, match=r"--names must give 3 distinct names \(one per run "
                                          r"directory\). Got \['a', 'b'\] instead."):
        compare_runs(runs, names=["a", "b"])
    with pytest.raises(ConfigError, match="compare needs at least two run directories. Got 1."):
        compare_runs(runs[:1])


def test_runs_with_the_same_directory_name_are_told_apart_by_path(tmp_path):
    a = fake_run(tmp_path / "x" / "run", "ce", 3.0, 2.0, 90.0)
    b = fake_run(tmp_path / "y" / "run", "hxe", 2.0, 1.0, 90.0)
    compare_runs([a, b], out=tmp_path / "cmp")
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv").set_index(["quantity", "space"])
    assert list(table.columns[1:]) == [str(a), str(b), f"Δ {b}"]
    assert table.loc[("tau_0.95 (epochs)", "S4"), f"Δ {b}"] == -1.0


def test_nan_metrics_of_a_two_group_space_are_shown_as_na(tmp_path):
    """A space whose every value is NaN (here S2's NC1) keeps its row, shown as n/a."""
    dirs = []
    for name in ("a", "b"):
        path = fake_run(tmp_path / name, "ce", 3.0, 1.0, 90.0)
        frame = pd.read_csv(path / "metrics.csv")
        nc = frame[(frame.metric == "nc1") & (frame.space == "S4")].assign(space="S2", value=np.nan)
        pd.concat([frame, nc]).to_csv(path / "metrics.csv", index=False)
        dirs.append(path)
    page = compare_runs(dirs, out=tmp_path / "cmp")
    lines = (tmp_path / "cmp" / "comparison.csv").read_text(encoding="utf-8").splitlines()
    assert "final nc1,S2,train,n/a,n/a,n/a" in lines
    assert "final nc1,S4,train,0.1,0.1,0.0" in lines
    assert "<td>n/a</td>" in page.read_text(encoding="utf-8")


def test_runs_of_other_classes_are_refused(runs, tmp_path, capsys):
    write_hierarchy(Hierarchy.from_nested({"g": ["a", "b"], "h": ["c", "x"]}),
                    runs[2] / "hierarchy.json")
    assert main(["compare", *map(str, runs), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"hypbias compare: error: {runs[2] / 'hierarchy.json'}: its 4 classes differ "
                   f"from the 4 of {runs[0]} (class 'x' is in one run only); compare runs of one "
                   "dataset")
    assert not (tmp_path / "out").exists()
