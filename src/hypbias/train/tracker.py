"""The :class:`Tracker`: per-epoch sufficient statistics, usable inside any training loop.

    tracker = hb.Tracker.from_hierarchy(hierarchy, splits=("val", "train"), nc=True)
    tracker.bind(model)                        # any nn.Module: features = the input of its head
    for epoch in range(epochs + 1):            # epoch 0: before any parameter update
        if epoch:
            train_one_epoch(model)
        tracker.evaluate(model, val_loader, split="val")
        tracker.evaluate(model, train_eval_loader, split="train")   # NC: both passes
        tracker.end_epoch(epoch, log={"loss": loss})
    tracker.save("runs/mine")                  # the run directory of ``hypbias run``

``tracker.log_to("runs/mine", tensorboard=True)`` before the first epoch rewrites ``log.csv`` after
every epoch and sends each epoch's numbers to TensorBoard (W&B, MLflow, a console line), the hook
that ``hypbias run`` and the integrations use too (:mod:`hypbias.train.loggers`).

:meth:`Tracker.evaluate` runs every pass the components need over any re-iterable of
``(inputs, targets)``; loops that run the model themselves call :meth:`Tracker.update` (and the
second-pass hooks) instead. Components (neural-collapse statistics, hierarchical metrics, manifold
analysis) plug in through :class:`TrackerComponent`; they see the same evaluation batches, so no
label space costs another pass over the data.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hypbias._validation import check_int
from hypbias.metrics._inputs import tracked_batch
from hypbias.metrics.confusion import ConfusionMatrix
from hypbias.metrics.rows import MetricRow
from hypbias.train import distributed
from hypbias.train.component import TrackerComponent
from hypbias.train.head import find_head, head_input, logits_of, model_device, to_device

if TYPE_CHECKING:
    from hypbias.hierarchy.tree import Hierarchy
    from hypbias.labelspace.spaceset import SpaceSet
    from hypbias.rundir import RunDir
    from hypbias.train.loggers import EpochLogger

__all__ = ["Tracker", "TrackerComponent"]


class Tracker:
    """Records the fine confusion matrix of each split at every epoch, plus component metrics.

    Parameters
    ----------
    num_classes : int
        C.
    splits : sequence of str
        Splits to record, e.g. ``("val",)`` or ``("val", "train")``.
    components : iterable of TrackerComponent
        Extra statistics fed from the same evaluation batches.
    hierarchy : Hierarchy, optional
        The class hierarchy; :meth:`save` needs it (:meth:`from_hierarchy` sets it).
    spaces : SpaceSet, optional
        The label spaces :meth:`save` derives metrics for and the loggers report; by default none
        besides H.
    config : dict, optional
        The options in the layout of a config file, written to ``config.yaml`` by :meth:`save`.
    loggers : iterable of EpochLogger
        Called with each closed epoch (see :meth:`log_to` and :mod:`hypbias.train.loggers`).

    Attributes
    ----------
    epochs : list of int
        The epochs recorded so far (0 = before training).
    rows : list of dict
        Long-format metric rows produced by the components.
    log : list of dict
        One row per epoch for ``log.csv``: ``epoch``, the values passed as ``end_epoch(log=...)``,
        ``acc_<split>`` (fine accuracy, percent) and ``seconds`` since the first epoch closed
        (unless ``log`` gave them).
    loggers : list of EpochLogger
    """

    def __init__(self, num_classes: int, splits: Sequence[str] = ("val",),
                 components: Iterable[TrackerComponent] = (), *, hierarchy: Hierarchy | None = None,
                 spaces: SpaceSet | None = None, config: Mapping[str, Any] | None = None,
                 loggers: Iterable[EpochLogger] = ()) -> None:
        self.num_classes = check_int(num_classes, "num_classes", "Tracker", low=1)
        if isinstance(splits, str) or not splits:
            raise ValueError(
                f"The 'splits' parameter of Tracker must be a non-empty list. Got {splits!r} instead."
            )
        if hierarchy is not None and hierarchy.num_classes != num_classes:
            raise ValueError(f"The 'hierarchy' parameter of Tracker must have num_classes = "
                             f"{num_classes} leaves. Got {hierarchy.num_classes} instead.")
        self.splits = tuple(splits)
        self.components = list(components)
        self.hierarchy = hierarchy
        self.spaces = spaces
        self.config = dict(config or {})
        self._current = {s: ConfusionMatrix(num_classes) for s in self.splits}
        self._history: dict[str, list[np.ndarray]] = {s: [] for s in self.splits}
        self._reduced = False
        self._model: torch.nn.Module | None = None
        self._head_name: str | None = None
        self._head: torch.nn.Linear | None = None
        self._start: float | None = None
        self.epochs: list[int] = []
        self.rows: list[MetricRow] = []
        self.log: list[dict[str, Any]] = []
        self.loggers: list[EpochLogger] = list(loggers)

    @classmethod
    def from_hierarchy(cls, hierarchy: Hierarchy, splits: Sequence[str] = ("val", "train"), *,
                       hypernyms: Sequence[int | str] = (4,), random_draws: int = 10,
                       spaces_seed: int = 0, named_spaces: Mapping[str, Any] | None = None,
                       q: float = 0.95, nc: bool | int | Mapping[str, Any] = True,
                       manifold: Mapping[str, Any] | None = None, mistakes: bool = True,
                       seed: int = 0, epochs: int | None = None, data: Any = None) -> Tracker:
        """A tracker with the options of a config file, built by the components' own factories.

        Parameters
        ----------
        hierarchy : the class hierarchy (its leaves are the C classes, in label order)
        splits : the splits you will evaluate (``track.splits``)
        hypernyms, random_draws, spaces_seed, named_spaces, q : ``spaces.hypernyms``,
            ``spaces.random_draws``, ``spaces.seed``, spaces the data defines itself, ``spaces.q``
        nc : True (every epoch on the train split when tracked, else the first split), an int k
            (every k-th epoch; 0 = off), or the ``nc:`` section (``every``, 1 unless given,
            ``split``, ``spaces``)
        manifold : None (off) or the ``manifold:`` section (``every``, ``layers``, ``k``, ...);
            needs ``data`` and ``epochs``
        mistakes : mistake severity and hierarchical top-k distances on every split
        seed : the seed of the sampled draws (``seed``)
        epochs : the number of training epochs (the manifold analysis's last epoch)
        data : for the manifold analysis, a DatasetBundle or ``{"train": Dataset, "val": Dataset}``
            whose items are ``(x, y)``
        """
        from hypbias.labelspace.spaceset import build_spaces
        from hypbias.train.components import ComponentContext, build_components, components

        splits = tuple(splits)
        spaces = build_spaces(hierarchy, list(hypernyms), random_draws, spaces_seed, named=named_spaces)
        sections: dict[str, dict[str, Any]] = {
            spec.section: dict(spec.defaults) for spec in components()}
        sections["nc"].update(_nc_section(nc, splits))
        sections["mistakes"]["enabled"] = mistakes
        if manifold is not None:
            sections["manifold"].update(manifold)
        bundle = _bundle(data, hierarchy) if data is not None else None
        if sections["manifold"].get("every") and (bundle is None or epochs is None):
            raise ValueError("The 'manifold' parameter of Tracker.from_hierarchy needs data= (the "
                             "train and val datasets it samples) and epochs= (the last epoch)")
        context = ComponentContext(bundle, spaces, splits, seed, int(epochs or 0),
                                   source="Tracker.from_hierarchy", hierarchy=hierarchy,
                                   num_classes=hierarchy.num_classes)
        config = {
            "seed": seed,
            "data": {"name": bundle.name if bundle is not None else "own loop"},
            "train": {"epochs": epochs},
            "track": {"splits": list(splits)},
            "spaces": {"hypernyms": list(hypernyms), "random_draws": random_draws, "q": q,
                       "seed": spaces_seed},
            **sections,
        }
        return cls(hierarchy.num_classes, splits, build_components(sections, context),
                   hierarchy=hierarchy, spaces=spaces, config=config)

    def bind(self, model: torch.nn.Module, head: str | torch.nn.Module | None = None) -> None:
        """Give the components the model and its final linear layer before the first evaluation.

        ``head`` names the classification layer (``"fc"``, ``"classifier.3"``) or is the layer;
        None picks ``model.head`` when it is an ``nn.Linear``, else the last ``nn.Linear`` of the
        model. The penultimate features are that layer's input, shape (N, D).
        """
        self._head_name, self._head = find_head(model, head)
        self._model = model
        for comp in self.components:
            comp.bind(model, self._head)

    @property
    def model(self) -> torch.nn.Module | None:
        """The bound model (see :meth:`bind`), or None."""
        return self._model

    @property
    def next_epoch(self) -> int:
        """The epoch that the next :meth:`end_epoch` is expected to close."""
        return self.epochs[-1] + 1 if self.epochs else 0

    def _split(self, split: str) -> str:
        if split not in self._current:
            raise ValueError(
                f"The 'split' parameter of Tracker.update must be one of {list(self.splits)}. "
                f"Got {split!r} instead."
            )
        return split

    def components_for(self, split: str) -> list[TrackerComponent]:
        """Components that consume ``split``'s batches at the current epoch."""
        return [c for c in self.components if split in c.splits and c.active(self.next_epoch)]

    def wants_features(self, split: str) -> bool:
        """Whether an evaluation pass over ``split`` should pass penultimate features."""
        return bool(self.components_for(split))

    @torch.no_grad()
    def update(self, logits: torch.Tensor, targets: torch.Tensor, split: str = "val",
               features: torch.Tensor | None = None) -> None:
        """Add one evaluation batch: logits (N, C), targets (N,), optional features (N, D).

        The batch is validated here, once, with one host transfer (logits finite, or integer
        predictions (N,) in [0, C); targets in [0, C); features, when a component receives them,
        finite and one row per target); the confusion matrix and the components take it as it is.
        """
        components = self.components_for(self._split(split))
        logits, targets, features = tracked_batch(logits, targets, features if components else None,
                                                  self.num_classes, "Tracker.update")
        self._current[split]._add(logits, targets)
        for comp in components:
            comp.update(split, logits, targets, features)

    def wants_second_pass(self, split: str) -> bool:
        """Whether a component needs a second evaluation pass over ``split`` this epoch."""
        return any(c.wants_second_pass(split) for c in self.components_for(split))

    def before_second_pass(self, split: str) -> None:
        """Call between the two passes over ``split`` (see :meth:`wants_second_pass`)."""
        for comp in self.components_for(self._split(split)):
            if comp.wants_second_pass(split):
                comp.before_second_pass(split)

    @torch.no_grad()
    def update_second(self, logits: torch.Tensor, targets: torch.Tensor, split: str = "train",
                      features: torch.Tensor | None = None) -> None:
        """Add one batch of the second pass (see :meth:`wants_second_pass`)."""
        for comp in self.components_for(self._split(split)):
            if comp.wants_second_pass(split):
                comp.update_second(split, logits, targets, features)

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, batches: Iterable[tuple[Any, torch.Tensor]],
                 split: str = "val", *, shard: bool = False) -> None:
        """Evaluate ``model`` on ``split``: every pass the active components need (NC needs two).

        Parameters
        ----------
        model : the model, in any state; evaluated in ``eval()`` mode, its mode restored after.
            Its output is the logits (N, C) or has a ``logits`` field (Hugging Face); the
            features are the input of the head chosen by :meth:`bind` (bound here on first use).
            Pass a ``DistributedDataParallel`` model's ``.module``: its own forward is a
            collective, which processes with different numbers of batches would wait on.
        batches : a re-iterable of ``(inputs, targets)`` such as a ``DataLoader`` or a list;
            inputs (a tensor, or a mapping passed as keyword arguments) and targets are moved to
            the model's device.
        split : one of the tracked splits.
        shard : under ``torchrun``, evaluate only every ``world_size``-th batch on each process
            (for batches that every process iterates in full); the statistics are summed over
            processes at :meth:`end_epoch` either way.
        """
        split = self._split(split)
        if model is not self._model:
            self.bind(model, self._head_name)
        passes = 2 if self.wants_second_pass(split) else 1
        if passes == 2 and iter(batches) is batches:
            raise ValueError("The 'batches' parameter of Tracker.evaluate must be re-iterable (a "
                             "DataLoader or a list): neural collapse needs two passes over "
                             f"{split!r}. Got an iterator ({type(batches).__name__}) instead.")
        device = model_device(model)
        needs_features = self.wants_features(split)
        was_training = model.training
        model.eval()
        try:
            with head_input(self._head) as captured:
                for k in range(passes):
                    if k == 1:
                        self.before_second_pass(split)
                    feed = self.update if k == 0 else self.update_second
                    for inputs, targets in _shard(batches, shard):
                        inputs = to_device(inputs, device)
                        captured.features = None
                        output = model(**inputs) if isinstance(inputs, dict) else model(inputs)
                        logits = logits_of(output).float()
                        features = _features(captured.features, self._head_name, len(logits)) \
                            if needs_features else None
                        feed(logits, torch.as_tensor(targets).to(logits.device), split=split,
                             features=features)
        finally:
            model.train(was_training)

    def all_reduce(self) -> None:
        """Sum this epoch's statistics over ``torch.distributed`` processes (no-op otherwise).

        :meth:`end_epoch` calls it when the loop has not; a loop that calls it itself does so once
        per epoch, after the last evaluation pass.
        """
        if self._reduced:
            return
        for split in self.splits:
            self._current[split].all_reduce()
        for comp in self.components:
            if comp.active(self.next_epoch):
                comp.all_reduce()
        self._reduced = True

    def end_epoch(self, epoch: int, model: torch.nn.Module | None = None,
                  log: Mapping[str, float] | None = None,
                  rows: Iterable[MetricRow] = ()) -> dict[str, float]:
        """Close ``epoch``: store each split's confusion matrix, collect component rows, reset,
        and hand the epoch to every logger (:attr:`loggers`).

        Epochs must be consecutive from 0, where epoch 0 is measured before any parameter update.
        ``model`` is passed to components that analyse the model itself (layer features); by
        default the bound model. ``log`` adds values to this epoch's row of ``log.csv`` (e.g.
        ``{"loss": 0.41, "lr": 0.1}``; a ``seconds`` entry replaces the tracker's clock). ``rows``
        are metric rows of this epoch measured by the loop itself (e.g. the training loss per
        term), written to ``metrics.csv`` with the components'.

        Returns
        -------
        dict split -> fine accuracy (percent) at this epoch.
        """
        if epoch != self.next_epoch:
            raise ValueError(
                f"Tracker.end_epoch: expected epoch {self.next_epoch} (epochs are consecutive from 0, "
                f"0 = before training). Got {epoch!r} instead."
            )
        self.all_reduce()
        model = model if model is not None else self._model
        out = {}
        for split in self.splits:
            m = self._current[split].compute()
            self._history[split].append(m)
            self._current[split].reset()
            total = m.sum()
            out[split] = float(100.0 * np.trace(m) / total) if total else float("nan")
        measured = list(rows)
        for comp in self.components:
            if comp.active(epoch):
                measured.extend(comp.end_epoch(epoch, model))
        self.rows.extend(measured)
        self.epochs.append(epoch)
        self._reduced = False
        now = time.perf_counter()
        self._start = now if self._start is None else self._start
        given = dict(log or {})
        seconds = given.pop("seconds", now - self._start)
        self.log.append({"epoch": epoch, **given, **{f"acc_{s}": a for s, a in out.items()},
                         "seconds": seconds})
        if self.loggers:
            self._log_epoch(epoch, measured)
        return out

    def _log_epoch(self, epoch: int, measured: list[MetricRow]) -> None:
        """Hand the closed epoch to every logger (imported here: the loggers read the analysis)."""
        from hypbias.train.loggers import dispatch

        dispatch(self.loggers, epoch, self.log, {s: self._history[s][-1] for s in self.splits},
                 self.spaces, measured)

    def log_to(self, run_dir: str | Path | None, *, console: str = "auto", tensorboard: bool = False,
               wandb: bool = False, mlflow: bool = False, project: str = "hypbias",
               epochs: int | None = None) -> list[EpochLogger]:
        """Attach the loggers of a ``log:`` section (:mod:`hypbias.train.loggers`); returns them.

        ``log.csv`` in ``run_dir`` is rewritten after every epoch from then on, and each epoch goes
        to TensorBoard (``<run_dir>/tensorboard/``), W&B and MLflow when asked; ``console``
        (``auto``, ``always``, ``never``) prints one line per epoch (``auto``: when stdout is not a
        terminal); ``epochs`` (the last one) is shown in that line. :meth:`close_loggers` ends them.
        """
        from hypbias.train.config.schema import Origins
        from hypbias.train.config.sections import LogSection
        from hypbias.train.loggers import build_loggers
        from hypbias.train.run_files import run_config

        section = LogSection.parse({"console": console, "tensorboard": tensorboard, "wandb": wandb,
                                    "mlflow": mlflow, "project": project},
                                   Origins("Tracker.log_to"))
        added = build_loggers(section, run_dir, first_epoch=self.next_epoch, epochs=epochs,
                              config=run_config(self))
        self.loggers.extend(added)
        return added

    def close_loggers(self) -> None:
        """Close every logger and detach it (TensorBoard's files, the W&B and MLflow runs)."""
        loggers, self.loggers = self.loggers, []
        for logger in loggers:
            logger.close()

    def confusion(self, split: str = "val") -> np.ndarray:
        """Stacked confusion matrices of ``split``, array of shape (epochs, C, C), int64."""
        hist = self._history[self._split(split)]
        if not hist:
            return np.zeros((0, self.num_classes, self.num_classes), dtype=np.int64)
        return np.stack(hist)

    def save(self, run_dir: str | Path, *, model: torch.nn.Module | None = None,
             log: Sequence[Mapping[str, Any]] | None = None) -> RunDir:
        """Write the run directory of ``hypbias run`` (``hypbias report RUN_DIR`` then draws it).

        Writes ``config.yaml`` (:attr:`config`), ``environment.json``, ``hierarchy.json``,
        ``spaces.npz``/``.json``, ``confusion.npz``, ``log.csv`` (``log``, by default
        :attr:`log`), ``metrics.csv``, ``summary.json``, ``<component>.npz`` and, given ``model``,
        its weights as ``model.pt``. Under ``torchrun`` only rank 0 writes.
        """
        from hypbias.rundir import RunDir
        from hypbias.train.run_files import write_run

        run = RunDir(Path(run_dir))
        if distributed.rank() == 0:
            write_run(run, self, log=list(log) if log is not None else None,
                      model_state=None if model is None else model.state_dict())
        return run

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue tracking after a restart."""
        return {
            "epochs": list(self.epochs),
            "history": {s: self.confusion(s) for s in self.splits},
            "rows": list(self.rows),
            "log": list(self.log),
            "components": {c.name: c.state_dict() for c in self.components},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs = list(state["epochs"])
        self._history = {s: list(state["history"][s]) for s in self.splits}
        self.rows = list(state["rows"])
        self.log = list(state.get("log", []))
        if self.log and "seconds" in self.log[-1]:  # the clock goes on from the restored epoch
            self._start = time.perf_counter() - float(self.log[-1]["seconds"])
        for comp in self.components:
            comp.load_state_dict(state["components"].get(comp.name, {}))


def _nc_section(nc: bool | int | Mapping[str, Any], splits: tuple[str, ...]) -> dict[str, Any]:
    """The ``nc:`` section for :meth:`Tracker.from_hierarchy`'s ``nc`` argument."""
    if isinstance(nc, Mapping):
        return {"every": 1, **nc}
    default_split = "train" if "train" in splits else splits[0]
    if isinstance(nc, bool):
        return {"every": int(nc), "split": default_split}
    if isinstance(nc, int):
        return {"every": nc, "split": default_split}
    raise ValueError("The 'nc' parameter of Tracker.from_hierarchy must be a bool, an int >= 0 or "
                     f"the nc: section as a dict. Got {nc!r} instead.")


def _bundle(data: Any, hierarchy: Hierarchy) -> Any:
    """``data`` as a DatasetBundle (a mapping of the train and val datasets is wrapped)."""
    from hypbias.data.base import DatasetBundle

    if isinstance(data, DatasetBundle):
        return data
    if not isinstance(data, Mapping) or not {"train", "val"} <= set(data):
        raise ValueError("The 'data' parameter of Tracker.from_hierarchy must be a DatasetBundle or "
                         f"a dict with 'train' and 'val' datasets. Got {type(data).__name__} instead.")
    first = data["train"][0][0]
    return DatasetBundle("own loop", data["train"], data["val"], list(hierarchy.classes), hierarchy,
                         tuple(torch.as_tensor(first).shape))


def _shard(batches: Iterable[Any], shard: bool) -> Iterable[Any]:
    """Every ``world``-th batch from this process's rank when ``shard`` (all batches otherwise)."""
    world = distributed.world_size()
    if not shard or world == 1:
        return batches
    return itertools.islice(batches, distributed.rank(), None, world)


def _features(features: torch.Tensor | None, head: str | None, n: int) -> torch.Tensor:
    """The captured head input as float (N, D), or a ValueError saying what went wrong."""
    if features is None:
        raise ValueError(f"Tracker.evaluate: the head {head!r} was not called in the forward pass; "
                         "bind the layer that computes the logits (Tracker.bind(model, head=...))")
    if features.ndim != 2 or len(features) != n:
        raise ValueError(f"Tracker.evaluate: the input of the head {head!r} has shape "
                         f"{tuple(features.shape)}; the tracker needs penultimate features of shape "
                         f"({n}, D): bind the layer whose input is one vector per sample")
    return features.float()
