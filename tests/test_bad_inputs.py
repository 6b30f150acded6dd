"""Bad inputs and faults, as a user meets them on the command line (issue 10).

Every row of :data:`CASES` runs ``hypbias`` in-process on a tiny config and checks the contract of
DESIGN.md §4: the exit code, exactly one line on stderr that names the file, ``--set`` argument,
key or value, no traceback, and every file that existed before byte-identical afterwards (for a
refused input, nothing written at all). Signals and closed pipes need a process of their own.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fabricate import write_cifar100
from hypbias.cli import main

TINY = """\
seed: 0
data: {name: synthetic, branching: [2, 2, 2], train_per_class: 8, val_per_class: 4}
model: {name: mlp, hidden: [8]}
train: {epochs: 1, batch_size: 16, lr: 0.05}
track: {splits: [val, train]}
spaces: {hypernyms: [2], random_draws: 1}
"""
"""8 classes under a 2 x 2 x 2 tree: a run takes about 0.1 s."""

QUIET = ["--no-progress", "--no-report"]


class RunsCode:
    """An object whose unpickling runs ``touch <marker>``: what a hostile data file carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    """The tiny config, a finished run with checkpoints and NC, and a second run with another lr."""
    root = tmp_path_factory.mktemp("templates")
    (root / "tiny.yaml").write_text(TINY)
    for name, lr in (("run", "0.05"), ("other", "0.01")):
        code = main(["run", str(root / "tiny.yaml"), "--out", str(root / name), *QUIET,
                     "--set", "train.epochs=2", "--set", "train.save_every=1", "--set", "nc.every=1",
                     "--set", f"train.lr={lr}"])
        assert code == 0
    return root


@dataclass
class Scene:
    """Paths of one test: copies of the templates are made on demand under ``tmp``."""

    tmp: Path
    templates: Path
    marker: Path = field(init=False)

    def __post_init__(self) -> None:
        self.marker = self.tmp / "code-ran"

    @property
    def config(self) -> Path:
        path = self.tmp / "tiny.yaml"
        if not path.exists():
            shutil.copy(self.templates / "tiny.yaml", path)
        return path

    @property
    def new(self) -> Path:
        return self.tmp / "new"

    def run(self, name: str = "run") -> Path:
        """A copy of a finished run."""
        path = self.tmp / name
        if not path.exists():
            shutil.copytree(self.templates / name, path)
        return path

    def killed(self) -> Path:
        """A run killed after its epoch-1 checkpoint: config.yaml and checkpoints only."""
        path = self.tmp / "killed"
        if not path.exists():
            shutil.copytree(self.templates / "run", path)
            for entry in path.iterdir():
                if entry.name not in ("config.yaml", "checkpoints"):
                    entry.unlink()
            (path / "checkpoints" / "epoch_002.pt").unlink()
        return path

    def cifar(self) -> Path:
        path = self.tmp / "cifar"
        if not path.exists():
            write_cifar100(path, n_train=1, n_test=1)
        return path

    def hostile_checkpoint(self, path: Path) -> None:
        """Replace a checkpoint by one that would run ``touch marker`` when unpickled."""
        payload = torch.load(path, weights_only=True)
        payload["extra"] = RunsCode(self.marker)
        torch.save(payload, path)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under ``root``."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def edit_yaml(path: Path, section: str, key: str, value) -> None:
    data = yaml.safe_load(path.read_text())
    data[section][key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@dataclass(frozen=True)
class Case:
    """A bad input: ``argv(scene)``, the exit code, and what the one line must contain."""

    id: str
    argv: Callable[[Scene], list[str]]
    expect: Callable[[Scene], list[str]]
    code: int = 2
    setup: Callable[[Scene], None] | None = None


def bad_set(key: str, value: str, *expect: str) -> Case:
    """``hypbias run tiny.yaml --set key=value``: refused naming the argument, key and value."""
    item = f"{key}={value}"
    return Case(f"set-{item}", lambda s: ["run", str(s.config), "--out", str(s.new), *QUIET,
                                         "--set", item],
                lambda s: [f"--set {item}", *(expect or (f"'{key}'",))])


def bad_sets(items: list[str], origin: str, *expect: str) -> Case:
    args = [a for item in items for a in ("--set", item)]
    return Case("set-" + ",".join(items), lambda s: ["run", str(s.config), "--out", str(s.new),
                                                       *QUIET, *args],
                lambda s: [origin, *expect])


def bad_file(name: str, text: str, *expect: str) -> Case:
    """A config file with ``text``; the line names the file."""
    def setup(s: Scene) -> None:
        (s.tmp / name).write_text(text.replace("TINY", str(s.config)))

    return Case(f"file-{name}", lambda s: ["run", str(s.tmp / name), "--out", str(s.new), *QUIET],
                lambda s: [str(s.tmp / name), *expect], setup=setup)


CONFIG_VALUES = [
    bad_set("train.epochs", "abc", "'train.epochs' must be an int >= 1. Got 'abc' instead."),
    bad_set("train.epochs", "0", "'train.epochs' must be an int >= 1. Got 0 instead."),
    bad_set("train.epochs", "-1", "Got -1 instead."),
    bad_set("train.epochs", "2.5", "must be an int >= 1. Got 2.5 instead."),
    bad_set("train.batch_size", "0", "'train.batch_size' must be an int >= 1. Got 0 instead."),
    bad_set("train.optimizer", "adam", "must be one of 'sgd', 'adamw', 'rmsprop'. Got 'adam' instead."),
    bad_set("train.lr", "0", "'train.lr' must be a finite number > 0. Got 0 instead."),
    bad_set("train.lr", "-1e-3", "Got -0.001 instead."),
    bad_set("train.lr", ".nan", "'train.lr' must be a finite number > 0. Got nan instead."),
    bad_set("train.lr", "fast", "Got 'fast' instead."),
    bad_set("train.momentum", "2", "'train.momentum' must be a finite number in [0, 1]. Got 2"),
    bad_set("train.weight_decay", "-1", "'train.weight_decay' must be a finite number >= 0."),
    bad_set("train.schedule", "linear", "must be one of 'cosine', 'step', 'constant'."),
    bad_set("train.milestones", "[2]", "'train.milestones' must be a list of finite numbers in "
                                       "[0, 1]. Got [2] instead."),
    bad_set("train.gamma", "0", "'train.gamma' must be a finite number > 0."),
    bad_set("train.warmup_epochs", "5", "'train.warmup_epochs' must be at most train.epochs = 1."),
    bad_set("train.label_smoothing", "1.5", "'train.label_smoothing' must be a finite number in "
                                            "[0, 1]. Got 1.5"),
    bad_set("train.augment", "mixup", "'train.augment' must be one of null, 'crop_flip',",
            "Got 'mixup' instead."),
    bad_set("train.ema", "1", "'train.ema' must be a finite number in [0, 1). Got 1 instead."),
    bad_set("train.device", "tpu", "'train.device' must be 'auto', 'cpu', 'cuda', 'cuda:<index>' "
                                   "or 'mps'. Got 'tpu' instead."),
    bad_set("train.amp", "maybe", "'train.amp' must be true or false. Got 'maybe' instead."),
    bad_set("train.num_workers", "-1", "'train.num_workers' must be an int >= 0."),
    bad_set("train.save_every", "-2", "'train.save_every' must be an int >= 0. Got -2"),
    bad_sets(["train.momentum=0", "train.nesterov=true"], "--set train.nesterov=true",
             "'train.nesterov' = true needs optimizer 'sgd' with momentum > 0"),
    bad_set("track.splits", "[]", "'track.splits' must be a non-empty list of distinct values "
                                  "among 'train', 'val'. Got [] instead."),
    bad_set("track.splits", "[test]", "Got ['test'] instead."),
    bad_set("track.eval_batch_size", "0", "'track.eval_batch_size' must be an int >= 1."),
    bad_set("spaces.q", "1.5", "'spaces.q' must be a finite number in (0, 1]. Got 1.5 instead."),
    bad_set("spaces.q", "0", "'spaces.q' must be a finite number in (0, 1]. Got 0 instead."),
    bad_set("spaces.random_draws", "-1", "'spaces.random_draws' must be an int >= 1. Got -1"),
    bad_set("spaces.random_draws", "0", "Got 0 instead."),
    bad_set("spaces.hypernyms", "[]", "'spaces.hypernyms' must be a non-empty list"),
    bad_set("spaces.hypernyms", "[1]", "ints n >= 2"),
    bad_set("spaces.hypernyms", "[level:0]", "'level:k' strings with k >= 1"),
    bad_set("spaces.hypernyms", "[level:abc]", "Got ['level:abc'] instead."),
    bad_set("spaces.hypernyms", "[level:9]", "'spaces.hypernyms' entry 'level:9' is as deep as the "
                                             "tree or deeper (height 3)"),
    bad_set("spaces.hypernyms", "[8]", "'spaces.hypernyms' entry 8 must be below the 8 classes"),
    bad_sets(["data.branching=[3,2,2]", "spaces.hypernyms=[2]"], "--set spaces.hypernyms=[2]",
             "'spaces.hypernyms' does not fit the dataset", "cannot cut 2 groups"),
    bad_set("spaces.hypernyms", "[S99]", "unknown space 'S99'"),
    bad_set("seed", "-1", "'seed' must be an int >= 0. Got -1 instead."),
    bad_set("model.name", "resnet9", "'model.name' must be one of", "Got 'resnet9' instead."),
    bad_set("model.hiden", "[8]", "'model.hiden' is not an option of model 'mlp'",
            "did you mean 'model.hidden'?"),
    bad_set("model.hidden", "[0]", "'model.hidden'", "Got 0 instead."),
    bad_set("model.hidden", "abc", "'model.hidden' must be a list of ints. Got 'abc' instead."),
    bad_set("data.name", "mnist", "'data.name' must be one of", "Got 'mnist' instead."),
    bad_set("data.nosie", "1", "'data.nosie' is not an option of dataset 'synthetic'"),
    bad_set("data.branching", "[2,0,2]", "'data.branching'", "Got 0 instead."),
    bad_set("data.branching", "5", "'data.branching' must be a list of ints. Got 5 instead."),
    bad_set("data.train_per_class", "0", "'data.train_per_class'", "Got 0 instead."),
    bad_set("loss.name", "focal", "'loss.name'", "Got 'focal' instead."),
    bad_set("loss.alpha", "1", "'loss.alpha' is not an option of the 'ce' loss"),
    bad_sets(["loss.name=hxe", "loss.alpha=-1"], "--set loss.alpha=-1", "'loss.alpha'",
             "Got -1 instead."),
    bad_sets(["loss.name=multilevel", "loss.spaces=[S9]"], "S9"),
    bad_set("nc.every", "-1", "'nc.every' must be an int >= 0. Got -1 instead."),
    bad_set("nc.split", "test", "'nc.split' must be one of 'train', 'val'. Got 'test' instead."),
    bad_sets(["nc.every=1", "track.splits=[val]"], "tiny.yaml",
             "'nc.split' = 'train' must be one of track.splits ['val']"),
    bad_sets(["nc.every=1", "nc.spaces=[S7]"], "--set nc.spaces=[S7]",
             "'nc.spaces' must be 'all' or a list of space names among H, S2"),
    bad_set("manifold.every", "[0,-1]", "'manifold.every' must be an int >= 0 or a list of epochs"),
    bad_set("manifold.k", "0", "'manifold.k' must be an int >= 1. Got 0 instead."),
    bad_set("manifold.space", "pca", "'manifold.space' must be one of", "Got 'pca' instead."),
    bad_set("log.tensorboard", "maybe", "'log.tensorboard' must be true or false."),
    bad_set("mistakes.enabled", "maybe", "'mistakes.enabled' must be true or false."),
    bad_set("colour", "1", "unknown key 'colour'"),
    bad_set("train.lrr", "1", "unknown key 'train.lrr' (did you mean 'train.lr'?)"),
    Case("set-no-equals", lambda s: ["run", str(s.config), "--out", str(s.new), "--set", "train"],
         lambda s: ["--set train: expected key=value"]),
    Case("set-empty-part", lambda s: ["run", str(s.config), "--out", str(s.new), "--set",
                                      "train..lr=1"],
         lambda s: ["--set train..lr=1: expected key=value with a dotted key"]),
    bad_set("spaces.hypernyms", "[4,20", "cannot parse the value as a YAML list or mapping"),
    bad_set("train", "3", "'train' must be a mapping of keys to values. Got 3 instead."),
]

CONFIG_FILES = [
    bad_file("syntax.yaml", "train: [1, 2\n", "cannot parse YAML"),
    bad_file("list.yaml", "- 1\n- 2\n", "a config must be a mapping at the top level"),
    bad_file("loop.yaml", "base: loop.yaml\n", "'base' inheritance loops back"),
    bad_file("value.yaml", "base: TINY\ntrain:\n  lr: 1e-3x\n",
             "'train.lr' must be a finite number > 0. Got '1e-3x' instead."),
    bad_file("base.yaml", "base: nowhere.yaml\n", "'base' names 'nowhere.yaml', which is neither"),
    Case("file-missing", lambda s: ["run", str(s.tmp / "missing.yaml"), "--out", str(s.new)],
         lambda s: [f"{s.tmp / 'missing.yaml'}: no such config file"]),
    Case("resume-with-set", lambda s: ["run", "--resume", str(s.killed()), "--set", "train.lr=1"],
         lambda s: ["--resume continues a run with its saved config.yaml"]),
]


def _edit_killed(s: Scene, section: str, key: str, value) -> None:
    edit_yaml(s.killed() / "config.yaml", section, key, value)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _foreign_checkpoint(s: Scene) -> None:
    shutil.copy(s.run("other") / "checkpoints" / "epoch_000.pt",
                s.run() / "checkpoints" / "epoch_000.pt")


RUN_DIRECTORIES = [
    Case("run-into-finished-run", lambda s: ["run", str(s.config), "--out", str(s.run()), *QUIET],
         lambda s: [f"{s.run()}: already holds a finished run", "--overwrite"]),
    Case("run-into-killed-run", lambda s: ["run", str(s.config), "--out", str(s.killed()), *QUIET],
         lambda s: [f"{s.killed()}: already holds an unfinished run",
                    f"hypbias run --resume {s.killed()}"]),
    Case("overwrite-with-bad-config", lambda s: ["run", str(s.config), "--out", str(s.run()),
                                                 "--overwrite", *QUIET, "--set",
                                                 "train.batch_size=0"],
         lambda s: ["--set train.batch_size=0", "'train.batch_size'", "Got 0"]),
    Case("overwrite-with-bad-data", lambda s: ["run", str(s.config), "--out", str(s.run()),
                                               "--overwrite", *QUIET, "--set",
                                               "data.branching=[2,0,2]"],
         lambda s: ["--set data.branching=[2,0,2]", "'data.branching'"]),
    Case("resume-finished-run", lambda s: ["run", "--resume", str(s.run()), *QUIET],
         lambda s: [f"{s.run()}: the run is complete, there is nothing to resume"]),
    Case("resume-edited-lr", lambda s: ["run", "--resume", str(s.killed()), *QUIET],
         lambda s: [f"{s.killed() / 'config.yaml'}", "differs from the config of",
                    "epoch_001.pt", "train.lr: 0.05 -> 0.5"],
         setup=lambda s: _edit_killed(s, "train", "lr", 0.5)),
    Case("resume-edited-epochs", lambda s: ["run", "--resume", str(s.killed()), *QUIET],
         lambda s: ["train.epochs: 2 -> 9"], setup=lambda s: _edit_killed(s, "train", "epochs", 9)),
    Case("resume-edited-data-size", lambda s: ["run", "--resume", str(s.killed()), *QUIET],
         lambda s: ["data.train_per_class: 8 -> 9"],
         setup=lambda s: _edit_killed(s, "data", "train_per_class", 9)),
    Case("resume-bad-edited-value", lambda s: ["run", "--resume", str(s.killed()), *QUIET],
         lambda s: [f"{s.killed() / 'config.yaml'}: 'train.epochs' must be an int >= 1"],
         setup=lambda s: _edit_killed(s, "train", "epochs", 0)),
    Case("resume-not-a-run", lambda s: ["run", "--resume", str(s.tmp), *QUIET],
         lambda s: [f"{s.tmp / 'config.yaml'}: missing"]),
    Case("resume-corrupt-config", lambda s: ["run", "--resume", str(s.killed()), *QUIET],
         lambda s: [f"{s.killed() / 'config.yaml'}: cannot be read"],
         setup=lambda s: (s.killed() / "config.yaml").write_text("train: [1,\n")),
    Case("resume-truncated-checkpoint", lambda s: ["run", "--resume", str(s.killed()), *QUIET],
         lambda s: [f"{s.killed() / 'checkpoints' / 'epoch_001.pt'}: cannot read checkpoint"],
         setup=lambda s: _truncate(s.killed() / "checkpoints" / "epoch_001.pt")),
    Case("resume-hostile-checkpoint", lambda s: ["run", "--resume", str(s.killed()), *QUIET],
         lambda s: [f"{s.killed() / 'checkpoints' / 'epoch_001.pt'}: cannot read checkpoint",
                    "objects other than tensors and plain data"],
         setup=lambda s: s.hostile_checkpoint(s.killed() / "checkpoints" / "epoch_001.pt")),
]

READING_RUNS = [
    Case("report-missing-dir", lambda s: ["report", str(s.tmp / "nope")],
         lambda s: [f"{s.tmp / 'nope' / 'config.yaml'}: missing"]),
    Case("report-missing-summary", lambda s: ["report", str(s.run())],
         lambda s: [f"{s.run() / 'summary.json'}: missing"],
         setup=lambda s: (s.run() / "summary.json").unlink()),
    Case("report-corrupt-summary", lambda s: ["report", str(s.run())],
         lambda s: [f"{s.run() / 'summary.json'}: cannot be read", "JSONDecodeError"],
         setup=lambda s: _truncate(s.run() / "summary.json")),
    Case("report-summary-not-object", lambda s: ["report", str(s.run())],
         lambda s: [f"{s.run() / 'summary.json'}: cannot be read", "must hold a JSON object"],
         setup=lambda s: (s.run() / "summary.json").write_text("[1, 2]")),
    Case("report-truncated-confusion", lambda s: ["report", str(s.run())],
         lambda s: [f"{s.run() / 'confusion.npz'}: cannot be read"],
         setup=lambda s: _truncate(s.run() / "confusion.npz")),
    Case("report-garbage-spaces", lambda s: ["report", str(s.run())],
         lambda s: [f"{s.run() / 'spaces.npz'}: cannot be read"],
         setup=lambda s: (s.run() / "spaces.npz").write_bytes(b"not a zip file at all")),
    Case("report-corrupt-config", lambda s: ["report", str(s.run())],
         lambda s: [f"{s.run() / 'config.yaml'}: cannot be read"],
         setup=lambda s: (s.run() / "config.yaml").write_text("data: {name: [\n")),
    Case("analyze-truncated-checkpoint", lambda s: ["analyze", str(s.run()), *QUIET],
         lambda s: [f"{s.run() / 'checkpoints' / 'epoch_000.pt'}: cannot read checkpoint"],
         setup=lambda s: _truncate(s.run() / "checkpoints" / "epoch_000.pt")),
    Case("analyze-foreign-checkpoint", lambda s: ["analyze", str(s.run()), *QUIET],
         lambda s: [f"{s.run() / 'config.yaml'}", "epoch_000.pt", "train.lr: 0.01 -> 0.05"],
         setup=_foreign_checkpoint),
    Case("analyze-hostile-checkpoint", lambda s: ["analyze", str(s.run()), *QUIET],
         lambda s: ["epoch_000.pt: cannot read checkpoint", "objects other than tensors"],
         setup=lambda s: s.hostile_checkpoint(s.run() / "checkpoints" / "epoch_000.pt")),
    Case("analyze-set-train-key", lambda s: ["analyze", str(s.run()), *QUIET, "--set",
                                             "train.lr=0.1"],
         lambda s: ["--set train.lr=0.1: analyze reads only the manifold.* settings"]),
    Case("analyze-set-bad-manifold", lambda s: ["analyze", str(s.run()), *QUIET, "--set",
                                                "manifold.k=0"],
         lambda s: ["--set manifold.k=0: 'manifold.k' must be an int >= 1. Got 0 instead."]),
    Case("analyze-no-checkpoints", lambda s: ["analyze", str(s.run()), *QUIET],
         lambda s: [f"{s.run() / 'checkpoints'}: no epoch_XXX.pt checkpoints to analyse"],
         setup=lambda s: shutil.rmtree(s.run() / "checkpoints")),
    Case("compare-other-classes", lambda s: ["compare", str(s.run()), str(s.run("other")), "--out",
                                             str(s.tmp / "cmp")],
         lambda s: [f"{s.run('other') / 'hierarchy.json'}: its 8 classes differ"],
         setup=lambda s: edit_json_classes(s.run("other") / "hierarchy.json")),
    Case("compare-missing-metrics", lambda s: ["compare", str(s.run()), str(s.run("other")),
                                               "--out", str(s.tmp / "cmp")],
         lambda s: [f"{s.run('other') / 'metrics.csv'}: missing"],
         setup=lambda s: [(s.run("other") / n).unlink() for n in ("metrics.csv", "metrics.parquet")]),
    Case("compare-one-run", lambda s: ["compare", str(s.run())],
         lambda s: ["compare needs at least two run directories. Got 1."]),
    Case("compare-names", lambda s: ["compare", str(s.run()), str(s.run("other")), "--names", "a"],
         lambda s: ["--names must give 2 distinct names"]),
]


def edit_json_classes(path: Path) -> None:
    import json

    data = json.loads(path.read_text())
    renamed = {data["classes"][0]: "intruder"}
    data["classes"] = [renamed.get(c, c) for c in data["classes"]]
    data["parents"] = {renamed.get(k, k): v for k, v in data["parents"].items()}
    path.write_text(json.dumps(data))


def _hostile_cifar(s: Scene) -> None:
    path = s.cifar() / "cifar-100-python" / "train"
    data = pickle.loads(path.read_bytes(), encoding="latin1")
    data[b"coarse_labels"] = RunsCode(s.marker)
    path.write_bytes(pickle.dumps(data, protocol=2))


DATA_FILES = [
    Case("cifar-hostile-pickle", lambda s: ["run", "cifar100_resnet18", "--data-dir", str(s.cifar()),
                                            "--out", str(s.new), *QUIET],
         lambda s: [f"{s.cifar() / 'cifar-100-python' / 'train'}: refused", "posix.system",
                    "nothing in it was run"], setup=_hostile_cifar),
    Case("cifar-truncated-pickle", lambda s: ["run", "cifar100_resnet18", "--data-dir",
                                              str(s.cifar()), "--out", str(s.new), *QUIET],
         lambda s: [f"{s.cifar() / 'cifar-100-python' / 'test'}: truncated or corrupt pickle"],
         setup=lambda s: _truncate(s.cifar() / "cifar-100-python" / "test")),
    Case("cifar-missing-folder", lambda s: ["run", "cifar100_resnet18", "--data-dir",
                                            str(s.tmp / "void"), "--out", str(s.new), *QUIET],
         lambda s: [f"{s.tmp / 'void'}", "no CIFAR-100 python files"]),
]


def _nan_weights(s: Scene) -> None:
    path = s.killed() / "checkpoints" / "epoch_001.pt"
    payload = torch.load(path, weights_only=True)
    payload["model"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                        for k, v in payload["model"].items()}
    torch.save(payload, path)


FAULTS = [
    Case("diverged-lr", lambda s: ["run", str(s.config), "--out", str(s.new), *QUIET, "--set",
                                   "train.lr=1e8", "--set", "train.epochs=3", "--set", "nc.every=1"],
         lambda s: [f"{s.new}: training diverged at epoch 1: the training loss is nan",
                    "no finite loss before it", "epoch 0 is kept"], code=3),
    Case("diverged-lr-100", lambda s: ["run", str(s.config), "--out", str(s.new), *QUIET, "--set",
                                       "train.lr=100", "--set", "train.epochs=8", "--set",
                                       "nc.every=1"],
         lambda s: ["training diverged at epoch", "last finite loss"], code=3),
    Case("diverged-nan-weights", lambda s: ["run", "--resume", str(s.killed()), *QUIET],
         lambda s: [f"{s.killed()}: training diverged at epoch 2: the training loss is nan",
                    "(last finite loss", "at epoch 1)", "epochs 0-1 are kept"],
         code=3, setup=_nan_weights),
]

CASES = CONFIG_VALUES + CONFIG_FILES + RUN_DIRECTORIES + READING_RUNS + DATA_FILES + FAULTS


def test_the_table_covers_enough_bad_inputs():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, templates, tmp_path, capsys):
    scene = Scene(tmp_path, templates)
    argv = case.argv(scene)  # copies the templates the case uses
    if case.setup is not None:
        case.setup(scene)
    expect = case.expect(scene)
    before = snapshot(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == case.code, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for part in expect:
        assert part in lines[0]
    after = snapshot(tmp_path)
    assert {k: after.get(k) for k in before} == before, "a file written before changed"
    if case.code == 2:
        assert after == before, f"written although refused: {sorted(set(after) - set(before))}"
    assert not scene.marker.exists(), "a data file ran code"


def test_diverged_run_keeps_what_was_measured_and_reports(templates, tmp_path, capsys):
    out = tmp_path / "diverged"
    assert main(["run", str(templates / "tiny.yaml"), "--out", str(out), *QUIET, "--set",
                 "train.lr=100", "--set", "train.epochs=8", "--set", "nc.every=1"]) == 3
    log = yaml.safe_load((out / "summary.json").read_text())
    epoch = int(log["diverged"].split("epoch ")[1].split(":")[0])
    confusion = np.load(out / "confusion.npz")["val"]
    assert confusion.shape[0] == epoch  # epochs 0 .. epoch - 1
    assert not (out / "model.pt").exists()  # its weights are not finite
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").exists()


def test_hostile_payloads_would_run_code_with_plain_pickle(tmp_path):
    """The hostile files of the table are live: unpickled without restriction, they run."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps({"x": RunsCode(marker)}, protocol=2))
    assert marker.exists()


def test_files_honour_the_umask(templates, tmp_path):
    old = os.umask(0o027)
    try:
        assert main(["run", str(templates / "tiny.yaml"), "--out", str(tmp_path / "r"), *QUIET,
                     "--set", "train.save_every=1"]) == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "r").rglob("*") if p.is_file()}
    assert modes and set(modes.values()) == {0o640}, modes


def _hypbias(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # A job started in the background of a non-interactive shell (CI, `make test &`) inherits an
    # ignored SIGINT, and Python then installs no KeyboardInterrupt handler: give the child the
    # default disposition, as a terminal's foreground process has.
    return subprocess.Popen([sys.executable, "-m", "hypbias", *args], env=env, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **kwargs)


def test_ctrl_c_ends_with_one_line_saying_how_to_resume(templates, tmp_path):
    out = tmp_path / "r"
    proc = _hypbias("run", str(templates / "tiny.yaml"), "--out", str(out), *QUIET,
                    "--set", "train.epochs=100000", "--set", "train.save_every=1000",
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = out / "checkpoints" / "epoch_000.pt"
    deadline = time.monotonic() + 120
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.exists(), f"no checkpoint within 120 s (exit code {proc.poll()})"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"still running 120 s after Ctrl-C; its stderr ends with: {err[-2000:]}")
    assert proc.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("hypbias run: interrupted at epoch ")
    assert lines[0].endswith(f"; continue with: hypbias run --resume {out}")


def test_a_closed_pipe_ends_quietly(templates):
    proc = _hypbias("hierarchy", "show", str(templates / "run"), stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written (hypbias ... | head -0)
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 141
    assert err == ""
