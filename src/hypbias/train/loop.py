"""The training loop: a plain function you can read top to bottom.

:func:`prepare_training` builds everything the config describes (dataset, model, optimiser, schedule,
loss, tracker) and so finds every bad value before anything is written; :func:`run_training` then
evaluates the untrained model (epoch 0) and runs each later epoch as one pass of training followed
by an evaluation of every tracked split, which feeds the :class:`~hypbias.train.tracker.Tracker`.
:func:`train` does both.

Each closed epoch goes to the loggers of the ``log:`` section (:mod:`hypbias.train.loggers`):
``log.csv`` rewritten in the run directory, a line on stdout when it is not a terminal, TensorBoard,
W&B, MLflow. A loss that reports its terms (``term_names`` and ``last_terms``, as
:class:`~hypbias.losses.MultiLevelCrossEntropy` does) has each term's epoch mean recorded as
``loss_term`` rows (split ``train``, space = the term's). The Jensen–Shannon loss sees each batch as
its V views: the clean images, then V − 1 independent draws of ``train.augment``.

A non-finite training loss or model output stops the run at that epoch: the result carries a
:class:`Divergence` and every epoch measured before it. Ctrl-C raises
:class:`~hypbias.errors.TrainingInterrupted` naming the epoch.

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

from hypbias.data.augment import make_augment
from hypbias.data.base import DatasetBundle, TensorSplit, create_dataset
from hypbias.errors import ConfigError, HypbiasError, TrainingInterrupted
from hypbias.labelspace import LabelSpace, SpaceSet, build_spaces
from hypbias.losses import JensenShannonCrossEntropy, build_loss
from hypbias.metrics.rows import metric_row
from hypbias.models.base import Classifier
from hypbias.models.registry import create, factory_parameters
from hypbias.train import checkpoint, distributed
from hypbias.train.config import Config, as_config
from hypbias.train.config.schema import Origins
from hypbias.train.config.sections import ModelSection, TrainSection
from hypbias.train.ema import ModelEMA
from hypbias.train.loggers import build_loggers, require_packages
from hypbias.train.schedules import build_scheduler
from hypbias.train.tracker import Tracker, TrackerComponent


@dataclass(frozen=True)
class Divergence:
    """Where training stopped: the epoch whose loss or outputs were not finite."""

    epoch: int
    what: str
    """``"the training loss is nan"`` or ``"the model's outputs are not finite"``."""
    last_loss: tuple[int, float] | None
    """(epoch, mean training loss) of the last epoch with a finite loss, if any."""

    def describe(self) -> str:
        last = (f"last finite loss {self.last_loss[1]:.4g} at epoch {self.last_loss[0]}"
                if self.last_loss else "no finite loss before it")
        return f"training diverged at epoch {self.epoch}: {self.what} ({last})"


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, its tracker and a per-epoch log.

    ``diverged`` is set when training stopped early (the model then holds non-finite weights; the
    tracker and the log hold the epochs measured before).
    """

    model: Classifier
    tracker: Tracker
    bundle: DatasetBundle
    log: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    diverged: Divergence | None = None


class NonFiniteOutputs(Exception):
    """Raised by :func:`evaluate` when the model's logits or features hold NaN or infinity."""


# ---------------------------------------------------------------------------- building
def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return the generator that orders the training data."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (third-party code may draw from the global state)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def resolve_device(name: str, origins: Origins | None = None) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU (under torchrun, the local rank's GPU); a
    device that is not there is a ConfigError on ``train.device``."""
    origins = origins or Origins("the config")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", distributed.local_rank())
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise origins.error("train.device", f"= {name!r}, but CUDA is not available here "
                            "(no GPU, or a CPU-only torch); use 'auto' or 'cpu'")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise origins.error("train.device", f"= {name!r}, but this machine has "
                            f"{torch.cuda.device_count()} CUDA devices")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise origins.error("train.device", f"= {name!r}, but MPS is not available here")
    return device


def factory_error(err: Exception, section: str, owner: str, options: Mapping[str, Any],
                  origins: Origins) -> ConfigError:
    """A factory's ValueError as a ConfigError naming where the option it complains of was set
    (``owner``, e.g. ``"dataset 'synthetic'"``, when it names none of the options)."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    named = [k for k in options if f"'{k}'" in text]
    if not named:
        return ConfigError(f"{origins.of(section)}: {owner}: {text}")
    dotted = f"{section}.{named[0]}"
    return ConfigError(f"{origins.of(dotted)}: '{dotted}': {text}")


def experiment_spaces(config: Config, bundle: DatasetBundle) -> SpaceSet:
    """The configured hypernym spaces and random draws for a dataset; a ConfigError naming
    ``spaces.hypernyms`` when an entry does not fit the dataset's hierarchy."""
    sp, h = config.spaces, bundle.hierarchy
    for spec in sp.hypernyms:
        if isinstance(spec, int) and spec >= h.num_classes:
            raise config.error("spaces.hypernyms", f"entry {spec} must be below the {h.num_classes} "
                               "classes (a space of as many groups as classes is the fine space H)")
        if isinstance(spec, str) and spec.startswith("level:") and int(spec[6:]) >= h.height:
            raise config.error("spaces.hypernyms", f"entry {spec!r} is as deep as the tree or deeper "
                               f"(height {h.height}): levels 1 to {h.height - 1} cut hypernyms")
    try:
        return build_spaces(h, list(sp.hypernyms), sp.random_draws, sp.seed, named=bundle.spaces)
    except ValueError as err:
        raise config.error("spaces.hypernyms", f"does not fit the dataset: {err}") from None


def build_bundle(config: Config | Mapping[str, Any]) -> DatasetBundle:
    """The configured dataset (``data.name`` plus its options; ``data.root`` only when set)."""
    config = as_config(config)
    data = config.data
    options = dict(data.options) if data.root is None else {**data.options, "root": data.root}
    try:
        return create_dataset(data.name, **options)
    except HypbiasError:
        raise
    except ValueError as err:
        raise factory_error(err, "data", f"dataset {data.name!r}", data.options,
                            config.origins) from None


def build_model(model_cfg: ModelSection | Mapping[str, Any], bundle: DatasetBundle,
                origins: Origins | None = None) -> Classifier:
    """Create the configured model, passing the input size to factories that take it.

    ``model_cfg`` is the ``model:`` section, parsed or plain (``{"name": "mlp", "hidden": [64]}``).
    """
    origins = origins or Origins("the config")
    if not isinstance(model_cfg, ModelSection):
        model_cfg = ModelSection.parse(model_cfg, origins)
    options = dict(model_cfg.options)
    params = factory_parameters(model_cfg.name)
    shape = bundle.input_shape
    if "in_features" in params and "in_features" not in options:
        options["in_features"] = int(np.prod(shape))
    if "in_channels" in params and "in_channels" not in options and len(shape) == 3:
        options["in_channels"] = shape[0]
    try:
        return create(model_cfg.name, bundle.num_classes, **options)
    except HypbiasError:
        raise
    except ValueError as err:
        raise factory_error(err, "model", f"model {model_cfg.name!r}", model_cfg.options,
                            origins) from None


def build_optimizer(model: nn.Module, tc: TrainSection) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), AdamW (ε) or RMSprop (momentum, smoothing constant α, ε) with the
    configured learning rate and weight decay."""
    if tc.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=tc.lr, momentum=tc.momentum,
                               nesterov=tc.nesterov, weight_decay=tc.weight_decay)
    if tc.optimizer == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=tc.lr, alpha=tc.rmsprop_alpha, eps=tc.eps,
                                   momentum=tc.momentum, weight_decay=tc.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=tc.lr, eps=tc.eps, weight_decay=tc.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, tc: TrainSection,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning-rate schedule (cosine, step or constant, with linear warmup)."""
    return build_scheduler(optimizer, total_steps=tc.epochs * steps_per_epoch, schedule=tc.schedule,
                           warmup_steps=int(tc.warmup_epochs * steps_per_epoch),
                           milestones=tc.milestones, gamma=tc.gamma)


def make_loss(config: Config, bundle: DatasetBundle,
              spaces: Mapping[str, LabelSpace] | None) -> nn.Module:
    """The configured ``loss:`` (see :func:`hypbias.losses.build_loss`); errors name the config file.

    The Jensen–Shannon loss compares augmented views of each image: it needs ``train.augment``.
    """
    try:
        loss = build_loss(config.loss, bundle.hierarchy, spaces,
                          label_smoothing=config.train.label_smoothing)
    except ConfigError as err:
        raise ConfigError(f"{config.origins.of('loss')}: {err}") from None
    if isinstance(loss, JensenShannonCrossEntropy) and config.train.augment is None:
        raise config.error("train.augment", f"is null, but loss 'jsd' compares {loss.views} views of "
                           "each image (the clean one and augmented draws): set it to 'crop_flip', "
                           "'autoaugment' or 'randaugment'")
    return loss


def training_views(x: torch.Tensor, augment: Callable | None, views: int) -> torch.Tensor:
    """The batch as the loss sees it: ``augment(x)`` (or ``x``), shape (N, ...); with V > 1 views,
    shape (V·N, ...): the clean ``x``, then V − 1 independent draws of ``augment`` (AugMix's layout,
    App. B.1)."""
    if views == 1:
        return x if augment is None else augment(x)
    return torch.cat([x, *(augment(x) for _ in range(views - 1))])


# ---------------------------------------------------------------------------- batches
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


@dataclass(frozen=True)
class DeviceMode:
    """How the model runs on its device, as the ``train:`` section asks: bf16 autocast on CUDA when
    ``train.amp``; weights and image batches in channels_last on CUDA when ``train.channels_last``.

    Training and every evaluation of the weights (each epoch's, a checkpoint series', the blurred
    images') run this way. ``DeviceMode()`` runs the model as it is.
    """

    amp: bool = False
    channels_last: bool = False

    @classmethod
    def of(cls, tc: TrainSection, device: torch.device) -> DeviceMode:
        cuda = device.type == "cuda"
        return cls(amp=tc.amp and cuda, channels_last=tc.channels_last and cuda)

    def prepare(self, model: nn.Module) -> None:
        """Put the model's weights in the memory format its inputs will have."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """A batch as the model takes it: channels_last when it is a batch of images (N, C, H, W)."""
        if self.channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when asked for; a null context otherwise."""
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: Classifier, bundle: DatasetBundle, tracker: Tracker, device: torch.device,
             batch_size: int, mode: DeviceMode = DeviceMode()) -> None:
    """One evaluation pass per tracked split (and a second where a component asks for it), the
    model run as ``mode`` says.

    Under torchrun each process evaluates a disjoint shard (every ``world``-th sample) and the
    tracker's statistics are summed over processes afterwards. Raises :class:`NonFiniteOutputs`
    before a batch with NaN or infinite logits or features reaches the tracker.
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
                with mode.autocast():
                    logits, feats = model.forward_with_features(mode.inputs(x))
                if not bool(torch.isfinite(logits).all() & torch.isfinite(feats).all()):
                    raise NonFiniteOutputs(split)
                feed(logits.float(), y, split=split, features=feats.float())
    tracker.all_reduce()
    model.train(was_training)


# ---------------------------------------------------------------------------- one run
@dataclass
class _Step:
    """What one optimisation step needs."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    model: Classifier
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: Callable
    augment: Callable | None
    ema: ModelEMA | None
    mode: DeviceMode
    views: int = 1
    """Versions of each image the loss takes (:func:`training_views`)."""


@dataclass
class EpochLoss:
    """One epoch of training: the mean loss, the samples seen, and each term's mean (name ->
    value) for a loss that reports its terms."""

    loss: float
    samples: int
    terms: dict[str, float]


@dataclass
class Training:
    """A run ready to start: everything built from a checked config, nothing written yet."""

    config: Config
    bundle: DatasetBundle
    device: torch.device
    step: _Step
    tracker: Tracker
    state: checkpoint.TrainingState
    data_order: torch.Generator
    steps_per_epoch: int

    @property
    def model(self) -> Classifier:
        return self.step.model

    def evaluated_weights(self) -> contextlib.AbstractContextManager:
        """The weights the tracker measures: the EMA swapped in when the run keeps one."""
        ema = self.step.ema
        return ema.swapped(self.model) if ema is not None else contextlib.nullcontext()


def prepare_training(config: Config | Mapping[str, Any], *, bundle: DatasetBundle | None = None,
                     components: list[TrackerComponent] | None = None,
                     spaces: SpaceSet | Mapping[str, LabelSpace] | None = None) -> Training:
    """Build every object of a run from ``config``; any bad value raises before anything is written.

    Parameters are those of :func:`train`.
    """
    config = as_config(config)
    tc = config.train
    distributed.setup()
    world = distributed.world_size()
    if world > 1 and tc.batch_size % world:
        raise config.error("train.batch_size", f"must be divisible by the {world} processes. "
                           f"Got {tc.batch_size} instead.")
    require_packages(config.log)
    device = resolve_device(tc.device, config.origins)
    bundle = bundle if bundle is not None else build_bundle(config)
    if tc.augment in ("autoaugment", "randaugment") and bundle.info.get("normalize") == "standard":
        raise config.error("train.augment", f"= {tc.augment!r} works on images in [0, 1] or uint8; "
                           "set data.normalize to 'unit' or 'none'")
    data_order = seed_everything(config.seed)
    model = build_model(config.model, bundle, config.origins).to(device)
    spaces = spaces if isinstance(spaces, SpaceSet) else SpaceSet(hypernyms=dict(spaces or {}))
    tracker = Tracker(bundle.num_classes, splits=config.track.splits, components=components or [],
                      hierarchy=bundle.hierarchy, spaces=spaces)
    tracker.bind(model)
    steps = math.ceil(len(bundle.train) / world / (tc.batch_size // world))
    step, augment_gen = _build_step(config, bundle, model, spaces, device, steps)
    state = checkpoint.TrainingState(model, step.optimizer, step.scheduler, tracker, data_order,
                                     augment_gen, step.ema, config)
    return Training(config, bundle, device, step, tracker, state, data_order, steps)


def _build_step(config: Config, bundle: DatasetBundle, model: Classifier, spaces: SpaceSet,
                device: torch.device, steps_per_epoch: int) -> tuple[_Step, torch.Generator]:
    """The optimisation step's objects, and the generator of the augmentation draws."""
    tc = config.train
    optimizer = build_optimizer(model, tc)
    augment_gen = torch.Generator(device=device if device.type == "cuda" else "cpu")
    augment_gen.manual_seed(config.seed + 1)
    loss = make_loss(config, bundle, spaces.hypernyms).to(device)
    mode = DeviceMode.of(tc, device)
    step = _Step(_forward(model, tc, mode, device, distributed.world_size()), model, optimizer,
                 make_scheduler(optimizer, tc, steps_per_epoch), loss,
                 make_augment(tc.augment, augment_gen), ModelEMA(model, tc.ema) if tc.ema else None,
                 mode, loss.views if isinstance(loss, JensenShannonCrossEntropy) else 1)
    return step, augment_gen


def _forward(model: Classifier, tc: TrainSection, mode: DeviceMode, device: torch.device,
             world: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model as trained: in ``mode``'s memory format, with DistributedDataParallel and
    torch.compile as configured."""
    mode.prepare(model)
    forward: Callable[[torch.Tensor], torch.Tensor] = model
    if world > 1:
        forward = distributed.wrap(model, device)
    return torch.compile(forward) if tc.compile else forward


def train_one_epoch(step: _Step, batch_iter: Iterator[tuple[torch.Tensor, torch.Tensor]],
                    num_batches: int, progress: bool) -> EpochLoss:
    """One pass of SGD over the training data: its mean loss (and terms), samples seen.

    The loss is summed on the device and read once at the end: a NaN anywhere makes the mean NaN.
    """
    step.model.train()
    sums = _LossSums(tuple(getattr(step.loss_fn, "term_names", ())))
    for x, y in tqdm(batch_iter, total=num_batches, leave=False, desc="batches",
                     disable=not progress or num_batches < 200):
        x = training_views(x, step.augment, step.views)
        with step.mode.autocast():
            loss = step.loss_fn(step.forward(step.mode.inputs(x)), y)
        step.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        step.optimizer.step()
        step.scheduler.step()
        if step.ema is not None:
            step.ema.update(step.model)
        sums.add(loss, getattr(step.loss_fn, "last_terms", None), len(y))
    return sums.means()


class _LossSums:
    """The epoch's loss, and each term of a loss that reports them, summed on the device (float64)."""

    def __init__(self, term_names: tuple[str, ...]) -> None:
        self.term_names = term_names
        self.loss: torch.Tensor | None = None
        self.terms: torch.Tensor | None = None
        self.count = 0

    def add(self, loss: torch.Tensor, terms: torch.Tensor | None, n: int) -> None:
        """A batch of ``n`` samples: its mean ``loss`` and its terms' means, shape (T,)."""
        weighted = loss.detach().double() * n
        self.loss = weighted if self.loss is None else self.loss + weighted
        if self.term_names:
            weighted = terms.double() * n
            self.terms = weighted if self.terms is None else self.terms + weighted
        self.count += n

    def means(self) -> EpochLoss:
        if self.loss is None:
            return EpochLoss(float("nan"), 0, {})
        terms = {} if self.terms is None else dict(
            zip(self.term_names, (self.terms / self.count).tolist(), strict=True))
        return EpochLoss(float(self.loss) / self.count, self.count, terms)


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


def train(config: Config | Mapping[str, Any], *, bundle: DatasetBundle | None = None,
          components: list[TrackerComponent] | None = None, progress: bool = True,
          checkpoint_dir: Path | None = None, resume: bool = False,
          spaces: SpaceSet | Mapping[str, LabelSpace] | None = None,
          run_dir: Path | None = None) -> TrainResult:
    """Train the configured model and track every epoch, 0 (untrained) to ``train.epochs``.

    Parameters
    ----------
    config : a checked config (:func:`hypbias.train.config.load_config`) or its plain form.
    bundle : the dataset, if already built (else from ``config.data``).
    components : extra tracker components (neural collapse, manifold, ...).
    progress : show progress bars (they also switch off when stderr is not a terminal) and, with
        ``log.console: auto``, one line per epoch on stdout when stdout is not a terminal.
    checkpoint_dir : where ``train.save_every`` writes ``epoch_XXX.pt``.
    resume : continue from the newest checkpoint in ``checkpoint_dir`` (made with the same config;
        from the start when there is none); on the CPU the result equals an uninterrupted run.
    spaces : the run's label spaces (a SpaceSet, whose random draws the loggers report too) or its
        hypernym spaces by name; losses that use them (``multilevel``) take the hypernym spaces.
    run_dir : the run directory, where the loggers of ``config.log`` write (``log.csv`` after every
        epoch, ``tensorboard/``, ...); None: the console line only.
    """
    training = prepare_training(config, bundle=bundle, components=components, spaces=spaces)
    restore = None
    if resume:
        restore = checkpoint.resume_point(checkpoint_dir, training.config)
    return run_training(training, progress=progress, checkpoint_dir=checkpoint_dir, restore=restore,
                        run_dir=run_dir)


def run_training(t: Training, *, progress: bool = True, checkpoint_dir: Path | None = None,
                 restore: Mapping[str, Any] | None = None, run_dir: Path | None = None) -> TrainResult:
    """Measure epoch 0 (the untrained model), then train and measure each epoch to ``train.epochs``.

    ``restore`` is a checkpoint's payload (:func:`~hypbias.train.checkpoint.resume_point`) to
    continue from; ``run_dir`` is where the loggers of ``log:`` write. Returns early, with
    :attr:`TrainResult.diverged` set, at the first epoch whose loss or outputs are not finite;
    Ctrl-C raises :class:`~hypbias.errors.TrainingInterrupted`.
    """
    elapsed = t.state.load(restore) if restore is not None else 0.0
    start = time.perf_counter() - elapsed
    rank = distributed.rank()
    saving = checkpoint_dir is not None and t.config.train.save_every > 0 and rank == 0
    epochs = t.config.train.epochs
    epoch = t.tracker.next_epoch
    t.tracker.loggers.extend(build_loggers(t.config.log, run_dir, first_epoch=epoch, epochs=epochs,
                                           config=t.config.as_dict(), progress=progress))
    with subnormals_flushed():
        try:
            if epoch == 0:
                first_lr = t.step.optimizer.param_groups[0]["lr"]
                _measure(t, 0, {"loss": float("nan"), "lr": first_lr, "images_per_s": float("nan")})
                if saving:  # the untrained model, for analyses of checkpoints after the fact
                    t.state.save(checkpoint_dir / "epoch_000.pt", time.perf_counter() - start)
            bar = tqdm(range(t.tracker.next_epoch, epochs + 1), desc="epochs", leave=True,
                       disable=True if (not progress or rank) else None)
            for epoch in bar:
                trained, terms = _train_epoch(t, progress and not rank)
                if not math.isfinite(trained["loss"]):
                    what = f"the training loss is {trained['loss']}"
                    return _stopped(t, start, Divergence(epoch, what, _last_loss(t.tracker.log)))
                acc = _measure(t, epoch, trained, terms)
                bar.set_postfix(loss=f"{trained['loss']:.3f}",
                                **{s: f"{a:.1f}%" for s, a in acc.items()})
                if saving and (epoch % t.config.train.save_every == 0 or epoch == epochs):
                    t.state.save(checkpoint_dir / f"epoch_{epoch:03d}.pt",
                                 time.perf_counter() - start)
        except NonFiniteOutputs:
            return _stopped(t, start, Divergence(epoch, "the model's outputs are not finite",
                                                 _last_loss(t.tracker.log)))
        except KeyboardInterrupt:
            raise TrainingInterrupted(epoch) from None
        finally:
            t.tracker.close_loggers()
    if t.step.ema is not None:
        t.step.ema.copy_to(t.model)
    return TrainResult(t.model, t.tracker, t.bundle, t.tracker.log, time.perf_counter() - start)


def _train_epoch(t: Training, progress: bool) -> tuple[dict[str, float], dict[str, float]]:
    """One epoch of training: its mean loss over processes, learning rate at its start and speed
    (the row of ``log.csv``), and the mean of each loss term over processes."""
    rank, world = distributed.rank(), distributed.world_size()
    lr = t.step.optimizer.param_groups[0]["lr"]
    order = torch.randperm(len(t.bundle.train), generator=t.data_order)[rank::world]
    batch_iter = batches(t.bundle.train, t.config.train.batch_size // world, device=t.device,
                         indices=order, num_workers=t.config.train.num_workers)
    tick = time.perf_counter()
    trained = train_one_epoch(t.step, batch_iter, t.steps_per_epoch, progress)
    if t.device.type == "cuda":
        torch.cuda.synchronize(t.device)
    terms = {name: distributed.mean(value) for name, value in trained.terms.items()}
    return {"loss": distributed.mean(trained.loss), "lr": lr,
            "images_per_s": trained.samples * world / (time.perf_counter() - tick)}, terms


def _measure(t: Training, epoch: int, trained: dict[str, float],
             terms: Mapping[str, float] | None = None) -> dict[str, float]:
    """Evaluate the tracked splits and close the tracker's epoch, its row of ``log.csv`` holding
    ``trained`` (the epoch's ``loss``, ``lr`` and ``images_per_s``; NaN loss and speed at epoch 0)
    and its metrics each loss term's mean (``loss_term``, split ``train``)."""
    rows = [metric_row(epoch, "train", name, "loss_term", value)
            for name, value in (terms or {}).items()]
    with t.evaluated_weights():
        evaluate(t.model, t.bundle, t.tracker, t.device, t.config.track.eval_batch_size,
                 t.step.mode)
        return t.tracker.end_epoch(epoch, t.model, log=trained, rows=rows)


def _last_loss(log: list[dict[str, float]]) -> tuple[int, float] | None:
    finite = [(int(row["epoch"]), row["loss"]) for row in log if math.isfinite(row["loss"])]
    return finite[-1] if finite else None


def _stopped(t: Training, start: float, divergence: Divergence) -> TrainResult:
    return TrainResult(t.model, t.tracker, t.bundle, t.tracker.log, time.perf_counter() - start,
                       divergence)
