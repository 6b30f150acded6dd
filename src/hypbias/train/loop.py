"""The training loop: a plain function you can read top to bottom.

Epoch 0 is an evaluation of the untrained model; each later epoch is one pass of training followed
by an evaluation of every tracked split, which feeds the :class:`~hypbias.train.tracker.Tracker`.

Under ``torchrun`` the loop trains with ``DistributedDataParallel``: every process draws the same
permutation of the training set and takes its own slice of it; evaluation shards are disjoint
(no padded duplicates) and the tracker's statistics are summed over processes, so every rank holds
what one process would have measured.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from hypbias._validation import check_choice, check_float, check_int
from hypbias.data.augment import make_augment
from hypbias.data.base import DatasetBundle, TensorSplit, create_dataset
from hypbias.errors import ConfigError
from hypbias.labelspace import LabelSpace
from hypbias.losses import build_loss
from hypbias.models.base import Classifier
from hypbias.models.registry import create, factory_parameters
from hypbias.train import checkpoint, distributed
from hypbias.train.config import config_error, section
from hypbias.train.ema import ModelEMA
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
    """``auto`` picks CUDA when available, else the CPU; under torchrun, the local rank's GPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", distributed.local_rank())
        return torch.device("cpu")
    return torch.device(name)


def build_bundle(config: dict[str, Any]) -> DatasetBundle:
    """The configured dataset (``data.name`` plus its options; ``data.root`` only when set)."""
    data_cfg = section(config, "data")
    if data_cfg.get("root") is None:
        data_cfg.pop("root", None)
    return create_dataset(data_cfg.pop("name"), **data_cfg)


def build_model(model_cfg: dict[str, Any], bundle: DatasetBundle) -> Classifier:
    """Create the configured model, passing the input size to factories that take it."""
    options = dict(model_cfg)
    name = options.pop("name")
    params = factory_parameters(name)
    shape = bundle.input_shape
    if "in_features" in params and "in_features" not in options:
        options["in_features"] = int(np.prod(shape))
    if "in_channels" in params and "in_channels" not in options and len(shape) == 3:
        options["in_channels"] = shape[0]
    return create(name, bundle.num_classes, **options)


def build_optimizer(model: nn.Module, train_cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW with the configured learning rate and weight decay."""
    name = check_choice(train_cfg["optimizer"], "train.optimizer", "the config", ["sgd", "adamw"])
    lr = check_float(train_cfg["lr"], "train.lr", "the config", low=0, low_open=True)
    wd = check_float(train_cfg["weight_decay"], "train.weight_decay", "the config", low=0)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=train_cfg["momentum"],
                               nesterov=bool(train_cfg["nesterov"]), weight_decay=wd)
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)


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


def make_loss(config: dict[str, Any], bundle: DatasetBundle,
              spaces: Mapping[str, LabelSpace] | None) -> nn.Module:
    """The configured ``loss:`` (see :func:`hypbias.losses.build_loss`); errors name the config file."""
    try:
        return build_loss(section(config, "loss"), bundle.hierarchy, spaces,
                          label_smoothing=config["train"]["label_smoothing"])
    except ConfigError as err:
        raise ConfigError(f"{config.get('config_file', 'config')}: {err}") from None


def batches(split: Dataset, batch_size: int, *, device: torch.device,
            indices: torch.Tensor | None = None, num_workers: int = 0,
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches on ``device``, in the order of ``indices`` (default: all, in order).

    A :class:`TensorSplit` is moved to the device once and indexed there (no per-sample Python);
    any other dataset goes through a ``DataLoader`` over the subset.
    """
    if isinstance(split, TensorSplit):
        x, y = split.on(device)
        n = len(y) if indices is None else len(indices)
        idx = None if indices is None else indices.to(device)
        for start in range(0, n, batch_size):
            if idx is None:
                yield x[start:start + batch_size], y[start:start + batch_size]
            else:
                sel = idx[start:start + batch_size]
                yield x[sel], y[sel]
        return
    data = split if indices is None else Subset(split, indices.tolist())
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda", persistent_workers=False)
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


@torch.no_grad()
def evaluate(model: Classifier, bundle: DatasetBundle, tracker: Tracker, device: torch.device,
             batch_size: int, autocast: contextlib.AbstractContextManager | None = None) -> None:
    """One evaluation pass per tracked split (and a second where a component asks for it).

    Under torchrun each process evaluates a disjoint shard (every ``world``-th sample) and the
    tracker's statistics are summed over processes afterwards.
    """
    was_training = model.training
    model.eval()
    rank, world = distributed.rank(), distributed.world_size()
    for split in tracker.splits:
        data = bundle.split(split)
        shard = torch.arange(rank, len(data), world) if world > 1 else None
        passes = [tracker.update]
        if tracker.wants_second_pass(split):
            passes.append(tracker.update_second)
        for k, feed in enumerate(passes):
            if k == 1:
                tracker.before_second_pass(split)
            for x, y in batches(data, batch_size, device=device, indices=shard):
                with autocast or contextlib.nullcontext():
                    logits, feats = model.forward_with_features(_memory_format(x, model))
                feed(logits.float(), y, split=split, features=feats.float())
    tracker.all_reduce()
    model.train(was_training)


def _memory_format(x: torch.Tensor, model: nn.Module) -> torch.Tensor:
    if x.ndim == 4 and getattr(model, "_hypbias_channels_last", False):
        return x.contiguous(memory_format=torch.channels_last)
    return x


@dataclass
class _Step:
    """What one optimisation step needs; built once by :func:`train`."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    model: Classifier
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: Callable
    augment: Callable | None
    ema: ModelEMA | None
    autocast: contextlib.AbstractContextManager | None


def train_one_epoch(step: _Step, batch_iter: Iterator[tuple[torch.Tensor, torch.Tensor]],
                    num_batches: int, progress: bool) -> tuple[float, int]:
    """One pass of SGD over the training data; returns (mean training loss, samples seen)."""
    step.model.train()
    total = None
    count = 0
    for x, y in tqdm(batch_iter, total=num_batches, leave=False, desc="batches",
                     disable=not progress or num_batches < 200):
        if step.augment is not None:
            x = step.augment(x)
        with step.autocast or contextlib.nullcontext():
            loss = step.loss_fn(step.forward(_memory_format(x, step.model)), y)
        step.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        step.optimizer.step()
        step.scheduler.step()
        if step.ema is not None:
            step.ema.update(step.model)
        weighted = loss.detach().double() * len(y)
        total = weighted if total is None else total + weighted
        count += len(y)
    return (float(total) / max(count, 1) if total is not None else float("nan")), count


@contextlib.contextmanager
def subnormals_flushed() -> Iterator[None]:
    """Flush subnormal floats to zero on the CPU for the duration, then restore the previous mode.

    Near 100% train accuracy the wrong-class probabilities and their gradients become subnormal,
    which makes CPU epochs several times slower.
    """
    was_flushing = bool((torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() == 0.0)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_flushing)


def train(config: dict[str, Any], *, bundle: DatasetBundle | None = None,
          components: list[TrackerComponent] | None = None, progress: bool = True,
          checkpoint_dir: Path | None = None, resume: bool = False,
          spaces: Mapping[str, LabelSpace] | None = None) -> TrainResult:
    """Train the configured model and track every epoch, 0 (untrained) to ``train.epochs``.

    Parameters
    ----------
    config : a resolved config (:func:`hypbias.train.config.load_config`).
    bundle : the dataset, if already built (else from ``config["data"]``).
    components : extra tracker components (neural collapse, manifold, ...).
    progress : show progress bars (they also switch off when stderr is not a terminal).
    checkpoint_dir : where ``train.save_every`` writes ``epoch_XXX.pt``.
    resume : continue from the latest checkpoint in ``checkpoint_dir``; on the CPU the result equals
        an uninterrupted run exactly.
    spaces : the run's hypernym spaces by name, for losses that use them (``multilevel``).
    """
    with subnormals_flushed():
        return _train(config, bundle, components, progress, checkpoint_dir, resume, spaces)


def _train(config: dict[str, Any], bundle: DatasetBundle | None,
           components: list[TrackerComponent] | None, progress: bool, checkpoint_dir: Path | None,
           resume: bool, spaces: Mapping[str, LabelSpace] | None) -> TrainResult:
    tc = config["train"]
    epochs = check_int(tc["epochs"], "train.epochs", "the config", low=0)
    batch_size = check_int(tc["batch_size"], "train.batch_size", "the config", low=1)
    eval_bs = check_int(config["track"]["eval_batch_size"], "track.eval_batch_size", "the config", low=1)
    save_every = check_int(tc["save_every"], "train.save_every", "the config", low=0)
    seed = check_int(config["seed"], "seed", "the config", low=0)
    distributed.setup()
    data_order = seed_everything(seed)
    if bundle is None:
        bundle = build_bundle(config)
    device = resolve_device(tc["device"])
    world, rank = distributed.world_size(), distributed.rank()
    if tc["augment"] == "autoaugment" and bundle.info.get("normalize") == "standard":
        raise config_error(config, "train.augment", "= 'autoaugment' works on images in [0, 1] or uint8; "
                           "set data.normalize to 'unit' or 'none'")
    if world > 1 and batch_size % world:
        raise config_error(config, "train.batch_size",
                           f"must be divisible by the {world} processes. Got {batch_size} instead.")
    model = build_model(section(config, "model"), bundle).to(device)
    if tc["channels_last"] and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        model._hypbias_channels_last = True
    forward: Callable[[torch.Tensor], torch.Tensor] = model
    if world > 1:
        forward = distributed.wrap(model, device)
    if tc["compile"]:
        forward = torch.compile(forward)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if tc["amp"] and device.type == "cuda" else None)
    tracker = Tracker(bundle.num_classes, splits=config["track"]["splits"], components=components or [])
    tracker.bind(model)
    optimizer = build_optimizer(model, tc)
    local_batch = batch_size // world
    steps = math.ceil(len(bundle.train) / world / local_batch)
    scheduler = make_scheduler(optimizer, tc, steps)
    augment_gen = torch.Generator(device=device if device.type == "cuda" else "cpu").manual_seed(seed + 1)
    step = _Step(forward, model, optimizer, scheduler, make_loss(config, bundle, spaces).to(device),
                 make_augment(tc["augment"], augment_gen),
                 ModelEMA(model, tc["ema"]) if tc["ema"] else None, autocast)

    def evaluated_model() -> contextlib.AbstractContextManager:
        return step.ema.swapped(model) if step.ema is not None else contextlib.nullcontext()

    state = checkpoint.TrainingState(model, optimizer, scheduler, tracker, data_order, augment_gen,
                                     step.ema)
    log: list[dict[str, float]] = []
    start_epoch = 1
    elapsed = 0.0
    if resume:
        restored = checkpoint.latest(checkpoint_dir)
        log, elapsed = state.load(restored)
        start_epoch = tracker.next_epoch
    start = time.perf_counter() - elapsed
    saving = checkpoint_dir is not None and save_every > 0 and rank == 0
    if not tracker.epochs:
        evaluate(model, bundle, tracker, device, eval_bs, autocast)
        acc = tracker.end_epoch(0, model)
        log.append({"epoch": 0, "loss": float("nan"), "lr": optimizer.param_groups[0]["lr"],
                    **{f"acc_{s}": a for s, a in acc.items()}, "images_per_s": float("nan"),
                    "seconds": time.perf_counter() - start})
        if saving:  # the untrained model, for analyses of checkpoints after the fact
            state.save(checkpoint_dir / "epoch_000.pt", log, time.perf_counter() - start)
    bar = tqdm(range(start_epoch, epochs + 1), desc="epochs", leave=True,
               disable=True if (not progress or rank) else None)
    for epoch in bar:
        lr = optimizer.param_groups[0]["lr"]
        order = torch.randperm(len(bundle.train), generator=data_order)[rank::world]
        batch_iter = batches(bundle.train, local_batch, device=device, indices=order,
                             num_workers=tc["num_workers"])
        tick = time.perf_counter()
        loss, seen = train_one_epoch(step, batch_iter, steps, progress and not rank)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        speed = seen * world / (time.perf_counter() - tick)
        with evaluated_model():
            evaluate(model, bundle, tracker, device, eval_bs, autocast)
            acc = tracker.end_epoch(epoch, model)
        log.append({"epoch": epoch, "loss": distributed.mean(loss), "lr": lr,
                    **{f"acc_{s}": a for s, a in acc.items()}, "images_per_s": speed,
                    "seconds": time.perf_counter() - start})
        bar.set_postfix(loss=f"{loss:.3f}", **{s: f"{a:.1f}%" for s, a in acc.items()})
        if saving and (epoch % save_every == 0 or epoch == epochs):
            state.save(checkpoint_dir / f"epoch_{epoch:03d}.pt", log, time.perf_counter() - start)
    if step.ema is not None:
        step.ema.copy_to(model)
    return TrainResult(model, tracker, bundle, log, time.perf_counter() - start)
