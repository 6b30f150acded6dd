"""benchmarks/gpu_check.py: the skip without CUDA, and the RESULTS.md section it writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402


def test_without_cuda_it_says_so_and_exits_0(tmp_path):
    results = tmp_path / "RESULTS.md"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--results",
                           str(results)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("gpu-check: skipped, no CUDA device here")
    assert not results.exists()


def test_the_section_is_replaced_and_the_rest_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "machine", lambda: "a machine")
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nintro\n\n## HXE\n\nhxe table\n")
    gpu_check.write_results(results, [("check a", "1 images/s"), ("check b", "x | y")], quick=False)
    gpu_check.write_results(results, [("check c", "2 images/s")], quick=True)
    text = results.read_text()
    assert text.startswith("# Benchmark results\n\nintro\n\n## HXE\n\nhxe table\n\n## GPU check")
    assert text.count("## GPU check") == 1
    assert "| check c | 2 images/s |" in text and "check a" not in text
    assert "Machine: a machine." in text and "with --quick" in text
    gpu_check.write_results(results, [("check b", "x | y")], quick=False)
    assert "| check b | x / y |" in results.read_text()
