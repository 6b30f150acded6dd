"""A run killed with SIGKILL after a checkpoint and resumed equals the uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from hypbias.rundir import RunDir

pytestmark = pytest.mark.slow

ARGS = ["--set", "train.epochs=8", "--set", "train.save_every=1", "--set", "spaces.random_draws=2",
        "--set", "data.train_per_class=60", "--set", "spaces.hypernyms=[4]", "--no-progress",
        "--no-report"]


def _run(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hypbias", "run", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    full = _run("--out", str(full_dir), *ARGS)
    victim = _run("--out", str(killed_dir), *ARGS)
    first = killed_dir / "checkpoints" / "epoch_001.pt"
    deadline = time.monotonic() + 120
    while not first.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed_dir / "metrics.csv").exists()
    resumed = _run("--resume", str(killed_dir), "--no-progress", "--no-report")
    assert resumed.wait() == 0, resumed.stderr.read()
    assert full.wait() == 0, full.stderr.read()

    a, b = RunDir(full_dir), RunDir(killed_dir)
    for split, stack in a.confusion().items():
        np.testing.assert_array_equal(b.confusion()[split], stack)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    assert a.summary["tau"] == b.summary["tau"]
    timing = ["seconds", "images_per_s"]
    pd.testing.assert_frame_equal(a.log.drop(columns=timing), b.log.drop(columns=timing))


def test_resume_without_checkpoint_is_one_line_error(tmp_path, capsys):
    from hypbias.cli import main

    out = tmp_path / "r"
    assert main(["run", "--out", str(out), "--set", "train.epochs=1", "--set", "spaces.random_draws=1",
                 "--set", "data.train_per_class=5", "--no-progress", "--no-report"]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no epoch_XXX.pt checkpoint to resume from" in err
    assert "\n" not in err
