"""Config loading: defaults, base inheritance, --set overrides, unknown keys."""

from __future__ import annotations

import pytest

from hypbias.errors import ConfigError
from hypbias.train.config import defaults, load_config


def test_default_config_is_the_embedded_synthetic_experiment():
    cfg = load_config(None)
    assert cfg["data"]["name"] == "synthetic"
    assert cfg["train"]["lr"] == 0.01
    assert cfg["config_file"].endswith("synthetic.yaml")
    assert set(defaults()) <= set(cfg)


def test_overrides_are_parsed_as_yaml():
    cfg = load_config("synthetic", ["train.epochs=3", "spaces.hypernyms=[4, 20]", "data.noise=0.5",
                                    "model.hidden=[32]"])
    assert cfg["train"]["epochs"] == 3
    assert cfg["spaces"]["hypernyms"] == [4, 20]
    assert cfg["data"]["noise"] == 0.5
    assert cfg["model"]["hidden"] == [32]


def test_unknown_keys_are_named_with_a_suggestion(tmp_path):
    expected = r"--set train.lrr=1: unknown key 'train.lrr' \(did you mean 'train.lr'\?\)"
    with pytest.raises(ConfigError, match=expected):
        load_config(None, ["train.lrr=1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("traim:\n  epochs: 2\n")
    with pytest.raises(ConfigError, match=f"{bad}: unknown key 'traim' \\(did you mean 'train'\\?\\)"):
        load_config(bad)
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="'train' must be a mapping"):
        load_config(None, ["train=3"])


def test_base_inheritance_and_errors(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("base: synthetic.yaml\ntrain:\n  epochs: 2\n")
    cfg = load_config(child)
    assert cfg["train"]["epochs"] == 2 and cfg["data"]["branching"] == [4, 5, 5]
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="inheritance loops back"):
        load_config(loop)
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match=f"{broken}: cannot parse YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
