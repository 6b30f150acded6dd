"""The experiment's own config sections, declared once (the tracker components declare theirs).

``data`` and ``model`` name a registered dataset or model; their other keys are the keyword options of
its factory, checked against the factory's signature and annotations (ranges are the factory's to
check, when the dataset or model is built, still before anything is written). ``loss`` is checked
from the declarations of the losses (:func:`hypbias.losses.validate_loss_options`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hypbias.data import list_datasets
from hypbias.data.augment import AUGMENTS
from hypbias.data.base import DATASETS
from hypbias.errors import ConfigError
from hypbias.losses import validate_loss_options
from hypbias.models import list_models
from hypbias.models.registry import ADAPTERS, MODELS
from hypbias.train.config.schema import (
    Bool,
    Choice,
    Float,
    Int,
    Kind,
    ListOf,
    Nullable,
    Origins,
    Refused,
    Section,
    Text,
    check_options,
    key,
    refuse_unknown,
    require_mapping,
)
from hypbias.train.schedules import SCHEDULES

SPLITS = Choice("train", "val")
DEVICE = Text(r"auto|cpu|mps|cuda(:\d+)?", "'auto', 'cpu', 'cuda', 'cuda:<index>' or 'mps'",
              "devices")


class SpaceSpec(Kind):
    """An entry of ``spaces.hypernyms``: n groups (an int >= 2), ``"level:k"`` (k >= 1) or the
    name of a space the dataset defines (checked when the dataset is built)."""

    def parse(self, value: Any) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 2:
            return value
        if isinstance(value, str) and value and (not value.startswith("level:")
                                                 or re.fullmatch(r"level:[1-9]\d*", value)):
            return value
        raise Refused

    def describe(self) -> str:
        return "an int n >= 2, 'level:k' with k >= 1, or the name of a space the dataset defines"

    def plural(self) -> str:
        return "ints n >= 2, 'level:k' strings with k >= 1, or names of spaces the dataset defines"


class OpenSection(Section):
    """A section naming a registered factory (``name``); its other keys are the factory's options."""

    options: Mapping[str, Any]

    @classmethod
    def parse(cls, values: Any, origins: Origins) -> OpenSection:
        values = require_mapping(values, cls.SECTION, origins)
        options = {k: v for k, v in values.items() if k not in cls.declared()}
        section = cls(**cls.parse_keys(values, origins), options=MappingProxyType(options))
        section.check(origins)
        return section

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), **dict(self.options)}


@dataclass(frozen=True)
class DataSection(OpenSection):
    """``data:``: the dataset and its factory's options (``hypbias.data.list_datasets()``)."""

    SECTION = "data"
    name: str = key("synthetic", Text(), "the dataset: synthetic, cifar100, imagenet, imagefolder, "
                                         "dbpedia")
    root: str | None = key(None, Nullable(Text()), "its folder on disk (--data-dir)")
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def check(self, origins: Origins) -> None:
        if self.name not in DATASETS:
            raise origins.refuse("data.name", Choice(*list_datasets()).describe(), self.name)
        check_options(DATASETS.get(self.name), self.options, "data.", origins,
                      f"dataset {self.name!r}", provided={"root"})


@dataclass(frozen=True)
class ModelSection(OpenSection):
    """``model:``: a registered model (or ``<adapter>:<name>``) and its factory's options."""

    SECTION = "model"
    name: str = key("mlp", Text(), "a registered model (hypbias.models.list_models()) or an "
                                   "adapter's torchvision:<name>, timm:<name>, hf:<name>")
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def check(self, origins: Origins) -> None:
        prefix, sep, _ = self.name.partition(":")
        if sep and prefix in ADAPTERS:
            return  # an adapter's options are those of the wrapped library: checked when built
        if self.name not in MODELS:
            raise origins.refuse("model.name", f"one of {', '.join(list_models())}", self.name)
        check_options(MODELS.get(self.name), self.options, "model.", origins,
                      f"model {self.name!r}", provided={"num_classes"})


@dataclass(frozen=True)
class TrainSection(Section):
    """``train:``: optimisation, schedule, augmentation and where the model runs."""

    SECTION = "train"
    epochs: int = key(30, Int(low=1), "epochs of training; epoch 0 is the untrained model")
    batch_size: int = key(128, Int(low=1), "under torchrun the batch is split over processes")
    optimizer: str = key("sgd", Choice("sgd", "adamw", "rmsprop"))
    lr: float = key(0.01, Float(low=0, low_open=True), "the base learning rate")
    momentum: float = key(0.9, Float(low=0, high=1), "SGD's and RMSprop's momentum")
    nesterov: bool = key(False, Bool(), "Nesterov momentum (SGD)")
    weight_decay: float = key(5e-4, Float(low=0))
    eps: float = key(1e-8, Float(low=0, low_open=True),
                     "AdamW's and RMSprop's ε (torchvision's MobileNet-V3 recipe: 0.0316 with RMSprop)")
    rmsprop_alpha: float = key(0.99, Float(low=0, high=1, high_open=True),
                               "RMSprop's smoothing constant (torchvision's MobileNet-V3 recipe: 0.9)")
    schedule: str = key("cosine", Choice(*SCHEDULES), "stepped per batch")
    milestones: tuple[float, ...] = key((0.5, 0.75), ListOf(Float(low=0, high=1)),
                                        "fractions of training where 'step' multiplies by gamma")
    gamma: float = key(0.1, Float(low=0, low_open=True))
    warmup_epochs: float = key(0, Float(low=0), "linear warmup, in epochs")
    label_smoothing: float = key(0.0, Float(low=0, high=1))
    augment: str | None = key(None, Choice(*AUGMENTS), "batched on the device")
    ema: float = key(0.0, Float(low=0, high=1, high_open=True),
                     "EMA decay of the weights (0 = off); the EMA weights are evaluated and saved")
    device: str = key("auto", DEVICE, "auto = CUDA when available")
    amp: bool = key(False, Bool(), "bf16 autocast on CUDA")
    channels_last: bool = key(False, Bool())
    compile: bool = key(False, Bool(), "torch.compile")
    num_workers: int = key(0, Int(low=0), "DataLoader workers (datasets not held in memory)",
                           safe=True)
    save_every: int = key(0, Int(low=0), "checkpoint every k epochs (and epoch 0 and the last)",
                          safe=True)

    def check(self, origins: Origins) -> None:
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise origins.error("train.nesterov", "= true needs optimizer 'sgd' with momentum > 0. "
                                f"Got optimizer {self.optimizer!r}, momentum {self.momentum} instead.")
        if self.warmup_epochs > self.epochs:
            raise origins.error("train.warmup_epochs", f"must be at most train.epochs = {self.epochs}. "
                                f"Got {self.warmup_epochs:g} instead.")


@dataclass(frozen=True)
class TrackSection(Section):
    """``track:``: which splits are evaluated every epoch."""

    SECTION = "track"
    splits: tuple[str, ...] = key(("val",), ListOf(SPLITS, min_len=1, unique=True),
                                  "splits whose confusion matrix is recorded every epoch")
    eval_batch_size: int = key(1024, Int(low=1))


@dataclass(frozen=True)
class SpacesSection(Section):
    """``spaces:``: the hypernym spaces and their random isomorphic draws."""

    SECTION = "spaces"
    hypernyms: tuple[int | str, ...] = key((4,), ListOf(SpaceSpec(), min_len=1, unique=True),
                                           "an int n, 'level:k', or a space the dataset defines")
    random_draws: int = key(10, Int(low=1), "random isomorphic draws per hypernym space")
    q: float = key(0.95, Float(low=0, high=1, low_open=True), "the τ_q threshold (Fig. 4)")
    seed: int = key(0, Int(low=0), "seeds the random draws")


@dataclass(frozen=True)
class LogSection(Section):
    """``log:``: where each epoch's numbers go while the run trains (never changes what is measured).

    ``log.csv`` is rewritten after every epoch whatever these say (:mod:`hypbias.train.loggers`).
    """

    SECTION = "log"
    console: str = key("auto", Choice("auto", "always", "never"),
                       "one line per epoch on stdout; auto: when stdout is not a terminal (nohup, "
                       "SLURM) and progress is shown", safe=True)
    tensorboard: bool = key(False, Bool(), "scalars under <run>/tensorboard/ (the tensorboard extra)",
                            safe=True)
    wandb: bool = key(False, Bool(), "a Weights & Biases run (WANDB_MODE=offline keeps it local)",
                      safe=True)
    mlflow: bool = key(False, Bool(), "an MLflow run (MLFLOW_TRACKING_URI, else "
                                      "<run>/mlruns/mlflow.db)", safe=True)
    project: str = key("hypbias", Text(), "the W&B project and the MLflow experiment", safe=True)


BASE_SECTIONS: tuple[type[Section], ...] = (DataSection, ModelSection, TrainSection, TrackSection,
                                            SpacesSection, LogSection)
"""The experiment's sections besides ``loss`` (declared by the losses) and the components'."""


def parse_loss(values: Any, label_smoothing: float, origins: Origins) -> Mapping[str, Any]:
    """The ``loss:`` section validated from the losses' declarations, every option filled in."""
    values = require_mapping(values, "loss", origins)
    try:
        options = validate_loss_options(values, label_smoothing=label_smoothing)
    except ConfigError as err:
        named = re.search(r"'((?:loss|train)\.\w+)'", str(err))
        raise ConfigError(f"{origins.of(named.group(1) if named else 'loss')}: {err}") from None
    return MappingProxyType(options)


def check_top_level(values: Mapping[str, Any], sections: list[str], origins: Origins) -> None:
    """Refuse an unknown top-level key."""
    refuse_unknown(values, ["seed", "config_file", *sections], "", origins)


__all__ = ["BASE_SECTIONS", "DataSection", "LogSection", "ModelSection", "OpenSection",
           "SpacesSection", "TrackSection", "TrainSection", "check_top_level", "parse_loss"]
