"""What the per-epoch analyses cost on the embedded default, measured side by side in one run.

Trains the default config (no report) three ways: label-space accuracy only, plus neural collapse
in every label space (two passes over the train split per epoch), plus the layer-wise manifold
analysis at its default epochs. Prints wall time and the ratio to the plain run. UMAP's one-off
numba compilation is paid before timing starts.

Usage: python benchmarks/bench_tracking.py
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

from hypbias.analysis import embed
from hypbias.experiment import run_experiment
from hypbias.train.config import load_config

VARIANTS = {
    "accuracy only": ["nc.every=0", "manifold.every=0"],
    "+ neural collapse (every epoch)": ["manifold.every=0"],
    "+ manifold (default epochs)": ["nc.every=0"],
    "+ both (the default)": [],
}


def main() -> None:
    embed(np.random.default_rng(0).normal(size=(200, 8)), dim=2, n_epochs=5)  # compile numba once
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, overrides) in enumerate(VARIANTS.items()):
            config = load_config(None, overrides)
            start = time.perf_counter()
            run_experiment(config, f"{tmp}/{k}", progress=False, report=False)
            times[name] = time.perf_counter() - start
    base = times["accuracy only"]
    print("embedded default, 30 epochs, no report:")
    for name, seconds in times.items():
        print(f"  {name:34s} {seconds:7.1f} s   {seconds / base:5.2f}x")


if __name__ == "__main__":
    main()
