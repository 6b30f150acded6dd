"""``hypbias hierarchy show|stats|export`` on files, run directories, WordNet and datasets."""

from __future__ import annotations

import csv
import json

import pytest

from fabricate import MINI_CLASSES, write_cifar100, write_wndb
from hypbias.cli import main
from hypbias.hierarchy import read_hierarchy

TREE = {"a": {"a1": ["x", "y", "z"], "a2": ["w"]}, "b": ["u", "v"]}


@pytest.fixture
def tree_file(tmp_path):
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(TREE))
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["hierarchy", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_full_and_truncated(capsys, tree_file):
    code, out, _ = run(capsys, "show", str(tree_file))
    assert code == 0
    assert out.splitlines() == ["<root> (6)", "  a (4)", "    a1 (3)", "      x", "      y",
                                "      z", "    a2 (1)", "      w", "  b (2)", "    u", "    v"]
    _, out, _ = run(capsys, "show", str(tree_file), "--depth", "1", "--max-children", "1")
    assert out.splitlines() == ["<root> (6)", "  a (4) ...", "  ... 1 more (2 classes)"]
    _, out, _ = run(capsys, "show", str(tree_file), "--depth", "0")
    assert out.splitlines() == ["<root> (6) ..."]


def test_show_run_directory_and_wordnet_names(capsys, tmp_path, tree_file):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "hierarchy.json").write_text(json.dumps(read_hierarchy(tree_file).to_dict()))
    _, out, _ = run(capsys, "show", str(run_dir), "--depth", "1")
    assert out.splitlines()[1] == "  a (4) ..."
    write_wndb(tmp_path / "wn")
    wnids = tmp_path / "wnids.txt"
    wnids.write_text("\n".join(MINI_CLASSES))
    code, out, _ = run(capsys, "show", "--wordnet", str(wnids), "--wordnet-dir",
                       str(tmp_path / "wn"), "--depth", "3", "--max-children", "2")
    assert code == 0
    assert out.splitlines()[:3] == ["n00001740 entity (8)", "  n00001930 physical entity (8)",
                                    "    n00002684 object (8)"]


def test_stats_with_a_label_space(capsys, tree_file):
    code, out, _ = run(capsys, "stats", str(tree_file), "--level", "2")
    lines = out.splitlines()
    assert code == 0
    assert lines[1] == "classes: 6   nodes: 11   tree height: 3"
    assert lines[2] == "class depth: min 2, mean 2.67, max 3"
    assert lines[3] == "branching (tree view, internal nodes): mean 2.00, max 3"
    assert lines[4] == "nodes with several parents (graph view): 0"
    assert lines[5] == "label space: 4 groups, sizes min 1, mean 1.5, max 3"
    assert lines[6:] == ["  a1  3", "  a2  1", "  u   1", "  v   1"]
    _, out, _ = run(capsys, "stats", "--dataset", "synthetic", "--n", "4")
    assert "label space: 4 groups, sizes min 25, mean 25.0, max 25" in out


def test_stats_of_a_dataset_space(capsys, tmp_path):
    write_cifar100(tmp_path, n_train=1, n_test=1)
    code, out, _ = run(capsys, "stats", "--dataset", "cifar100", "--data-dir", str(tmp_path),
                       "--space", "S20")
    assert code == 0 and "label space: 20 groups, sizes min 5, mean 5.0, max 5" in out
    code, _, err = run(capsys, "stats", "--dataset", "cifar100", "--data-dir", str(tmp_path),
                       "--space", "S3")
    assert code == 2 and err.strip() == ("hypbias hierarchy: error: --space 'S3': this source "
                                         "defines S20")


@pytest.mark.parametrize("suffix", [".json", ".csv", ".yaml", ".nwk"])
def test_export_round_trips(capsys, tmp_path, tree_file, suffix):
    out = tmp_path / f"out{suffix}"
    code, stdout, _ = run(capsys, "export", str(out), str(tree_file))
    assert code == 0 and stdout.strip() == f"wrote {out}"
    assert read_hierarchy(out).to_dict() == read_hierarchy(tree_file).to_dict()


def test_export_a_label_space(capsys, tmp_path, tree_file):
    run(capsys, "export", str(tmp_path / "s.csv"), str(tree_file), "--level", "1")
    with open(tmp_path / "s.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["class", "group"], ["x", "a"], ["y", "a"], ["z", "a"], ["w", "a"],
                    ["u", "b"], ["v", "b"]]
    run(capsys, "export", str(tmp_path / "s.json"), str(tree_file), "--n", "3")
    assert json.loads((tmp_path / "s.json").read_text()) == {
        "x": "a1", "y": "a1", "z": "a1", "w": "w", "u": "b", "v": "b"}  # a2 has one child


@pytest.mark.parametrize(("args", "message"), [
    (["show"], "needs exactly one of SOURCE, --wordnet or --dataset; got none"),
    (["stats", "{tree}", "--n", "7"], "The 'n' parameter of superclasses must be an int in "
                                      "[1, 6]. Got 7 instead."),
    (["export", "x.txt", "{tree}", "--level", "1"], "x.txt: a label space is exported as .json "
                                                    "or .csv; got '.txt'"),
    (["show", "{cycle}"], "cycle.csv: cycle in the hierarchy: "),
    (["show", "--wordnet", "{bad_wnids}"], "bad.txt: expected wnids such as n01440764, "
                                           "whitespace-separated; got 'dog'"),
])
def test_errors_are_one_line(capsys, tmp_path, tree_file, args, message):
    cycle = tmp_path / "cycle.csv"
    cycle.write_text("a,b\nb,c\nc,a\nx,a\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("n02084071 dog")
    args = [a.format(tree=tree_file, cycle=cycle, bad_wnids=bad) for a in args]
    code, _, err = run(capsys, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err


def test_wordnet_spaces_from_a_class_index(capsys, tmp_path):
    write_wndb(tmp_path / "wn")
    index = tmp_path / "index.json"
    index.write_text(json.dumps({str(i): [w, w] for i, w in enumerate(MINI_CLASSES)}))
    code, out, _ = run(capsys, "stats", "--wordnet", str(index), "--wordnet-dir",
                       str(tmp_path / "wn"), "--space", "imagenet_s3")
    assert code == 0
    assert out.splitlines()[-3:] == ["  misc       2", "  artifacts  2", "  animals    4"]


def test_imagenet_dataset_reads_folder_names_only(capsys, tmp_path):
    write_wndb(tmp_path / "wn")
    for wnid in MINI_CLASSES:  # empty of decodable images: only the names are read
        (tmp_path / "data" / "train" / wnid).mkdir(parents=True)
        (tmp_path / "data" / "train" / wnid / "a.JPEG").write_bytes(b"never decoded")
    code, out, err = run(capsys, "stats", "--dataset", "imagenet", "--data-dir",
                         str(tmp_path / "data"), "--wordnet-dir", str(tmp_path / "wn"),
                         "--space", "imagenet_s7")
    assert code == 0, err
    assert "label space: 6 groups" in out and "  domestic animals  2" in out
