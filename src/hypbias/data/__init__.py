"""Datasets: the embedded synthetic default and loaders for on-disk formats."""

from hypbias.data import cifar, dbpedia, imagefolder, synthetic  # noqa: F401  (registration)
from hypbias.data.base import (
    DatasetBundle,
    TensorSplit,
    create_dataset,
    list_datasets,
    register_dataset,
    split_labels,
)
from hypbias.data.synthetic import make_synthetic, synthetic_hierarchy

__all__ = [
    "DatasetBundle",
    "TensorSplit",
    "create_dataset",
    "list_datasets",
    "make_synthetic",
    "register_dataset",
    "split_labels",
    "synthetic_hierarchy",
]
