"""Analyses of trained models and runs: label spaces, layer-wise manifold alignment, linear probes.

Importing this package is cheap: UMAP (umap-learn or cuML) is imported only when an embedding is
computed.
"""

from hypbias.analysis.embedding import FeatureEmbedder, embed
from hypbias.analysis.manifold import Labelled, ManifoldSettings, cover_rows, manifold_metrics
from hypbias.analysis.probes import LinearProbe, probe, probe_in_spaces
from hypbias.analysis.sampling import QuerySupport, probe_split, sample_query_support

__all__ = [
    "FeatureEmbedder",
    "Labelled",
    "LinearProbe",
    "ManifoldSettings",
    "QuerySupport",
    "cover_rows",
    "embed",
    "manifold_metrics",
    "probe",
    "probe_in_spaces",
    "probe_split",
    "sample_query_support",
]
