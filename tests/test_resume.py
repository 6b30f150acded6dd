"""Killed runs: SIGKILL then --resume equals the uninterrupted run; a killed --overwrite leaves the old
run intact or the new run resumable; --resume accepts only changes of safe keys."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from hypbias.cli import main
from hypbias.rundir import OVERWRITE_MARKER, RunDir

TINY = """\
seed: 0
data: {name: synthetic, branching: [2, 2, 2], train_per_class: 40, val_per_class: 10}
model: {name: mlp, hidden: [16]}
train: {epochs: 6, batch_size: 16, lr: 0.05, save_every: 1}
track: {splits: [val, train]}
spaces: {hypernyms: [2, 4], random_draws: 2}
nc: {every: 1}
"""
QUIET = ["--no-progress", "--no-report"]
TIMING = ["seconds", "images_per_s"]


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def _run(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hypbias", "run", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_same_run(a: Path, b: Path) -> None:
    """Every measured array and table of two run directories are equal (timings aside)."""
    ra, rb = RunDir(a), RunDir(b)
    for split, stack in ra.confusion().items():
        np.testing.assert_array_equal(rb.confusion()[split], stack)
    pd.testing.assert_frame_equal(ra.metrics, rb.metrics)
    with np.load(a / "nc.npz") as na, np.load(b / "nc.npz") as nb:
        for key in na.files:
            np.testing.assert_array_equal(na[key], nb[key])
    assert ra.summary["tau"] == rb.summary["tau"]
    pd.testing.assert_frame_equal(ra.log.drop(columns=TIMING), rb.log.drop(columns=TIMING))


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tiny, tmp_path):
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    assert main(["run", str(tiny), "--out", str(full_dir), *QUIET]) == 0
    victim = _run(str(tiny), "--out", str(killed_dir), *QUIET)
    first = killed_dir / "checkpoints" / "epoch_001.pt"
    deadline = time.monotonic() + 120
    while not first.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed_dir / "metrics.csv").exists()
    assert main(["run", "--resume", str(killed_dir), *QUIET]) == 0
    assert_same_run(full_dir, killed_dir)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the overwrite marker and temporary files."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != OVERWRITE_MARKER and not p.name.endswith(".tmp")}


@pytest.mark.slow
def test_sigkill_during_overwrite_leaves_the_old_run_or_a_resumable_new_one(tiny, tmp_path):
    """SIGKILL at seeded random moments of ``--overwrite`` (and as soon as each step's file
    appears): the directory holds the old run unchanged, or a new run that ``--resume`` completes
    to the arrays of an uninterrupted run."""
    old, reference = tmp_path / "old", tmp_path / "reference"
    new_args = ["--set", "train.lr=0.02", "--set", "train.epochs=4", *QUIET]
    assert main(["run", str(tiny), "--out", str(old), *QUIET, "--set", "train.epochs=3"]) == 0
    assert main(["run", str(tiny), "--out", str(reference), *new_args]) == 0
    old_files = snapshot(old)
    clock = time.monotonic()
    timed = _run(str(tiny), "--out", str(tmp_path / "timed"), *new_args)
    assert timed.wait() == 0
    duration = time.monotonic() - clock
    rng = np.random.default_rng(2024)
    moments: list[float | Callable[[Path], bool]] = [
        *rng.uniform(0.3 * duration, duration, size=4),
        lambda d: (d / OVERWRITE_MARKER).exists(),  # before its config.yaml replaces the old one
        lambda d: "lr: 0.02" in (d / "config.yaml").read_text(),  # the old files being removed
        lambda d: (d / "checkpoints" / "epoch_004.pt").exists(),  # the outputs being written
    ]
    outcomes = []
    for k, moment in enumerate(moments):
        target = tmp_path / f"target{k}"
        shutil.copytree(old, target)
        victim = _run(str(tiny), "--out", str(target), "--overwrite", *new_args)
        _kill_at(victim, target, moment)
        if snapshot(target) == old_files:
            outcomes.append("old run intact")
            continue
        if not RunDir(target).is_complete:
            assert main(["run", "--resume", str(target), *QUIET]) == 0
            outcomes.append("new run resumed")
        else:
            outcomes.append("new run complete")
        assert_same_run(reference, target)
        assert yaml.safe_load((target / "config.yaml").read_text())["train"]["lr"] == 0.02
        assert not (target / OVERWRITE_MARKER).exists()
    assert "new run resumed" in outcomes, outcomes


def _kill_at(victim: subprocess.Popen, target: Path, moment: float | Callable[[Path], bool]) -> None:
    """SIGKILL after ``moment`` seconds, or as soon as ``moment(target)`` holds."""
    start, deadline = time.monotonic(), time.monotonic() + 120
    while victim.poll() is None and time.monotonic() < deadline:
        due = moment(target) if callable(moment) else time.monotonic() - start >= moment
        if due:
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    victim.wait()


def test_resume_of_a_finished_run_is_one_line_error(tiny, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", str(tiny), "--out", str(out), *QUIET, "--set", "train.epochs=1"]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"hypbias run: error: {out}: the run is complete, there is nothing to resume "
                   f"('hypbias report {out}' redraws its report)")


def _killed_copy(finished: Path, target: Path, keep_epochs: int) -> Path:
    """A copy of a finished run as if killed after checkpoint ``keep_epochs``."""
    shutil.copytree(finished, target)
    for entry in target.iterdir():
        if entry.name not in ("config.yaml", "checkpoints"):
            entry.unlink()
    for ckpt in (target / "checkpoints").iterdir():
        if int(ckpt.stem.split("_")[1]) > keep_epochs:
            ckpt.unlink()
    return target


@pytest.mark.slow
def test_resume_accepts_changed_safe_keys_only(tiny, tmp_path):
    full = tmp_path / "full"
    assert main(["run", str(tiny), "--out", str(full), *QUIET]) == 0
    killed = _killed_copy(full, tmp_path / "killed", keep_epochs=2)
    config = yaml.safe_load((killed / "config.yaml").read_text())
    config["train"]["num_workers"] = 0 if config["train"]["num_workers"] else 1
    config["log"]["project"] = "another project"
    (killed / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["run", "--resume", str(killed), *QUIET]) == 0
    assert_same_run(full, killed)


@pytest.mark.slow
def test_resume_without_a_checkpoint_trains_from_the_start(tiny, tmp_path):
    full = tmp_path / "full"
    assert main(["run", str(tiny), "--out", str(full), *QUIET]) == 0
    killed = _killed_copy(full, tmp_path / "killed", keep_epochs=-1)
    assert main(["run", "--resume", str(killed), *QUIET]) == 0
    assert_same_run(full, killed)


def test_overwrite_removes_every_file_of_the_earlier_run(tiny, tmp_path):
    out = tmp_path / "r"
    assert main(["run", str(tiny), "--out", str(out), *QUIET]) == 0
    (out / "figures").mkdir()
    (out / "figures" / "old.png").write_bytes(b"png")
    (out / "notes.txt").write_text("mine")
    (out / "checkpoints.json").write_text("{}")  # as analyze-checkpoints writes it
    assert main(["run", str(tiny), "--out", str(out), "--overwrite", *QUIET,
                 "--set", "train.epochs=2", "--set", "train.save_every=0"]) == 0
    assert not (out / "checkpoints").exists() and not (out / "figures").exists()
    assert not (out / "checkpoints.json").exists()
    assert (out / "notes.txt").read_text() == "mine"  # not a run file: kept
    assert RunDir(out).confusion()["val"].shape[0] == 3


def test_a_checkpoint_holds_the_epoch_log_once_in_the_trackers_state(tiny, tmp_path):
    out = tmp_path / "r"
    assert main(["run", str(tiny), "--out", str(out), *QUIET, "--set", "train.epochs=1"]) == 0
    payload = torch.load(out / "checkpoints" / "epoch_001.pt", weights_only=True)
    assert "log" not in payload
    logged = pd.DataFrame(payload["tracker"]["log"])
    pd.testing.assert_frame_equal(logged.drop(columns=TIMING),
                                  RunDir(out).log.drop(columns=TIMING), check_like=True)
