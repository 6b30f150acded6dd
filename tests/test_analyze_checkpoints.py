"""Checkpoints trained elsewhere: a plain loop saves its model's state dicts in the layouts of the
usual scripts and records its accuracies; ``hypbias analyze-checkpoints`` on the folder reproduces
them epoch by epoch, with neural collapse in every space and a report. File names, layouts, prefixes
and refusals; under torchrun (2 gloo processes) the same numbers as one process."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hypbias.cli import main as cli_main
from hypbias.errors import DataError
from hypbias.models import create
from hypbias.rundir import RunDir
from hypbias.train.config import load_config
from hypbias.train.loop import build_bundle
from hypbias.train.state_dicts import (
    epoch_from_name,
    load_weights,
    order_by_epoch,
    read_checkpoint_weights,
)

CONFIG = {"seed": 0,
          "data": {"name": "synthetic", "branching": [3, 3, 2], "dim": 32, "train_per_class": 10,
                   "val_per_class": 8},
          "model": {"name": "mlp", "hidden": [24]},
          "track": {"splits": ["val", "train"]},
          "spaces": {"hypernyms": [3], "random_draws": 2}}
NC_METRICS = {"nc1", "nc2_equinorm_means", "nc2_equinorm_weights", "nc2_equiangular_means",
              "nc2_equiangular_weights", "nc2_maxangle_means", "nc2_maxangle_weights", "nc3", "nc4"}


def _accuracy(model, split) -> float:
    model.eval()
    with torch.no_grad():
        return 100.0 * (model(split.x).argmax(1) == split.y).double().mean().item()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A plain loop over 3 epochs; its state dicts in four layouts and its accuracies."""
    root = tmp_path_factory.mktemp("elsewhere")
    config_file = root / "experiment.yaml"
    config_file.write_text(yaml.safe_dump(CONFIG))
    bundle = build_bundle(load_config(config_file))
    torch.manual_seed(0)
    model = create("mlp", bundle.num_classes, in_features=32, hidden=[24])
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    folder = root / "checkpoints"
    folder.mkdir()
    accuracies = {}
    for epoch in range(4):
        if epoch:
            model.train()
            for idx in torch.randperm(len(bundle.train.y)).split(16):
                loss = torch.nn.functional.cross_entropy(model(bundle.train.x[idx]), bundle.train.y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        accuracies[epoch] = (_accuracy(model, bundle.val), _accuracy(model, bundle.train))
        state = {k: v.clone() for k, v in model.state_dict().items()}
        noise = {k: v + 1.0 for k, v in state.items()}
        layouts = {
            0: ("model_0.pth", state),                                            # bare
            1: ("checkpoint-1.pth.tar", {"state_dict": state, "epoch": 1,
                                         "args": argparse.Namespace(lr=0.2)}),    # timm, no EMA
            2: ("epoch_2.pt", {"model": {f"module.{k}": v for k, v in state.items()},
                               "optimizer": opt.state_dict()}),                   # torchvision, DDP
            3: ("checkpoint-3.pth.tar", {"state_dict": noise, "state_dict_ema": state}),  # EMA
        }
        name, payload = layouts[epoch]
        torch.save(payload, folder / name)
    return config_file, folder, accuracies


def _analyse(config_file, pattern, out, *extra):
    return cli_main(["analyze-checkpoints", "--model", "mlp", "--config", str(config_file),
                     "--set", "model.hidden=[24]", "--checkpoints", pattern, "--out", str(out),
                     "--no-progress", *extra])


@pytest.mark.slow
def test_the_loops_accuracies_are_reproduced_per_epoch(saved, tmp_path):
    config_file, folder, accuracies = saved
    assert _analyse(config_file, f"{folder}/*", tmp_path / "run") == 0
    run = RunDir(tmp_path / "run")
    m = run.metrics
    for split, column in (("val", 0), ("train", 1)):
        acc = m[(m.metric == "accuracy") & (m.space == "H") & (m.split == split)]
        got = dict(zip(acc.epoch, acc.value, strict=True))
        assert got == pytest.approx({e: a[column] for e, a in accuracies.items()}), split
    nc = m[m.metric.isin(NC_METRICS)]
    assert set(nc.space) == {"H", "S3", "R3", "R3#0", "R3#1"}
    assert set(nc.metric) == NC_METRICS
    assert sorted(nc.epoch.unique()) == [0, 1, 2, 3]
    assert run.log.epoch.tolist() == [0, 1, 2, 3]
    assert run.config["model"]["name"] == "mlp" and run.config["train"]["epochs"] == 3
    listed = json.loads(run.file("checkpoints.json").read_text())["checkpoints"]
    sources = [c["weights"] for c in listed]
    assert sources == ["(the file)", "state_dict", "model", "state_dict_ema"]
    html = run.file("report.html").read_text()
    assert "Neural collapse" in html and "Hypernym bias" in html


@pytest.mark.slow
def test_given_epochs_label_the_files_and_no_ema_reads_the_raw_weights(saved, tmp_path):
    config_file, folder, accuracies = saved
    out = tmp_path / "run"
    assert _analyse(config_file, str(folder / "checkpoint-3.pth.tar"), out, "--epochs", "7",
                    "--no-ema", "--set", "nc.every=0", "--no-report") == 0
    run = RunDir(out)
    acc = run.metrics[(run.metrics.metric == "accuracy") & (run.metrics.space == "H")]
    assert set(acc.epoch) == {7}
    assert "nc1" not in set(run.metrics.metric)
    assert acc[acc.split == "val"].value.item() != pytest.approx(accuracies[3][0])  # the +1 weights


@pytest.mark.slow
def test_manifold_inputs_are_drawn_once_and_the_environment_names_layers_and_device(
        saved, tmp_path, monkeypatch):
    """The series' components are built once (one draw of the manifold samples for the four
    checkpoints) and bound to the model: environment.json names its layers, pictures and device."""
    from hypbias.train.components import manifold

    draws = []
    draw = manifold.manifold_inputs
    monkeypatch.setattr(manifold, "manifold_inputs", lambda *args: draws.append(args) or draw(*args))
    config_file, folder, _ = saved
    out = tmp_path / "run"
    assert _analyse(config_file, f"{folder}/*", out, "--no-report", "--set", "manifold.every=1",
                    "--set", "manifold.k=2", "--set", "manifold.n_epochs=10", "--set",
                    "manifold.probes=false") == 0
    assert len(draws) == 1
    environment = json.loads((out / "environment.json").read_text())
    assert environment["device"] == "cpu"
    settings = environment["components"]["manifold"]
    assert settings["layers"] == ["body.act1", "head"]
    assert settings["pictures"] == ["body.act1"]
    layers = RunDir(out).metrics.query("metric == 'ccc_cover'")
    assert sorted(layers.epoch.unique()) == [0, 1, 2, 3] and set(layers.layer) == {"body.act1", "head"}


@pytest.mark.parametrize(("name", "epoch"), [
    ("model_12.pth", 12), ("checkpoint-5.pth.tar", 5), ("epoch=3-step=400.ckpt", 3),
    ("epoch_007.pt", 7), ("resnet50_ep090.pth", 90), ("run2_epoch4.pt", 4), ("last.pth", None),
])
def test_epochs_from_file_names(name, epoch):
    assert epoch_from_name(Path(name)) == epoch


def test_ordering_refuses_ambiguous_series():
    paths = [Path("b_10.pt"), Path("a_2.pt")]
    assert order_by_epoch(paths) == [(2, Path("a_2.pt")), (10, Path("b_10.pt"))]
    assert order_by_epoch(paths, [1, 0]) == [(0, Path("a_2.pt")), (1, Path("b_10.pt"))]
    with pytest.raises(DataError, match=r"a_5.pt and b_5.pt are both epoch 5"):
        order_by_epoch([Path("a_5.pt"), Path("b_5.pt")])
    with pytest.raises(DataError, match=r"last.pth: no epoch in the file name; pass --epochs"):
        order_by_epoch([Path("last.pth")])
    with pytest.raises(DataError, match=r"--epochs gives 1 epochs for 2 checkpoint files"):
        order_by_epoch(paths, [3])


class _Payload:
    """Unpickling this would run code: refused."""


def test_files_that_need_code_or_hold_no_weights_are_refused(tmp_path):
    torch.save({"state_dict": {"w": torch.ones(1)}, "extra": _Payload()}, tmp_path / "code.pt")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'code.pt'}: cannot read it as "
                                                  "weights (UnpicklingError")):
        read_checkpoint_weights(tmp_path / "code.pt")
    torch.save({"epoch": 3, "optimizer": {}}, tmp_path / "none.pt")
    with pytest.raises(DataError, match=r"none.pt: no state dict found \(top-level keys: 'epoch', "
                                        r"'optimizer'\)"):
        read_checkpoint_weights(tmp_path / "none.pt")


def test_prefixes_are_stripped_and_wrong_weights_named(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    wrapped = {f"model._orig_mod.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": wrapped}, tmp_path / "lightning.ckpt")
    state, where = read_checkpoint_weights(tmp_path / "lightning.ckpt", strip=["model."])
    assert where == "state_dict" and set(state) == {"0.weight", "0.bias"}
    load_weights(model, state, tmp_path / "lightning.ckpt")
    with pytest.raises(DataError, match=r"the weights do not fit the model: missing \['0.bias', "
                                        r"'0.weight'\], unexpected \['model._orig_mod.0.bias'"):
        load_weights(model, wrapped, tmp_path / "lightning.ckpt")
    with pytest.raises(DataError, match=r"the weights do not fit the model: Error\(s\) in loading"):
        load_weights(model, {"0.weight": torch.ones(5, 3), "0.bias": torch.ones(5)}, tmp_path / "x")


def test_an_occupied_run_directory_and_bad_epochs_are_refused(saved, tmp_path, capsys):
    config_file, folder, _ = saved
    (tmp_path / "metrics.csv").write_text("")
    assert _analyse(config_file, f"{folder}/*", tmp_path) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}: already holds an unfinished run;" in err and "--overwrite" in err
    assert "--resume" not in err  # no command resumes an analysis of checkpoints
    assert (tmp_path / "metrics.csv").read_text() == ""
    assert _analyse(config_file, f"{folder}/*", tmp_path / "new", "--epochs", "1,x") == 2
    assert "--epochs '1,x': expected comma-separated integers" in capsys.readouterr().err
    assert _analyse(config_file, f"{tmp_path}/nothing*", tmp_path / "new") == 2
    assert "nothing*: no checkpoint file matches" in capsys.readouterr().err


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_rerun_replaces_the_earlier_series_only_with_overwrite_and_a_valid_config(
        saved, tmp_path, capsys):
    """The run directory's own mechanism: refused without --overwrite (also from Python); with it
    and a config that fails only once the model is built, the earlier files stay; with it and a
    valid config, none of the earlier run's files survives (nc.npz of a run with neural collapse)."""
    from hypbias.integrations.checkpoints import analyze_checkpoints

    config_file, folder, _ = saved
    out = tmp_path / "run"
    assert _analyse(config_file, f"{folder}/*", out, "--no-report") == 0
    assert (out / "nc.npz").is_file() and (out / "checkpoints.json").is_file()
    earlier = _snapshot(out)
    capsys.readouterr()
    assert _analyse(config_file, f"{folder}/*", out, "--no-report") == 2
    err = capsys.readouterr().err
    assert f"{out}: already holds a finished run" in err and "--overwrite" in err
    with pytest.raises(DataError, match="already holds a finished run"):
        analyze_checkpoints(f"{folder}/*", "mlp", out=out, config=config_file,
                            overrides=["model.hidden=[24]"], report=False)
    assert _analyse(config_file, f"{folder}/*", out, "--no-report", "--overwrite", "--set",
                    "manifold.every=1", "--set", "manifold.layers=[nope]") == 2
    assert "'nope', which is not a module of the model" in capsys.readouterr().err
    assert _snapshot(out) == earlier
    assert _analyse(config_file, f"{folder}/*", out, "--no-report", "--overwrite", "--set",
                    "nc.every=0") == 0
    assert not (out / "nc.npz").exists()
    assert "nc1" not in set(RunDir(out).metrics.metric)
    assert RunDir(out).config["nc"]["every"] == 0 and RunDir(out).is_complete


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_share_the_checkpoints_and_match_one(saved, tmp_path):
    config_file, folder, _ = saved
    args = ["analyze-checkpoints", "--model", "mlp", "--config", str(config_file), "--set",
            "model.hidden=[24]", "--checkpoints", f"{folder}/*", "--no-progress", "--no-report"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert cli_main([*args, "--out", str(tmp_path / "one")]) == 0
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--nnodes=1", f"--master_port={_free_port()}", "-m", "hypbias", *args,
                           "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = RunDir(tmp_path / "one"), RunDir(tmp_path / "two")
    for split in ("val", "train"):
        np.testing.assert_array_equal(one.confusion()[split], two.confusion()[split])
    nc = ["epoch", "split", "space", "metric"]
    a = one.metrics[one.metrics.metric.isin(NC_METRICS)].set_index(nc).value.sort_index()
    b = two.metrics[two.metrics.metric.isin(NC_METRICS)].set_index(nc).value.sort_index()
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9)
    assert '"world_size": 2' in two.file("environment.json").read_text()
