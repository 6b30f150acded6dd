"""Shared fixtures: seeded generators, small hierarchies, and one default run per test session."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import settings

from hypbias import Hierarchy

# Two pytest workers share two cores: one thread each, or OpenMP's busy-waiting threads contend and
# CPU kernels run tens of times slower.
torch.set_num_threads(1)

settings.register_profile("hypbias", deadline=None, max_examples=60, derandomize=True)
settings.load_profile("hypbias")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def small_tree() -> Hierarchy:
    """An unbalanced tree: root -> {a -> {a1 -> x,y,z ; a2 -> w}, b -> {u, v}}."""
    return Hierarchy.from_nested({"a": {"a1": ["x", "y", "z"], "a2": ["w"]}, "b": ["u", "v"]})


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    """The embedded default experiment, run once (about 10 s on 2 cores) with its report."""
    from hypbias.experiment import run_experiment
    from hypbias.train.config import load_config

    out = tmp_path_factory.mktemp("default_run")
    return run_experiment(load_config(None), out, progress=False)
