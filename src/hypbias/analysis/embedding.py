"""Embedding layer features before measuring covers (Sec. 3.2).

The paper measures covers in a UMAP embedding (M = 10 dimensions): UMAP approximates a manifold on
which the data is uniform, so Euclidean distances there compare classes fairly; in the raw feature
space mutual and self covers do not separate (Fig. 2a vs 2b). ``space="raw"`` keeps the raw features
to reproduce Fig. 2a.

Backends: umap-learn (a dependency of hypbias), or cuML's UMAP when it is installed and the features are
a CUDA tensor. Both are imported only when an embedding is computed. umap-learn is reproducible only
single-threaded, so it always runs with ``n_jobs=1`` and ``random_state=seed``; the settings used are
recorded in :attr:`FeatureEmbedder.settings_`.

For umap-learn with the Euclidean metric and up to :data:`EXACT_KNN_MAX` points, the nearest-neighbour
graph is computed exactly in torch (on the features' device) and passed in as ``precomputed_knn``.
That is what umap-learn itself does below 4096 points; above, it would switch to approximate
NN-descent, whose one-off compilation costs tens of seconds per process.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import numpy as np
import torch

from hypbias._validation import check_choice, check_float, check_int
from hypbias.errors import missing_dependency

SPACES = ("umap", "raw")
BACKENDS = ("auto", "umap-learn", "cuml")
EXACT_KNN_MAX = 20_000
"""Largest number of points whose neighbour graph is computed exactly (O(n²) distances, chunked)."""


def _cuml_available() -> bool:
    return importlib.util.find_spec("cuml") is not None


class FeatureEmbedder:
    """Embed features of shape (n_samples, n_features) into ``dim`` dimensions (scikit-learn style).

    Parameters
    ----------
    dim : int >= 1, M, the embedding dimension (10 in the paper)
    seed : int >= 0, UMAP's ``random_state``
    space : ``"umap"`` or ``"raw"`` (features returned unchanged; ``dim`` is ignored)
    n_neighbors : int >= 2, UMAP's neighbourhood size
    min_dist : float >= 0
    metric : str, UMAP's input metric
    n_epochs : int, optional; UMAP's optimisation epochs (None: its default, 500 below 10 000
        points); fewer is faster and coarser
    backend : ``"auto"`` (cuML for CUDA tensors when installed, else umap-learn), ``"umap-learn"``
        or ``"cuml"``

    Attributes
    ----------
    settings_ : dict, everything that determines the embedding (backend, package version, seed,
        n_jobs, UMAP parameters), set by :meth:`fit_transform`
    """

    def __init__(self, dim: int = 10, seed: int = 0, space: str = "umap", n_neighbors: int = 15,
                 min_dist: float = 0.1, metric: str = "euclidean", n_epochs: int | None = None,
                 backend: str = "auto") -> None:
        owner = "embed"
        self.dim = check_int(dim, "dim", owner, low=1)
        self.seed = check_int(seed, "seed", owner, low=0)
        self.space = check_choice(space, "space", owner, SPACES)
        self.n_neighbors = check_int(n_neighbors, "n_neighbors", owner, low=2)
        self.min_dist = check_float(min_dist, "min_dist", owner, low=0)
        self.metric = metric
        self.n_epochs = None if n_epochs is None else check_int(n_epochs, "n_epochs", owner, low=1)
        self.backend = check_choice(backend, "backend", owner, BACKENDS)

    def _resolve_backend(self, features: Any) -> str:
        if self.backend != "auto":
            return self.backend
        on_cuda = isinstance(features, torch.Tensor) and features.is_cuda
        return "cuml" if on_cuda and _cuml_available() else "umap-learn"

    def fit_transform(self, features: Any) -> Any:
        """Embed ``features`` (array or tensor of shape (n_samples, n_features)).

        Returns an array of shape (n_samples, dim), float32, of the input's kind: a NumPy array for
        NumPy input, a tensor on the input's device for tensor input. ``space="raw"`` returns
        ``features`` itself.
        """
        shape = tuple(features.shape) if hasattr(features, "shape") else np.shape(features)
        if len(shape) != 2 or shape[0] < 2:
            raise ValueError(
                "The 'features' parameter of embed must have shape (n_samples, n_features) with "
                f"n_samples >= 2. Got shape {shape} instead."
            )
        if self.space == "raw":
            self.settings_ = {"space": "raw"}
            return features
        backend = self._resolve_backend(features)
        params = {"n_components": self.dim, "n_neighbors": min(self.n_neighbors, shape[0] - 1),
                  "min_dist": self.min_dist, "metric": self.metric, "random_state": self.seed,
                  "n_epochs": self.n_epochs}
        if backend == "cuml":
            out, version = _cuml_embed(features, params)
            extra: dict[str, Any] = {}
        else:
            exact = self.metric == "euclidean" and shape[0] <= EXACT_KNN_MAX
            knn = exact_knn(features, params["n_neighbors"]) if exact else None
            out, version = _umap_learn_embed(features, params, knn)
            extra = {"n_jobs": 1, "knn": "exact" if exact else "umap-learn"}
        self.settings_ = {"space": "umap", "backend": backend, "version": version, **extra,
                          **params}
        if isinstance(features, torch.Tensor):
            return torch.as_tensor(np.asarray(out, dtype=np.float32), device=features.device)
        return np.asarray(out, dtype=np.float32)


def _as_numpy(features: Any) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        return features.detach().float().cpu().numpy()
    return np.asarray(features, dtype=np.float32)


def exact_knn(features: Any, k: int, chunk_elements: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean k nearest neighbours of every point, the point itself first.

    ``features`` has shape (n, d); returns (indices, distances), arrays of shape (n, k) (int64,
    float32), as umap-learn's ``precomputed_knn`` expects. Distances are computed in torch on the
    features' device, ``chunk_elements`` entries of the distance matrix at a time.
    """
    x = torch.as_tensor(features).detach().float()
    n = len(x)
    step = max(1, chunk_elements // n)
    indices, dists = [], []
    for start in range(0, n, step):
        d = torch.cdist(x[start: start + step], x)
        rows = torch.arange(len(d), device=d.device)
        d[rows, rows + start] = -1.0  # the point itself comes first, at distance 0
        value, index = d.topk(k, dim=1, largest=False)
        indices.append(index.cpu())
        dists.append(value.clamp_(min=0).cpu())
    return torch.cat(indices).numpy(), torch.cat(dists).numpy()


def _umap_learn_embed(features: Any, params: dict[str, Any],
                      knn: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, str]:
    try:
        import umap
    except ImportError:
        raise missing_dependency("umap-learn", None, "The UMAP embedding of layer features") from None
    if knn is not None:
        params = {**params, "precomputed_knn": (*knn, None)}
    model = umap.UMAP(n_jobs=1, transform_seed=params["random_state"], **params)
    # umap-learn resets numba's thread count when it finishes; with numba's OpenMP layer that is
    # torch's OpenMP pool too, so torch's setting is restored here.
    torch_threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings():
            # Without a search index umap-learn cannot transform new points; we never do.
            warnings.filterwarnings("ignore", message="precomputed_knn", category=UserWarning)
            out = model.fit_transform(_as_numpy(features))
    finally:
        torch.set_num_threads(torch_threads)
    return out, getattr(umap, "__version__", "unknown")


def _cuml_embed(features: Any, params: dict[str, Any]) -> tuple[np.ndarray, str]:
    try:
        import cuml
        from cuml.manifold import UMAP
    except ImportError:
        raise missing_dependency("cuml", None, "The cuML UMAP backend",
                                 hint="RAPIDS cuML, see https://docs.rapids.ai/install") from None
    data = features.detach().float().contiguous() if isinstance(features, torch.Tensor) else (
        _as_numpy(features))
    args = {k: v for k, v in params.items() if v is not None}
    model = UMAP(output_type="numpy", **args)
    return model.fit_transform(data), getattr(cuml, "__version__", "unknown")


def embed(features: Any, dim: int = 10, seed: int = 0, space: str = "umap",
          n_neighbors: int = 15, **kwargs: Any) -> Any:
    """Embed features of shape (n_samples, n_features) with UMAP into ``dim`` dimensions (Sec. 3.2).

    Shorthand for ``FeatureEmbedder(dim, seed, space, n_neighbors, **kwargs).fit_transform(features)``;
    ``kwargs`` are ``min_dist``, ``metric``, ``n_epochs`` and ``backend``. Returns an array of shape
    (n_samples, dim) of the input's kind; ``space="raw"`` returns ``features`` unchanged.
    """
    return FeatureEmbedder(dim, seed, space, n_neighbors, **kwargs).fit_transform(features)


__all__ = ["BACKENDS", "EXACT_KNN_MAX", "SPACES", "FeatureEmbedder", "embed", "exact_knn"]
