"""The training loop: a plain function you can read top to bottom.

Epoch 0 is an evaluation of the untrained model; each later epoch is one pass of training followed
by an evaluation of every tracked split, which feeds the :class:`~hypbias.train.tracker.Tracker`.
"""

from __future__ import annotations

import inspect
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from hypbias._validation import check_choice, check_float, check_int
from hypbias.data.base import DatasetBundle, TensorSplit, create_dataset
from hypbias.models.base import Classifier
from hypbias.models.registry import create
from hypbias.train.config import config_error, section
from hypbias.train.schedules import build_scheduler
from hypbias.train.tracker import Tracker, TrackerComponent


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, its tracker and a per-epoch log."""

    model: Classifier
    tracker: Tracker
    bundle: DatasetBundle
    log: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return the generator that orders the training data."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (third-party code may draw from the global state)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(model_cfg: dict[str, Any], bundle: DatasetBundle) -> Classifier:
    """Create the configured model, passing the input size to factories that take it."""
    options = dict(model_cfg)
    name = options.pop("name")
    factory_params = _factory_parameters(name)
    shape = bundle.input_shape
    if "in_features" in factory_params and "in_features" not in options:
        options["in_features"] = int(np.prod(shape))
    if "in_channels" in factory_params and "in_channels" not in options and len(shape) == 3:
        options["in_channels"] = shape[0]
    return create(name, bundle.num_classes, **options)


def _factory_parameters(name: str) -> set[str]:
    from hypbias.models import registry

    factory = registry._REGISTRY.get(name)
    return set(inspect.signature(factory).parameters) if factory else set()


def build_optimizer(model: nn.Module, train_cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW with the configured learning rate and weight decay."""
    name = check_choice(train_cfg["optimizer"], "train.optimizer", "the config", ["sgd", "adamw"])
    lr = check_float(train_cfg["lr"], "train.lr", "the config", low=0, low_open=True)
    wd = check_float(train_cfg["weight_decay"], "train.weight_decay", "the config", low=0)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=train_cfg["momentum"],
                               nesterov=bool(train_cfg["nesterov"]), weight_decay=wd)
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)


def batches(split: Dataset, batch_size: int, *, shuffle: bool, device: torch.device,
            generator: torch.Generator | None = None, num_workers: int = 0,
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches on ``device``.

    A :class:`TensorSplit` is moved to the device once and sliced (no per-sample Python); any other
    dataset goes through a ``DataLoader``. ``generator`` fixes the order when shuffling.
    """
    if isinstance(split, TensorSplit):
        x, y = _resident(split, device)
        n = len(y)
        order = torch.randperm(n, generator=generator).to(device) if shuffle else None
        for start in range(0, n, batch_size):
            if order is None:
                yield x[start:start + batch_size], y[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                yield x[idx], y[idx]
        return
    loader = DataLoader(split, batch_size=batch_size, shuffle=shuffle, generator=generator,
                        num_workers=num_workers, pin_memory=device.type == "cuda")
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


_RESIDENT: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}


def _resident(split: TensorSplit, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if split.x.device == device:
        return split.x, split.y
    key = (id(split), str(device))
    if key not in _RESIDENT:
        _RESIDENT.clear()
        _RESIDENT[key] = (split.x.to(device), split.y.to(device))
    return _RESIDENT[key]


@torch.no_grad()
def evaluate(model: Classifier, bundle: DatasetBundle, tracker: Tracker, device: torch.device,
             batch_size: int) -> None:
    """One evaluation pass per tracked split (and a second where a component asks for it)."""
    was_training = model.training
    model.eval()
    for split in tracker.splits:
        data = bundle.split(split)
        for x, y in batches(data, batch_size, shuffle=False, device=device):
            logits, feats = model.forward_with_features(x)
            tracker.update(logits, y, split=split, features=feats)
        if tracker.wants_second_pass(split):
            for x, y in batches(data, batch_size, shuffle=False, device=device):
                logits, feats = model.forward_with_features(x)
                tracker.update_second(logits, y, split=split, features=feats)
    model.train(was_training)


def train_one_epoch(model: Classifier, batch_iter: Iterator[tuple[torch.Tensor, torch.Tensor]],
                    optimizer: torch.optim.Optimizer, scheduler: Any, loss_fn: Callable,
                    num_batches: int, progress: bool) -> float:
    """One pass of SGD over the training data; returns the mean training loss."""
    model.train()
    total = torch.zeros((), dtype=torch.float64)
    count = 0
    for x, y in tqdm(batch_iter, total=num_batches, leave=False, disable=not progress or num_batches < 200,
                     desc="batches"):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.detach().double().cpu() * len(y)
        count += len(y)
    return float(total / max(count, 1))


def make_scheduler(optimizer: torch.optim.Optimizer, train_cfg: dict[str, Any],
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning-rate schedule (cosine, step or constant, with linear warmup)."""
    return build_scheduler(
        optimizer,
        total_steps=train_cfg["epochs"] * steps_per_epoch,
        schedule=train_cfg["schedule"],
        warmup_steps=int(train_cfg["warmup_epochs"] * steps_per_epoch),
        milestones=train_cfg["milestones"],
        gamma=train_cfg["gamma"],
    )


def build_loss(config: dict[str, Any], bundle: DatasetBundle) -> Callable:
    """The configured loss; ``ce`` honours ``train.label_smoothing``."""
    loss_cfg = section(config, "loss")
    if loss_cfg.get("name", "ce") == "ce":
        extra = set(loss_cfg) - {"name"}
        if extra:
            raise config_error(config, f"loss.{sorted(extra)[0]}", "is not an option of the 'ce' loss")
        return nn.CrossEntropyLoss(label_smoothing=float(config["train"]["label_smoothing"]))
    raise config_error(config, "loss.name", f"must be 'ce'. Got {loss_cfg.get('name')!r} instead.")


def build_bundle(config: dict[str, Any]) -> DatasetBundle:
    """The configured dataset (``data.name`` plus its options; ``data.root`` only when set)."""
    data_cfg = section(config, "data")
    if data_cfg.get("root") is None:
        data_cfg.pop("root", None)
    return create_dataset(data_cfg.pop("name"), **data_cfg)


def train(config: dict[str, Any], *, bundle: DatasetBundle | None = None,
          components: list[TrackerComponent] | None = None, progress: bool = True) -> TrainResult:
    """Train the configured model and track every epoch, 0 (untrained) to ``train.epochs``.

    Parameters
    ----------
    config : a resolved config (:func:`hypbias.train.config.load_config`).
    bundle : the dataset, if already built (else from ``config["data"]``).
    components : extra tracker components (neural collapse, manifold, ...).
    progress : show progress bars (they also switch off when stderr is not a terminal).
    """
    tc = config["train"]
    epochs = check_int(tc["epochs"], "train.epochs", "the config", low=0)
    batch_size = check_int(tc["batch_size"], "train.batch_size", "the config", low=1)
    eval_bs = check_int(config["track"]["eval_batch_size"], "track.eval_batch_size", "the config", low=1)
    data_order = seed_everything(check_int(config["seed"], "seed", "the config", low=0))
    if bundle is None:
        bundle = build_bundle(config)
    device = resolve_device(tc["device"])
    model = build_model(section(config, "model"), bundle).to(device)
    tracker = Tracker(bundle.num_classes, splits=config["track"]["splits"], components=components or [])
    optimizer = build_optimizer(model, tc)
    steps = math.ceil(len(bundle.train) / batch_size)
    scheduler = make_scheduler(optimizer, tc, steps)
    loss_fn = build_loss(config, bundle)

    start = time.perf_counter()
    log: list[dict[str, float]] = []
    evaluate(model, bundle, tracker, device, eval_bs)
    acc = tracker.end_epoch(0, model)
    log.append({"epoch": 0, "loss": float("nan"), "lr": optimizer.param_groups[0]["lr"],
                **{f"acc_{s}": a for s, a in acc.items()}, "seconds": time.perf_counter() - start})
    bar = tqdm(range(1, epochs + 1), desc="epochs", disable=not progress or None, leave=True)
    for epoch in bar:
        lr = optimizer.param_groups[0]["lr"]
        batch_iter = batches(bundle.train, batch_size, shuffle=True, device=device,
                             generator=data_order, num_workers=tc["num_workers"])
        loss = train_one_epoch(model, batch_iter, optimizer, scheduler, loss_fn, steps, progress)
        evaluate(model, bundle, tracker, device, eval_bs)
        acc = tracker.end_epoch(epoch, model)
        log.append({"epoch": epoch, "loss": loss, "lr": lr, **{f"acc_{s}": a for s, a in acc.items()},
                    "seconds": time.perf_counter() - start})
        bar.set_postfix(loss=f"{loss:.3f}", **{s: f"{a:.1f}%" for s, a in acc.items()})
    return TrainResult(model, tracker, bundle, log, time.perf_counter() - start)
