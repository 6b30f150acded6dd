"""Config loading: one schema, typed sections, where each value came from, base inheritance, --set."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from hypbias.errors import ConfigError
from hypbias.train.config import (
    Config,
    apply_overrides,
    defaults,
    differing_keys,
    fingerprint,
    load_config,
    parse_config,
    safe_keys,
)
from hypbias.train.config.schema import AnyOf, Choice, Float, Int, ListOf, Origins, Refused, flatten


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text("data:\n  name: synthetic\n  branching: [2, 2]\n  level_scale: 1.0\n"
                    "train:\n  epochs: 2\n  lr: 1e-3\n")
    return path


def test_default_config_is_the_embedded_synthetic_experiment():
    cfg = load_config(None)
    assert cfg.data.name == "synthetic" and cfg["data"]["name"] == "synthetic"
    assert cfg.config_file.endswith("synthetic.yaml")
    assert set(defaults()) == set(cfg)


def test_sections_are_typed_and_immutable(small):
    cfg = load_config(small, ["spaces.hypernyms=[2, 'level:1']", "model.hidden=[8]"])
    assert isinstance(cfg, Config)
    assert cfg.train.lr == 0.001 and isinstance(cfg.train.lr, float)  # 1e-3 in the file
    assert cfg.spaces.hypernyms == (2, "level:1")
    assert dict(cfg.model.options) == {"hidden": [8]}
    assert cfg.components["nc"].every == 0 and cfg.section("mistakes").enabled is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 0.1
    # the plain form is what config.yaml holds, and reads back to the same config
    again = parse_config(yaml.safe_load(yaml.safe_dump(cfg.as_dict())))
    assert again.as_dict() == cfg.as_dict() and fingerprint(again) == fingerprint(cfg)


@pytest.mark.parametrize(("raw", "value"), [("1e-3", 0.001), ("5E4", 50000.0), ("-2.5e+2", -250.0),
                                            ("1_000", 1000), ("0.5", 0.5)])
def test_scientific_notation_is_a_number_in_set_and_files(raw, value, small, tmp_path):
    cfg = load_config(small, [f"train.weight_decay={raw.lstrip('-')}"])
    assert cfg.train.weight_decay == abs(value)
    path = tmp_path / "c.yaml"
    path.write_text(f"base: {small}\nloss:\n  name: hxe\n  alpha: {raw.lstrip('-')}\n")
    assert load_config(path).loss["alpha"] == abs(value)


def test_every_error_names_where_the_value_was_set(small, tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text(f"base: {small}\ntrain:\n  batch_size: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(child)
    assert str(err.value) == f"{child}: 'train.batch_size' must be an int >= 1. Got 0 instead."
    with pytest.raises(ConfigError) as err:
        load_config(child, ["train.batch_size=4", "train.momentum=2"])
    assert str(err.value) == ("--set train.momentum=2: 'train.momentum' must be a finite number "
                              "in [0, 1]. Got 2 instead.")
    with pytest.raises(ConfigError) as err:  # set in the base file, refused in the child's name
        load_config(child, ["train.batch_size=4", "train.optimizer=adam"])
    assert str(err.value).startswith("--set train.optimizer=adam: 'train.optimizer' must be one of")


def test_unknown_keys_and_options_are_named_with_a_suggestion(small):
    with pytest.raises(ConfigError, match=r"--set train.lrr=1: unknown key 'train.lrr' "
                                          r"\(did you mean 'train.lr'\?\)"):
        load_config(small, ["train.lrr=1"])
    with pytest.raises(ConfigError, match=r"'model.hiden' is not an option of model 'mlp' "
                                          r"\(options: in_features, hidden\) "
                                          r"\(did you mean 'model.hidden'\?\)"):
        load_config(small, ["model.hiden=[3]"])
    with pytest.raises(ConfigError, match=r"'data.nosie' is not an option of dataset 'synthetic'"):
        load_config(small, ["data.nosie=1"])
    with pytest.raises(ConfigError, match=r"'data.branching' must be a list of ints. Got 5"):
        load_config(small, ["data.branching=5"])  # from the factory's annotation
    with pytest.raises(ConfigError, match=r"'loss.alpha' is not an option of the 'ce' loss"):
        load_config(small, ["loss.alpha=1"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(small, ["train.epochs"])
    with pytest.raises(ConfigError, match=r"'train' must be a mapping of keys to values. Got 3"):
        load_config(small, ["train=3"])


def test_set_lists_parse_or_are_refused(small):
    assert load_config(small, ["track.splits=[train, val]"]).track.splits == ("train", "val")
    with pytest.raises(ConfigError) as err:
        load_config(small, ["spaces.hypernyms=[4,20"])
    assert str(err.value).startswith("--set spaces.hypernyms=[4,20: cannot parse the value as a "
                                     "YAML list or mapping: expected ',' or ']'")
    with pytest.raises(ConfigError, match="must be a non-empty list of distinct values among"):
        load_config(small, ["track.splits=[val, val]"])


def test_base_inheritance_and_errors(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("base: synthetic.yaml\ntrain:\n  epochs: 2\n")
    cfg = load_config(child)
    assert cfg.train.epochs == 2 and cfg.data.options["branching"] == [4, 5, 5]
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="inheritance loops back"):
        load_config(loop)
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match=f"{broken}: cannot parse YAML: "):
        load_config(broken)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=f"{listed}: a config must be a mapping at the top level. "
                                          "Got list instead."):
        load_config(listed)


def test_a_new_name_does_not_inherit_the_options_of_the_old_one(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("base: synthetic.yaml\nloss:\n  name: hxe\n  alpha: 0.9\n")
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\nloss:\n  name: soft\n")
    assert load_config(child).loss["name"] == "soft" and "alpha" not in load_config(child).loss
    assert load_config(base, ["loss.name=ce"]).loss == {"name": "ce"}
    assert load_config(base, ["loss.alpha=0.2"]).loss["alpha"] == 0.2  # same name: merged
    same = tmp_path / "same.yaml"
    same.write_text("base: base.yaml\nloss:\n  name: hxe\n")
    assert load_config(same).loss["alpha"] == 0.9
    assert load_config(base, ["model.name=mlp", "model.hidden=[8]"]).model.options == {"hidden": [8]}


def test_cross_key_checks(small):
    with pytest.raises(ConfigError, match=r"'train.warmup_epochs' must be at most train.epochs = 2"):
        load_config(small, ["train.warmup_epochs=3"])
    with pytest.raises(ConfigError, match=r"'train.nesterov' = true needs optimizer 'sgd' with "
                                          r"momentum > 0"):
        load_config(small, ["train.nesterov=true", "train.momentum=0"])


def test_safe_keys_do_not_change_the_fingerprint(small):
    base = load_config(small)
    assert {"train.num_workers", "train.save_every", "log.project", "config_file"} <= safe_keys()
    safe = apply_overrides(base, ["train.num_workers=4", "log.project=other"])
    assert fingerprint(safe) == fingerprint(base) and differing_keys(base, safe) == []
    changed = apply_overrides(base, ["train.lr=0.1", "spaces.q=0.9"])
    assert fingerprint(changed) != fingerprint(base)
    assert differing_keys(base, changed) == ["spaces.q: 0.95 -> 0.9", "train.lr: 0.001 -> 0.1"]


def test_kinds_accept_and_refuse():
    assert Int(low=1).parse(3) == 3
    for bad in (0, 1.0, True, "3"):
        with pytest.raises(Refused):
            Int(low=1).parse(bad)
    assert Float(low=0, low_open=True).parse(2) == 2.0
    for bad in (0, float("nan"), float("inf"), False):
        with pytest.raises(Refused):
            Float(low=0, low_open=True).parse(bad)
    every = AnyOf(Int(low=0), ListOf(Int(low=0), min_len=1))
    assert every.parse([0, 2]) == (0, 2)
    with pytest.raises(Refused):
        every.parse([])
    assert Choice(None, "a").describe() == "one of null, 'a'"
    assert ListOf(Float(low=0, high=1)).describe() == "a list of finite numbers in [0, 1]"


def test_origins_fall_back_to_the_nearest_parent():
    origins = Origins("file.yaml")
    origins.record({"train": {"lr": 1}}, "--set train.lr=1")
    assert origins.of("train.lr") == "--set train.lr=1"
    assert origins.of("train.lr.x") == "--set train.lr=1"
    assert origins.of("spaces.q") == "file.yaml"


def test_the_readme_documents_every_declared_key():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration"):readme.index("### The embedded default")]
    documented = set()
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        names = [n.strip().strip("`") for n in row.split("|")[1].split(",")]
        section = names[0].rpartition(".")[0]
        documented |= {n if "." in n or not section else f"{section}.{n}" for n in names}
    declared = set(flatten(defaults())) - {"config_file"}
    assert declared - documented == set()
