"""Few-shot linear probes of layer features (App. C.4.2; Table 7, Fig. 6b–c, Fig. 14–15).

A probe is a linear classifier trained on K_probe examples per class (10 by default, see
:func:`hypbias.analysis.sampling.probe_split`) in the fine space H and scored on the rest of the split
in H and in every label space: a fine prediction counts as correct in X when it falls in the true
class's group, exactly as the greedy classifier of Eq. 3–7.

Table 7 also trains probes in a hypernym space S (the targets are the groups t[y]);
:func:`probe_in_spaces` scores such a probe in every space its groups determine: S itself and every
coarser space whose groups are unions of S's groups (a probe trained in S cannot be scored in H).

Two learners, both on standardised features and both in torch (CPU or CUDA, no scikit-learn):

* ``"logistic"``: multinomial logistic regression, mean cross-entropy + (l2 / 2)·‖W‖², L-BFGS;
* ``"ridge"``: the closed-form regularised least squares on one-hot targets (Raghu et al. 2021),
  min ‖X W + b − Y‖² + alpha·‖W‖².
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hypbias._validation import check_choice, check_float, check_int, check_labels
from hypbias.labelspace import LabelSpace
from hypbias.metrics.accuracy import label_space_accuracy

METHODS = ("logistic", "ridge")


def _features(x: Any, name: str, device: torch.device | None = None) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2 or len(t) == 0:
        raise ValueError(
            f"The '{name}' parameter of LinearProbe must have shape (n_samples, n_features). "
            f"Got shape {tuple(t.shape)} instead."
        )
    t = t.detach().to(device) if device is not None else t.detach()
    return t.to(torch.float64 if t.device.type == "cpu" else torch.float32)


class LinearProbe:
    """A linear classifier of features, scikit-learn style (``fit`` / ``predict`` / ``score``).

    Parameters
    ----------
    method : ``"logistic"`` or ``"ridge"``
    l2 : float >= 0, the logistic L2 weight on the mean loss (1e-3: small)
    alpha : float >= 0, the ridge penalty
    max_iter : int, L-BFGS iterations of the logistic probe

    Attributes (after :meth:`fit`)
    ------------------------------
    mean_, scale_ : tensors of shape (n_features,), the standardisation
    weight_ : tensor of shape (n_features, C); bias_ : tensor of shape (C,)
    num_classes_ : int
    """

    def __init__(self, method: str = "logistic", l2: float = 1e-3, alpha: float = 1.0,
                 max_iter: int = 200) -> None:
        owner = "LinearProbe"
        self.method = check_choice(method, "method", owner, METHODS)
        self.l2 = check_float(l2, "l2", owner, low=0)
        self.alpha = check_float(alpha, "alpha", owner, low=0)
        self.max_iter = check_int(max_iter, "max_iter", owner, low=1)

    def fit(self, features: Any, labels: Any, num_classes: int | None = None) -> LinearProbe:
        """Train on features of shape (n_samples, n_features) and fine labels of shape (n_samples,)."""
        x = _features(features, "features")
        y_np = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if num_classes is None:
            num_classes = int(y_np.max()) + 1 if y_np.size else 1
        c = check_int(num_classes, "num_classes", "LinearProbe.fit", low=1)
        y_np = check_labels(y_np, "labels", "LinearProbe.fit", c)
        if len(y_np) != len(x):
            raise ValueError(
                f"The 'labels' parameter of LinearProbe.fit must have one label per row ({len(x)}). "
                f"Got {len(y_np)} instead."
            )
        y = torch.as_tensor(y_np, device=x.device)
        self.mean_ = x.mean(dim=0)
        scale = x.std(dim=0, correction=0)
        self.scale_ = torch.where(scale > 0, scale, torch.ones_like(scale))
        z = (x - self.mean_) / self.scale_
        self.num_classes_ = c
        if self.method == "ridge":
            self.weight_, self.bias_ = _ridge(z, F.one_hot(y, c).to(z.dtype), self.alpha)
        else:
            self.weight_, self.bias_ = _logistic(z, y, c, self.l2, self.max_iter)
        return self

    def decision_function(self, features: Any) -> torch.Tensor:
        """Scores of shape (n_samples, C), on the probe's device."""
        x = _features(features, "features", self.mean_.device).to(self.mean_.dtype)
        return ((x - self.mean_) / self.scale_) @ self.weight_ + self.bias_

    def predict(self, features: Any) -> np.ndarray:
        """Fine predictions, int array of shape (n_samples,)."""
        return self.decision_function(features).argmax(dim=1).cpu().numpy()

    def score(self, features: Any, labels: Any,
              spaces: Mapping[str, LabelSpace | None] | None = None) -> dict[str, float]:
        """Accuracy in percent in each space (``None`` for H), keyed by the spaces' names."""
        spaces = {"H": None} if spaces is None else spaces
        y = check_labels(np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels),
                         "labels", "LinearProbe.score", self.num_classes_)
        pred = self.predict(features)
        c = self.num_classes_
        confusion = np.bincount(y * c + pred, minlength=c * c).reshape(c, c)
        return {name: float(label_space_accuracy(confusion, space)) for name, space in spaces.items()}


def _ridge(z: torch.Tensor, targets: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """argmin ‖z W + b − T‖² + alpha‖W‖² for centred z: b = mean(T); W solves the normal equations.

    The primal system (n_features × n_features) or the dual one (n_samples × n_samples), whichever is
    smaller; they give the same W. With alpha = 0 a singular system takes the minimum-norm solution.
    """
    t_mean = targets.mean(dim=0)
    tc = targets - t_mean
    n, d = z.shape
    primal = d <= n
    gram = z.T @ z if primal else z @ z.T
    gram = gram + alpha * torch.eye(len(gram), dtype=z.dtype, device=z.device)
    rhs = z.T @ tc if primal else tc
    sol = torch.linalg.solve(gram, rhs) if alpha > 0 else torch.linalg.pinv(gram) @ rhs
    return (sol if primal else z.T @ sol), t_mean


def _logistic(z: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float,
              max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression from a zero start, by L-BFGS with a strong-Wolfe search."""
    weight = torch.zeros((z.shape[1], num_classes), dtype=z.dtype, device=z.device,
                         requires_grad=True)
    bias = torch.zeros(num_classes, dtype=z.dtype, device=z.device, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                            tolerance_grad=1e-5, tolerance_change=1e-10,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z @ weight + bias, y) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return weight.detach(), bias.detach()


def probe(train_features: Any, train_labels: Any, test_features: Any, test_labels: Any,
          spaces: Mapping[str, LabelSpace | None] | None = None, method: str = "logistic",
          num_classes: int | None = None, **kwargs: Any) -> dict[str, float]:
    """Train a linear probe in H and score it in H and in every label space (App. C.4).

    Parameters
    ----------
    train_features : array or tensor of shape (n_train, n_features)
    train_labels : int array of shape (n_train,), fine labels
    test_features : array or tensor of shape (n_test, n_features)
    test_labels : int array of shape (n_test,)
    spaces : dict name -> LabelSpace, or None for the fine space H; default ``{"H": None}``
    method : ``"logistic"`` or ``"ridge"``
    num_classes : int, optional; default the spaces' class count, else the largest label + 1
    kwargs : ``l2``, ``alpha``, ``max_iter`` of :class:`LinearProbe`

    Returns
    -------
    dict name -> accuracy in percent (greedy in the space, Eq. 3–7).
    """
    spaces = {"H": None} if spaces is None else dict(spaces)
    sizes = {s.num_classes for s in spaces.values() if s is not None}
    if len(sizes) > 1 or (num_classes is not None and sizes - {num_classes}):
        raise ValueError(
            f"The 'spaces' parameter of probe must map {num_classes or 'the same number of'} "
            f"classes. Got spaces of {sorted(sizes)} classes instead."
        )
    if num_classes is None and sizes:
        num_classes = sizes.pop()
    if num_classes is None:
        top = [np.max(np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y))
               for y in (train_labels, test_labels) if len(y)]
        num_classes = int(max(top)) + 1
    model = LinearProbe(method, **kwargs).fit(train_features, train_labels, num_classes)
    return model.score(test_features, test_labels, spaces)


def group_map(finer: LabelSpace | None, coarser: LabelSpace | None,
              num_classes: int) -> np.ndarray | None:
    """The map from the groups of ``finer`` to those of ``coarser``, or None when there is none.

    ``None`` stands for H. Returns an int array m of shape (groups of ``finer``,) with
    ``coarser.t == m[finer.t]``, when every group of ``finer`` lies inside one group of ``coarser``.
    """
    fine_t = np.arange(num_classes) if finer is None else finer.t
    coarse_t = np.arange(num_classes) if coarser is None else coarser.t
    m = np.full(int(fine_t.max()) + 1, -1, dtype=np.int64)
    m[fine_t] = coarse_t
    return m if np.array_equal(m[fine_t], coarse_t) else None


def probe_in_spaces(train_features: Any, train_labels: Any, test_features: Any, test_labels: Any,
                    spaces: Mapping[str, LabelSpace | None], train_in: Sequence[str],
                    method: str = "logistic", num_classes: int | None = None,
                    **kwargs: Any) -> dict[tuple[str, str], float]:
    """Train one probe per space of ``train_in`` and score each in every space it determines (Table 7).

    Parameters
    ----------
    train_features, test_features : arrays or tensors of shape (n_train | n_test, n_features)
    train_labels, test_labels : int arrays of fine labels, shapes (n_train,) and (n_test,)
    spaces : dict name -> LabelSpace (None for H): the spaces to train in and score in
    train_in : names among ``spaces``; the probe trained in X learns the groups t_X[y]
    method, num_classes, kwargs : as for :func:`probe`

    Returns
    -------
    dict (trained in, scored in) -> accuracy in percent, for every pair where the scored space is
    the trained one or a coarsening of it (:func:`group_map`).
    """
    unknown = [name for name in train_in if name not in spaces]
    if unknown:
        raise ValueError(
            f"The 'train_in' parameter of probe_in_spaces must name spaces among "
            f"{', '.join(map(repr, spaces))}. Got {unknown[0]!r} instead."
        )
    y_train = np.asarray(train_labels.cpu() if isinstance(train_labels, torch.Tensor) else train_labels)
    y_test = np.asarray(test_labels.cpu() if isinstance(test_labels, torch.Tensor) else test_labels)
    if num_classes is None:
        sizes = {s.num_classes for s in spaces.values() if s is not None}
        num_classes = sizes.pop() if sizes else int(max(y_train.max(), y_test.max())) + 1
    y_train = check_labels(y_train, "train_labels", "probe_in_spaces", num_classes)
    y_test = check_labels(y_test, "test_labels", "probe_in_spaces", num_classes)
    out: dict[tuple[str, str], float] = {}
    for trained in train_in:
        space = spaces[trained]
        t = np.arange(num_classes) if space is None else space.t
        groups = num_classes if space is None else space.num_groups
        model = LinearProbe(method, **kwargs).fit(train_features, t[y_train], groups)
        pred = model.predict(test_features)
        for scored, target in spaces.items():
            m = group_map(space, target, num_classes)
            if m is not None:
                truth = y_test if target is None else target.t[y_test]
                out[trained, scored] = float(100.0 * np.mean(m[pred] == truth))
    return out


__all__ = ["METHODS", "LinearProbe", "group_map", "probe", "probe_in_spaces"]
