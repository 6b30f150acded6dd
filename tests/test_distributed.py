"""torchrun with 2 gloo processes records what one process records."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from hypbias.rundir import RunDir

pytestmark = pytest.mark.slow

ARGS = ["--set", "train.epochs=6", "--set", "spaces.random_draws=2", "--set", "spaces.hypernyms=[4]",
        "--set", "track.splits=[val,train]", "--no-progress", "--no-report"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, double = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, "-m", "hypbias", "run", "--out", str(single), *ARGS], env=env,
                   check=True, capture_output=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           f"--master_port={_free_port()}", "-m", "hypbias", "run", "--out", str(double), *ARGS]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    a, b = RunDir(single), RunDir(double)
    assert b.file("environment.json").read_text().count('"world_size": 2') == 1
    for split in ("val", "train"):
        np.testing.assert_array_equal(a.confusion()[split][0], b.confusion()[split][0])
        counts = a.confusion()[split].sum(axis=(1, 2)).tolist()
        assert counts == b.confusion()[split].sum(axis=(1, 2)).tolist()  # no padded duplicates
    final_a = a.summary["final_accuracy"]["val"]["H"]
    final_b = b.summary["final_accuracy"]["val"]["H"]
    assert abs(final_a - final_b) <= 1.0
