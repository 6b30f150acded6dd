"""Parameterised metric names: ``base@key=value`` in the ``metric`` column of ``metrics.csv``.

A measurement that depends on a setting besides epoch, split, space and layer keeps the table's
columns (:data:`hypbias.metrics.rows.COLUMNS`) and carries the setting in its name, as
``hier_dist@k`` carries k:

* ``blur_accuracy@sigma=2``: accuracy on images blurred with σ = 2 (App. C.5);
* ``probe_accuracy@trained=S4``: a linear probe trained in S4, scored in the row's space (Table 7);
* ``self_cover@space=raw``: covers in the raw feature space when a run measures both (Fig. 2a).

>>> param_metric("blur_accuracy", sigma=2.0)
'blur_accuracy@sigma=2'
>>> split_metric("blur_accuracy@sigma=2")
('blur_accuracy', {'sigma': '2'})
>>> topk_ks(["hier_dist@5", "accuracy", "hier_dist@1"])
[1, 5]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hypbias.metrics.hierarchical import topk_name


def param_metric(base: str, **params: Any) -> str:
    """``base@key=value`` for one parameter (floats written with ``:g``)."""
    if len(params) != 1:
        raise ValueError(f"param_metric takes exactly one parameter. Got {sorted(params)} instead.")
    (key, value), = params.items()
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{base}@{key}={shown}"


def split_metric(name: str) -> tuple[str, dict[str, str]]:
    """Inverse of :func:`param_metric`: ``(base, {key: value})``; ``{}`` for a plain name."""
    base, sep, rest = name.partition("@")
    if not sep or "=" not in rest:
        return name, {}
    key, _, value = rest.partition("=")
    return base, {key: value}


def metric_param(name: str, base: str, key: str) -> str | None:
    """The value of ``key`` when ``name`` is ``base@key=value``, else None."""
    got, params = split_metric(name)
    return params.get(key) if got == base else None


def topk_of(name: str) -> int | None:
    """k when ``name`` is the hierarchical top-k distance ``hier_dist@k``
    (:func:`hypbias.metrics.hierarchical.topk_name`), else None."""
    k = name.partition("@")[2]
    return int(k) if k.isdigit() and topk_name(int(k)) == name else None


def topk_ks(names: Iterable[str]) -> list[int]:
    """The k of every ``hier_dist@k`` among ``names``, ascending, each once."""
    return sorted({k for name in names if (k := topk_of(name)) is not None})


__all__ = ["metric_param", "param_metric", "split_metric", "topk_ks", "topk_of"]
