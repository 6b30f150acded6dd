"""Parameterised metric names: ``base@key=value`` and the hierarchical top-k names ``hier_dist@k``."""

from __future__ import annotations

import pytest

from hypbias.analysis.metric_names import metric_param, param_metric, split_metric, topk_ks, topk_of
from hypbias.metrics.hierarchical import topk_name


def test_param_names_round_trip():
    name = param_metric("blur_accuracy", sigma=2.0)
    assert name == "blur_accuracy@sigma=2"
    assert split_metric(name) == ("blur_accuracy", {"sigma": "2"})
    assert metric_param(name, "blur_accuracy", "sigma") == "2"
    assert metric_param(name, "probe_accuracy", "sigma") is None
    assert split_metric("accuracy") == ("accuracy", {})


@pytest.mark.parametrize("k", [1, 5, 10, 123])
def test_topk_names_round_trip(k):
    assert topk_of(topk_name(k)) == k


@pytest.mark.parametrize("name", ["accuracy", "mistake_severity", "hier_dist", "hier_dist@",
                                  "hier_dist@k", "hier_dist@05", "blur_accuracy@sigma=2",
                                  "probe_accuracy@trained=S4"])
def test_other_names_are_not_topk(name):
    assert topk_of(name) is None


def test_topk_ks_are_numeric_and_unique():
    names = ["hier_dist@10", "accuracy", "hier_dist@5", "hier_dist@1", "hier_dist@10"]
    assert topk_ks(names) == [1, 5, 10]  # not the string order 1, 10, 5
    assert topk_ks([]) == []
