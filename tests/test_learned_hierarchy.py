"""Learned hierarchies (issue 15): clustering, cuts, ARI, the run-directory analysis, CLI and report."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from hypbias.analysis import learned_hierarchy as lh
from hypbias.cli import main
from hypbias.errors import HierarchyError
from hypbias.hierarchy import (
    Hierarchy,
    adjusted_rand_index,
    class_mean_distance,
    confusion_distance,
    learn_hierarchy,
    learned_cut,
    read_hierarchy,
    write_hierarchy,
)
from hypbias.hierarchy.learned import LINKAGE_METHODS, hierarchy_from_linkage
from hypbias.labelspace import LabelSpace, build_spaces
from hypbias.report.sections import RunContext
from hypbias.report.sections.learned import learned_hierarchy as learned_section
from hypbias.rundir import RunDir

# Unbalanced on purpose: top groups of 9, 6 and 11 classes, mid-level groups of 2 to 5.
TREE = {
    "A": {"a1": [f"a1_{i}" for i in range(2)], "a2": [f"a2_{i}" for i in range(3)],
          "a3": [f"a3_{i}" for i in range(4)]},
    "B": {"b1": [f"b1_{i}" for i in range(3)], "b2": [f"b2_{i}" for i in range(3)]},
    "C": {"c1": [f"c1_{i}" for i in range(5)], "c2": [f"c2_{i}" for i in range(2)],
          "c3": [f"c3_{i}" for i in range(2)], "c4": [f"c4_{i}" for i in range(2)]},
}


@pytest.fixture
def tree() -> Hierarchy:
    return Hierarchy.from_nested(TREE)


def tree_confusion(tree: Hierarchy, rates: dict[int, float], diagonal: float,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Counts by LCA height: ``rates[h]`` for a pair whose LCA has height h; Poisson when ``rng``."""
    h = tree.lca_height_matrix()
    expected = np.vectorize(lambda x: rates[x] if x else diagonal)(h).astype(float)
    return expected if rng is None else rng.poisson(expected).astype(float)


def partition(t) -> set[frozenset[int]]:
    """A partition as a set of groups of class indices (independent of group labels)."""
    t = np.asarray(t)
    return {frozenset(np.flatnonzero(t == g).tolist()) for g in np.unique(t)}


# ---------------------------------------------------------------------------- recovery of a tree
@pytest.mark.parametrize("method", LINKAGE_METHODS)
def test_learn_recovers_the_top_level_and_middle_groups_of_a_known_tree(tree, method):
    # errors only between relatives, more often the closer they are: siblings 6, cousins 1.5, else 0.2
    confusion = tree_confusion(tree, {1: 6.0, 2: 1.5, 3: 0.2}, diagonal=100.0)
    learned = learn_hierarchy(confusion_distance(confusion), tree.classes, method=method)
    for level in (1, 2):
        given = LabelSpace.from_hierarchy(tree, level=level)
        cut = learned.assignment(learned_cut(learned, given.num_groups))
        assert partition(cut) == partition(given.t)


@pytest.mark.parametrize("seed", range(5))
def test_learn_recovers_the_top_level_groups_from_sampled_confusions(tree, seed):
    # sampled counts: errors only within top-level groups, siblings confused more than cousins
    rng = np.random.default_rng(seed)
    confusion = tree_confusion(tree, {1: 5.0, 2: 1.0, 3: 0.0}, diagonal=60.0, rng=rng)
    learned = learn_hierarchy(confusion_distance(confusion), tree.classes)
    top = LabelSpace.from_hierarchy(tree, level=1)
    assert partition(learned.assignment(learned_cut(learned, 3))) == partition(top.t)


# ---------------------------------------------------------------------------- class distances
def test_confusion_distance_matches_a_plain_loop_and_ignores_row_scale(rng):
    m = rng.integers(0, 20, size=(6, 6)).astype(float) + np.eye(6)
    d = confusion_distance(m)
    for i, j in itertools.product(range(6), repeat=2):
        want = 0.0 if i == j else 1 - (m[i, j] / m[i].sum() + m[j, i] / m[j].sum()) / 2
        assert d[i, j] == pytest.approx(want, abs=1e-12)
    scaled = m * np.array([1, 3, 1, 7, 1, 2])[:, None]  # more samples of some classes
    np.testing.assert_allclose(confusion_distance(scaled), d, atol=1e-12)


def test_confusion_distance_refuses_an_empty_row():
    m = np.eye(3)
    m[1] = 0
    with pytest.raises(ValueError, match="row 1 .* is empty"):
        confusion_distance(m)


def test_class_mean_distance_matches_norms(rng):
    mu = rng.normal(size=(5, 3))
    d = class_mean_distance(mu)
    for i, j in itertools.product(range(5), repeat=2):
        assert d[i, j] == pytest.approx(np.sqrt(((mu[i] - mu[j]) ** 2).sum()), abs=1e-12)


# ---------------------------------------------------------------------------- tree and cuts
@pytest.mark.parametrize("method", LINKAGE_METHODS)
def test_learned_cut_is_scipys_maxclust_cut_and_every_count_is_reachable(rng, method):
    points = rng.normal(size=(12, 4))  # continuous distances: no ties in merge heights
    d = class_mean_distance(points)
    classes = [f"k{i}" for i in range(12)]
    learned = learn_hierarchy(d, classes, method=method)
    z = linkage(squareform(d, checks=False), method=method)
    assert learned.name(learned.root) == "L1"
    assert sorted(learned.nodes[12:]) == sorted(f"L{k}" for k in range(1, 12))
    assert all(len(learned.children(n)) == 2 for n in learned.nodes[12:])
    for n in range(1, 13):
        cut = learned.assignment(learned_cut(learned, n))
        assert partition(cut) == partition(fcluster(z, n, "maxclust"))
        assert LabelSpace.from_hierarchy(learned, n=n).num_groups == n  # binary: every k


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".csv", ".nwk"])
def test_learned_hierarchy_files_round_trip_with_their_cuts(tmp_path, tree, suffix):
    confusion = tree_confusion(tree, {1: 6.0, 2: 1.5, 3: 0.2}, diagonal=100.0)
    learned = learn_hierarchy(confusion_distance(confusion), tree.classes)
    path = tmp_path / f"learned{suffix}"
    write_hierarchy(learned, path)
    back = read_hierarchy(path, classes=tree.classes)  # Newick lists leaves in reading order
    for n in (2, 3, 7, 11, 26):
        assert partition(back.assignment(learned_cut(back, n))) == \
            partition(learned.assignment(learned_cut(learned, n)))


def test_internal_names_avoid_class_names():
    z = linkage(squareform(class_mean_distance(np.arange(4.0)[:, None]), checks=False))
    learned = hierarchy_from_linkage(z, ["L1", "L2", "x", "y"])
    assert sorted(learned.nodes[4:]) == ["_L1", "_L2", "_L3"]
    assert len(learned_cut(learned, 3)) == 3


def test_learned_cut_refuses_a_hierarchy_that_was_not_learned(tree):
    with pytest.raises(HierarchyError, match="not a learned hierarchy"):
        learned_cut(tree, 3)


def test_learn_hierarchy_checks_its_parameters():
    d = np.array([[0.0, 1.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match="'method' parameter of learn_hierarchy"):
        learn_hierarchy(np.zeros((2, 2)), ["a", "b"], method="single")
    with pytest.raises(ValueError, match="must be symmetric"):
        learn_hierarchy(d, ["a", "b"])
    with pytest.raises(ValueError, match="must have 2 names"):
        learn_hierarchy(np.zeros((2, 2)), ["a"])


# ---------------------------------------------------------------------------- adjusted Rand index
@pytest.mark.parametrize(("a", "b", "want"), [
    ([0, 0, 1, 1], [0, 0, 1, 1], 1.0),
    ([0, 0, 1, 1], [5, 5, 2, 2], 1.0),          # relabelled
    ([0, 0, 1, 1], [0, 1, 0, 1], -0.5),         # index 0, expected 2/3, max 2
    ([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2], 8 / 33),  # index 2, expected 6, max 4.5: 0.8 / 3.3
    ([0, 0, 1, 2], [0, 0, 1, 1], 4 / 7),        # index 1, expected 1/3, max 3/2
    ([0, 1, 2, 3], [0, 1, 2, 3], 1.0),          # all singletons: 0/0, identical
    ([0, 0, 0, 0], [0, 1, 2, 3], 0.0),          # one group against singletons
])
def test_adjusted_rand_index_hand_values(a, b, want):
    assert adjusted_rand_index(a, b) == pytest.approx(want, abs=1e-12)
    assert adjusted_rand_index(b, a) == pytest.approx(want, abs=1e-12)


def test_adjusted_rand_index_matches_pair_counting(rng):
    for _ in range(20):
        n = int(rng.integers(5, 30))
        a, b = rng.integers(0, 4, size=n), rng.integers(0, 3, size=n)
        same_a = a[:, None] == a[None, :]
        same_b = b[:, None] == b[None, :]
        iu = np.triu_indices(n, k=1)
        n11 = int((same_a & same_b)[iu].sum())
        n10 = int((same_a & ~same_b)[iu].sum())
        n01 = int((~same_a & same_b)[iu].sum())
        n00 = int((~same_a & ~same_b)[iu].sum())
        den = (n11 + n10) * (n10 + n00) + (n11 + n01) * (n01 + n00)
        want = 1.0 if den == 0 else 2 * (n11 * n00 - n10 * n01) / den
        assert adjusted_rand_index(a, b) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))])
def test_adjusted_rand_index_of_tensors(device):
    a = torch.tensor([0, 0, 0, 1, 1, 1], device=device)
    b = torch.tensor([0, 0, 1, 1, 2, 2], device=device)
    assert adjusted_rand_index(a, b) == pytest.approx(8 / 33, abs=1e-12)


def test_adjusted_rand_index_checks_its_inputs():
    with pytest.raises(ValueError, match="'labels_b' parameter of adjusted_rand_index must have "
                                         "length 3"):
        adjusted_rand_index([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="integer array"):
        adjusted_rand_index([0.5, 1.0], [0, 1])


@pytest.mark.parametrize(("learned", "given", "sd", "want"), [
    ((3, 9.0), (3, 7.0), 0.5, "stronger"),      # gaps 6 and 4
    ((4, 7.0), (3, 7.0), 0.5, "weaker"),        # gaps 3 and 4
    ((4, 7.0), (3, 7.0), 1.0, "as strong"),     # a difference of 1 within the sd
    ((None, 7.0), (3, 7.0), 0.5, "not comparable"),
])
def test_bias_comparison(learned, given, sd, want):
    row = {"learned": learned[0], "random_learned": learned[1], "random_learned_sd": sd,
           "given": given[0], "random_given": given[1], "random_given_sd": 0.1}
    assert lh.bias_comparison(row) == want


# ---------------------------------------------------------------------------- a fabricated run
EPOCHS = 6


def epoch_confusion(tree: Hierarchy, epoch: int, per_class: int, rng: np.random.Generator
                    ) -> np.ndarray:
    """Sampled confusion of a classifier that learns coarse to fine: errors across top-level groups
    vanish first, then across middle groups, then between siblings."""
    h = tree.lca_height_matrix()
    weight = {0: 1.0 + 2.0 * epoch, 1: 1.0, 2: 0.6 * 0.4**epoch, 3: 0.3 * 0.1**epoch}
    p = np.vectorize(weight.__getitem__)(h).astype(float)
    p /= p.sum(axis=1, keepdims=True)
    return np.stack([rng.multinomial(per_class, row) for row in p]).astype(np.int64)


@pytest.fixture
def run_dir(tmp_path, tree):
    """A run directory holding what ``hierarchy learn`` reads, written by hand."""
    path = tmp_path / "run"
    path.mkdir()
    run = RunDir(path)
    rng = np.random.default_rng(7)
    run.write_yaml("config.yaml", {"seed": 0, "track": {"splits": ["val", "train"]},
                                   "spaces": {"hypernyms": [3, 6], "random_draws": 5, "q": 0.95,
                                              "seed": 0},
                                   "nc": {"split": "train"}})
    write_hierarchy(tree, run.file("hierarchy.json"))
    run.write_spaces(build_spaces(tree, [3, 6], 5, 0))
    run.write_npz("confusion.npz", {
        split: np.stack([epoch_confusion(tree, e, n, rng) for e in range(EPOCHS + 1)])
        for split, n in (("val", 30), ("train", 80))})
    top = LabelSpace.from_hierarchy(tree, level=1).t
    means = 3.0 * np.eye(3)[top] + 0.1 * rng.normal(size=(tree.num_classes, 3))
    run.write_npz("nc.npz", {"counts": np.full(tree.num_classes, 80.0), "means": means,
                             "scatter": np.eye(3), "epoch": np.array(EPOCHS)})
    return path


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["hierarchy", "learn", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def tau_of(confusion: np.ndarray, t: np.ndarray, q: float = 0.95) -> float:
    """Plain-NumPy τ_q: the first epoch whose greedy accuracy reaches q of the best."""
    same = t[:, None] == t[None, :]
    acc = np.array([m[same].sum() / m.sum() for m in confusion])
    return float(np.flatnonzero(acc >= q * acc.max())[0])


def test_cli_learns_writes_and_attaches(capsys, tmp_path, run_dir, tree):
    out = tmp_path / "learned.json"
    code, text, err = cli(capsys, run_dir, "--out", out, "--attach")
    assert code == 0, err
    assert "from the train split's confusion matrix at epoch" in text
    learned = read_hierarchy(out)
    attached = read_hierarchy(run_dir / lh.HIERARCHY_FILE)
    assert learned.classes == attached.classes == tree.classes
    analysis = json.loads((run_dir / lh.ANALYSIS_FILE).read_text())
    origin = analysis["learned_from"]
    assert (origin["source"], origin["split"], origin["evaluated"], origin["circular"]) == \
        ("confusion", "train", "val", False)
    # default epoch: the first whose fine train accuracy reaches half its best
    train = np.load(run_dir / "confusion.npz")["train"]
    fine = np.array([np.trace(m) / m.sum() for m in train])
    assert origin["epoch"] == int(np.flatnonzero(fine >= 0.5 * fine.max())[0])
    top = LabelSpace.from_hierarchy(tree, level=1)
    s3 = next(c for c in analysis["cuts"] if c["space"] == "S3")
    assert s3["ari"] == 1.0
    # τ of the learned and given spaces, recomputed from the val confusion and the written file
    val = np.load(run_dir / "confusion.npz")["val"]
    rows = {r["space"]: r for r in analysis["convergence"]["spaces"]}
    for name, space in RunDir(run_dir).spaces.hypernyms.items():
        cut = attached.assignment(learned_cut(attached, space.num_groups))
        assert rows[name]["given"] == tau_of(val, space.t)
        assert rows[name]["learned"] == tau_of(val, cut)
    assert partition(attached.assignment(learned_cut(attached, 3))) == partition(top.t)
    # the CCC of LCA heights, recomputed
    a, b = attached.lca_height_matrix(), tree.lca_height_matrix()
    iu = np.triu_indices(tree.num_classes, k=1)
    assert analysis["ccc"] == pytest.approx(np.corrcoef(a[iu], b[iu])[0, 1], abs=1e-12)


@pytest.mark.parametrize("source", ["confusion", "means"])
def test_learning_and_attaching_read_the_confusion_matrices_once(monkeypatch, run_dir, source):
    reads = []
    confusion = RunDir.confusion
    monkeypatch.setattr(RunDir, "confusion", lambda self: reads.append(1) or confusion(self))
    result = lh.learn_for_run(run_dir, source, attach=True)
    assert len(reads) == 1
    assert result.analysis == json.loads((run_dir / lh.ANALYSIS_FILE).read_text())


def test_learned_files_work_wherever_a_hierarchy_file_does(capsys, tmp_path, run_dir):
    out = tmp_path / "learned.yaml"
    assert cli(capsys, run_dir, "--from", "means", "--out", out)[0] == 0
    for args in (["show", str(out), "--depth", "1"], ["stats", str(out), "--n", "5"],
                 ["export", str(tmp_path / "again.csv"), str(out)]):
        assert main(["hierarchy", *args]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "L1 (26)"
    assert "label space: 5 groups" in text


def test_report_section_appears_only_when_attached(capsys, run_dir):
    ctx = RunContext(RunDir(run_dir))
    assert learned_section(ctx) is None
    assert cli(capsys, run_dir, "--attach", "--split", "val", "--epoch", "2")[0] == 0
    section = learned_section(RunContext(RunDir(run_dir)))
    assert "learned from the evaluated split itself" in section.paragraphs[0].lower()
    assert "the same split, so the comparison favours the learned tree" in section.paragraphs[1]
    assert "<td>S3</td><td>3</td>" in section.tables[0]
    assert [stem for stem, _, _ in section.figures] == ["learned_hierarchy"]


@pytest.mark.parametrize(("args", "message"), [
    (["--epoch", "99", "--attach"], "confusion.npz: split 'train' holds epochs 0..6; got epoch 99"),
    (["--epoch", "-1", "--attach"], "confusion.npz: split 'train' holds epochs 0..6; got epoch -1"),
    (["--split", "test", "--attach"], "confusion.npz: no split 'test' (it holds val, train)"),
    (["--from", "means", "--split", "val", "--attach"],
     "nc.npz: holds the class statistics of the 'train' split only; got split 'val'"),
    (["--from", "means", "--epoch", "2", "--attach"],
     "nc.npz: holds the class statistics of epoch 6 only; got epoch 2"),
    (["--from", "covers", "--attach"], "--from covers needs the cover matrices"),
    (["--out", "x.txt", "--attach"], "--out x.txt: unknown hierarchy format '.txt'"),
    ([], "needs --out FILE, --attach or both"),
])
def test_bad_inputs_give_one_line_errors(capsys, run_dir, args, message):
    code, _, err = cli(capsys, run_dir, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert not (run_dir / lh.ANALYSIS_FILE).exists()


def test_class_means_of_older_run_directories_are_read_from_sums(run_dir):
    with np.load(run_dir / "nc.npz") as data:
        counts, means = data["counts"], data["means"]
    learned, origin = lh.learn_from_run(RunDir(run_dir), "means")
    assert (origin.split, origin.epoch) == ("train", EPOCHS)
    RunDir(run_dir).write_npz("nc.npz", {"counts": counts, "sums": means * counts[:, None],
                                         "epoch": np.array(EPOCHS)})
    legacy, _ = lh.learn_from_run(RunDir(run_dir), "means")
    assert learned.to_dict() == legacy.to_dict()
    assert learned.to_dict() == learn_hierarchy(class_mean_distance(means), learned.classes).to_dict()


def test_missing_nc_file_is_named(capsys, run_dir):
    (run_dir / "nc.npz").unlink()
    code, _, err = cli(capsys, run_dir, "--from", "means", "--attach")
    assert code == 2
    assert f"{run_dir / 'nc.npz'}: missing: --from means needs the final class statistics" in err


# ---------------------------------------------------------------------------- the embedded default
@pytest.mark.slow
def test_default_run_report_shows_the_attached_hierarchy(capsys, tmp_path, default_run):
    from hypbias.report import write_report

    path = tmp_path / "run"
    shutil.copytree(default_run.path, path)
    assert cli(capsys, path, "--attach")[0] == 0
    page = write_report(RunDir(path)).read_text(encoding="utf-8")
    assert "Learned hierarchy: compared with the given one" in page
    assert (path / "figures" / "learned_hierarchy.png").is_file()
