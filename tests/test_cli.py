"""The command line: run, report, errors as one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hypbias.cli import main

TINY = ["--set", "train.epochs=2", "--set", "data.train_per_class=10", "--set", "data.val_per_class=5",
        "--set", "spaces.random_draws=2", "--no-progress"]


def test_python_m_hypbias_help():
    out = subprocess.run([sys.executable, "-m", "hypbias", "--help"], capture_output=True, text=True,
                         check=True)
    assert "run" in out.stdout and "report" in out.stdout


def test_run_then_report(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), *TINY]) == 0
    assert (out / "report.html").exists()
    assert "the paper's claim that hypernyms are learned before random groupings" in capsys.readouterr().out
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").exists()
    # a second run into the same directory is refused unless --overwrite
    assert main(["run", "--out", str(out), *TINY]) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    assert main(["run", "--out", str(out), "--overwrite", "--no-report", *TINY]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--set", "train.lrr=1"], "unknown key 'train.lrr'"),
        (["run", "missing.yaml"], "missing.yaml: no such config file"),
        (["report", "/nonexistent/run"], "/nonexistent/run/config.yaml: missing"),
        (["run", "--set", "spaces.hypernyms=[5]"], "cannot cut 5 groups"),
    ],
)
def test_errors_are_one_line(args, message, capsys, tmp_path):
    if args[0] == "run":
        args = [*args, "--out", str(tmp_path / "x"), *TINY]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
