"""Dataset loaders on miniature copies written in the real on-disk formats (tests/fabricate.py)."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

from fabricate import (
    DBPEDIA_WORDS,
    MINI_CLASSES,
    class_colour,
    write_cifar100,
    write_dbpedia,
    write_imagefolder,
    write_wndb,
)
from hypbias.cli import main as cli_main
from hypbias.data import create_dataset
from hypbias.data import imagefolder as imf
from hypbias.data.dbpedia import CLASS_NAMES, bag_of_words, word_buckets
from hypbias.errors import DataError, HypbiasError
from hypbias.models import create


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------------- CIFAR-100
@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    return root, write_cifar100(root)


@pytest.mark.parametrize("bytes_keys", [True, False])
def test_cifar_round_trip(tmp_path, bytes_keys):
    arrays = write_cifar100(tmp_path, n_train=2, n_test=1, bytes_keys=bytes_keys)
    bundle = create_dataset("cifar100", root=tmp_path, normalize="none")
    images = arrays["train_data"].reshape(-1, 3, 32, 32)
    np.testing.assert_array_equal(bundle.train.x.numpy(), images)
    np.testing.assert_array_equal(bundle.train.labels(), arrays["train_fine"])
    np.testing.assert_array_equal(bundle.val.labels(), arrays["test_fine"])
    # channel 0 holds the first 1024 values of a row, in row-major order
    np.testing.assert_array_equal(bundle.train.x[5, 0, 1].numpy(), arrays["train_data"][5, 32:64])
    assert bundle.classes == [f"fine{i:02d}" for i in range(100)]
    assert bundle.input_shape == (3, 32, 32)
    s20 = bundle.spaces["S20"]
    np.testing.assert_array_equal(s20.t, np.arange(100) % 20)
    assert s20.names == [f"coarse{i:02d}" for i in range(20)]
    assert bundle.hierarchy.parents("fine23") == ["coarse03"]
    np.testing.assert_array_equal(bundle.hierarchy.assignment(s20.names), s20.t)


def test_cifar_normalisations_and_root_forms(cifar):
    root, arrays = cifar
    images = arrays["train_data"].reshape(-1, 3, 32, 32).astype(np.float64)
    mean, std = images.mean(axis=(0, 2, 3)), images.std(axis=(0, 2, 3))
    std_bundle = create_dataset("cifar100", root=root / "cifar-100-python")
    expected = (images - mean[:, None, None]) / std[:, None, None]
    np.testing.assert_allclose(std_bundle.train.x.numpy(), expected, atol=1e-5)
    assert std_bundle.train.x.dtype == torch.float32
    np.testing.assert_allclose(std_bundle.info["mean"], mean)
    test = arrays["test_data"].reshape(-1, 3, 32, 32)
    np.testing.assert_allclose(std_bundle.val.x.numpy(),
                               (test - mean[:, None, None]) / std[:, None, None], atol=1e-5)
    unit = create_dataset("cifar100", root=root, normalize="unit")
    np.testing.assert_allclose(unit.train.x.numpy(), images / 255, atol=1e-7)


def test_cifar_truncated_and_garbled_pickles(tmp_path):
    write_cifar100(tmp_path, n_train=1, n_test=1)
    path = tmp_path / "cifar-100-python" / "train"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as err:
        create_dataset("cifar100", root=tmp_path)
    assert one_line(err).startswith(f"{path}: truncated or corrupt pickle (")
    path.write_bytes(b"\x80\x02garbage" * 10)
    with pytest.raises(DataError, match=r"train: truncated or corrupt pickle"):
        create_dataset("cifar100", root=tmp_path)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("field", ["data", "fine_labels"])
def test_cifar_pickle_that_would_run_code_is_refused(tmp_path, field):
    write_cifar100(tmp_path, n_train=1, n_test=1)
    path = tmp_path / "cifar-100-python" / "train"
    data = pickle.loads(path.read_bytes(), encoding="latin1")
    marker = tmp_path / "ran"
    data[field.encode()] = _RunsCode(marker)
    hostile = pickle.dumps(data, protocol=2)
    pickle.loads(hostile, encoding="latin1")  # the payload is live: plain pickle runs it
    assert marker.exists()
    marker.unlink()
    path.write_bytes(hostile)
    with pytest.raises(DataError) as err:
        create_dataset("cifar100", root=tmp_path)
    assert one_line(err) == (f"{path}: refused: it holds a Python object (posix.system) where CIFAR "
                             "files hold only dicts, lists, strings, numbers and NumPy arrays; "
                             "nothing in it was run")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_pickles_of_every_protocol_load(tmp_path, protocol):
    """NumPy pickles arrays through different globals per protocol; all are admitted."""
    arrays = write_cifar100(tmp_path, n_train=1, n_test=1)
    for split in ("train", "test", "meta"):
        path = tmp_path / "cifar-100-python" / split
        path.write_bytes(pickle.dumps(pickle.loads(path.read_bytes(), encoding="latin1"),
                                      protocol=protocol))
    bundle = create_dataset("cifar100", root=tmp_path, normalize="none")
    np.testing.assert_array_equal(bundle.train.x.numpy().reshape(-1, 3072), arrays["train_data"])


@pytest.mark.parametrize(("content", "message"), [
    ({"fine_labels": [0], "coarse_labels": [0]}, "missing field 'data' (found: fine_labels, "
                                                 "coarse_labels)"),
    ({"data": np.zeros((1, 3072), np.uint8), "fine_labels": [100], "coarse_labels": [0]},
     "field 'fine_labels' holds 100, outside 0..99"),
    ({"data": np.zeros((1, 100), np.uint8), "fine_labels": [0], "coarse_labels": [0]},
     "field 'data' must be uint8 of shape (N, 3072); got uint8 of shape (1, 100)"),
    ([1, 2], "expected a pickled dict, got list"),
])
def test_cifar_malformed_fields(tmp_path, content, message):
    write_cifar100(tmp_path, n_train=1, n_test=1)
    path = tmp_path / "cifar-100-python" / "train"
    with open(path, "wb") as fh:
        pickle.dump(content, fh)
    with pytest.raises(DataError) as err:
        create_dataset("cifar100", root=tmp_path)
    assert one_line(err) == f"{path}: {message}"


def test_cifar_inconsistent_coarse_labels_and_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"no CIFAR-100 python files \(missing cifar-100-python/"
                                        r"train, test, meta\); download cifar-100-python.tar.gz"):
        create_dataset("cifar100", root=tmp_path)
    with pytest.raises(DataError, match=r"cifar100: no data folder given; set data.root or pass "
                                        r"--data-dir DIR"):
        create_dataset("cifar100")
    write_cifar100(tmp_path, n_train=1, n_test=1)
    path = tmp_path / "cifar-100-python" / "test"
    data = pickle.loads(path.read_bytes(), encoding="latin1")
    data[b"coarse_labels"][0] = (data[b"fine_labels"][0] + 1) % 20
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DataError, match=r"test: fine class \d+ carries coarse labels \d+ and \d+"):
        create_dataset("cifar100", root=tmp_path)


def test_cifar_config_runs_end_to_end(cifar, tmp_path, capsys):
    """``hypbias run configs/cifar100_resnet18.yaml --data-dir <fabricated>``, tiny model, 1 epoch."""
    root, _ = cifar
    out = tmp_path / "run"
    code = cli_main(["run", "configs/cifar100_resnet18.yaml", "--data-dir", str(root),
                     "--out", str(out), "--set", "model.name=small_cnn",
                     "--set", "model.widths=[8]", "--set", "train.epochs=1",
                     "--set", "spaces.random_draws=2", "--no-report", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["final_accuracy"]["val"]) >= {"H", "S20", "R20"}
    assert np.load(out / "spaces.npz")["S20"].tolist() == (np.arange(100) % 20).tolist()
    assert np.load(out / "confusion.npz")["val"].shape == (2, 100, 100)
    code = cli_main(["run", "configs/cifar100_resnet18.yaml", "--data-dir", str(tmp_path / "no"),
                     "--out", str(tmp_path / "run2"), "--no-report", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(tmp_path / "no") in err[0]


# ---------------------------------------------------------------------- image folders
@pytest.fixture(scope="module")
def images(tmp_path_factory):
    base = tmp_path_factory.mktemp("imagenet")
    write_wndb(base / "wordnet")
    write_imagefolder(base / "data", MINI_CLASSES, n_train=3, n_val=2)
    return base


def load_images(base, **options):
    options = {"wordnet": base / "wordnet", "cache_dir": base / "cache", "image_size": 8,
               **options}
    return create_dataset("imagenet", root=base / "data", **options)


def test_imagefolder_round_trip(images):
    bundle = load_images(images, normalize="none")
    assert bundle.classes == sorted(MINI_CLASSES)
    assert bundle.train.x.shape == (24, 3, 8, 8) and bundle.train.x.dtype == torch.uint8
    np.testing.assert_array_equal(bundle.train.labels(), np.repeat(np.arange(8), 3))
    np.testing.assert_array_equal(bundle.val.labels(), np.repeat(np.arange(8), 2))
    for label, wnid in enumerate(bundle.classes):  # solid colours survive JPEG within a few levels
        colour = np.array(class_colour(MINI_CLASSES.index(wnid)))
        pixels = bundle.train.x[bundle.train.labels() == label].numpy().astype(int)
        assert np.abs(pixels - colour[None, :, None, None]).max() <= 4
    assert bundle.hierarchy.classes == bundle.classes
    assert bundle.spaces["imagenet_s3"].names == ["misc", "artifacts", "animals"]
    s3 = dict(zip(bundle.classes, bundle.spaces["imagenet_s3"].t, strict=True))
    assert [s3[w] for w in MINI_CLASSES] == [2, 2, 2, 2, 1, 1, 0, 0]
    standard = load_images(images)
    mean, std = np.array(imf.IMAGENET_MEAN) * 255, np.array(imf.IMAGENET_STD) * 255
    expected = (bundle.train.x.numpy() - mean[:, None, None]) / std[:, None, None]
    np.testing.assert_allclose(standard.train.x.numpy(), expected, atol=1e-5)


def test_imagefolder_cache_is_reused_and_memory_mapped(images, monkeypatch):
    first = load_images(images, image_size=6, normalize="unit")
    cached = sorted((images / "cache").glob("images-6-*.npy"))
    assert len(cached) == 2 and not list((images / "cache").glob(".*tmp"))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(imf, "decode", no_decoding)
    mapped = load_images(images, image_size=6, normalize="unit", in_memory=False)
    assert isinstance(mapped.train, imf.ImageArraySplit)
    assert isinstance(np.load(cached[0], mmap_mode="r"), np.memmap)
    assert len(mapped.train) == 24
    for i in (0, 7, 23):
        x, y = mapped.train[i]
        torch.testing.assert_close(x, first.train.x[i])
        assert int(y) == int(first.train.y[i])
    state = pickle.loads(pickle.dumps(mapped.train))  # DataLoader workers re-open the map
    torch.testing.assert_close(state[5][0], first.train.x[5])
    np.testing.assert_array_equal(mapped.train.labels(), first.train.labels())


def test_imagefolder_subsampling_is_seeded(images):
    files = [sorted((images / "data" / "train" / w).iterdir()) for w in sorted(MINI_CLASSES)]
    paths, labels = imf.subsample(files, 2, seed=3)
    again, _ = imf.subsample(files, 2, seed=3)
    assert paths == again and np.bincount(labels).tolist() == [2] * 8
    assert all(p in files[y] for p, y in zip(paths, labels, strict=True))
    picks = {tuple(imf.subsample(files, 1, seed=s)[0]) for s in range(6)}
    assert len(picks) > 1
    bundle = load_images(images, train_per_class=2, val_per_class=1, cache=False)
    assert len(bundle.train) == 16 and len(bundle.val) == 8


def test_imagefolder_within_and_hierarchy_file(images, tmp_path):
    animals = load_images(images, within="n00015388", cache=False)
    assert animals.classes == ["n01530575", "n01910747", "n02084071", "n02121808"]
    assert len(animals.val) == 8
    tree = tmp_path / "tree.json"
    tree.write_text(json.dumps({"living": sorted(MINI_CLASSES)[:4],
                                "other": sorted(MINI_CLASSES)[4:]}))
    bundle = load_images(images, hierarchy=tree, cache=False)
    assert bundle.spaces == {} and bundle.hierarchy.parents(bundle.classes[5]) == ["other"]


def test_imagefolder_unknown_wnid_folder(images, tmp_path):
    write_imagefolder(tmp_path, ["n02084071", "n99999999"], n_train=1, n_val=1)
    with pytest.raises(DataError) as err:
        create_dataset("imagenet", root=tmp_path, wordnet=images / "wordnet", cache=False)
    assert one_line(err).startswith(f"{tmp_path / 'train' / 'n99999999'}: folder name "
                                    "'n99999999' is not a WordNet noun synset id")


def test_imagefolder_malformed_folders(images, tmp_path):
    write_imagefolder(tmp_path, ["n02084071", "n02121808"], n_train=1, n_val=1)
    (tmp_path / "val" / "n01530575").mkdir()
    with pytest.raises(DataError, match=r"val/n01530575: no images \(.jpeg, .jpg, .png\)"):
        create_dataset("imagenet", root=tmp_path, wordnet=images / "wordnet")
    (tmp_path / "val" / "n01530575" / "x.JPEG").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"val/n01530575: class folder 'n01530575' has no train"):
        create_dataset("imagenet", root=tmp_path, wordnet=images / "wordnet")
    (tmp_path / "train" / "n01530575").mkdir()
    (tmp_path / "train" / "n01530575" / "y.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError) as err:
        create_dataset("imagenet", root=tmp_path, wordnet=images / "wordnet", cache=False,
                       image_size=4)
    assert one_line(err).startswith(f"{tmp_path / 'train' / 'n01530575' / 'y.jpg'}: cannot decode")
    with pytest.raises(DataError, match=r"nowhere: no such data folder"):
        create_dataset("imagenet", root=tmp_path / "nowhere")


# ---------------------------------------------------------------------- DBPedia
@pytest.fixture(scope="module")
def dbpedia(tmp_path_factory):
    root = tmp_path_factory.mktemp("dbpedia")
    write_dbpedia(root, n_train=4, n_test=2)
    return root


def reference_bow(text: str, dim: int, seed: int) -> np.ndarray:
    """One text's features by a plain loop: signed counts, sign·log1p|c|, unit L2 norm."""
    import re

    counts = np.zeros(dim)
    for word in re.findall(r"[^\W_]+", text.lower()):
        bucket, sign = word_buckets(word, dim, seed.to_bytes(8, "little"))
        counts[bucket] += sign
    feats = np.sign(counts) * np.log1p(np.abs(counts))
    return feats / np.linalg.norm(feats)


def test_dbpedia_round_trip(dbpedia):
    bundle = create_dataset("dbpedia", root=dbpedia, dim=256)
    assert bundle.classes == list(CLASS_NAMES)
    np.testing.assert_array_equal(bundle.train.labels(), np.tile(np.arange(14), 4))
    assert len(bundle.val) == 28 and bundle.input_shape == (256,)
    s5 = bundle.spaces["S5"]
    assert s5.names == ["Eukaryote", "Organization", "Place", "Work", "Others"]
    assert s5.sizes.tolist() == [5, 2, 2, 3, 2]
    assert bundle.hierarchy.parents("Village") == ["Place"]
    assert s5.names[s5.t[CLASS_NAMES.index("MeanOfTransportation")]] == "Others"
    text = create_dataset("dbpedia", root=dbpedia, features="text")
    assert text.train[2] == ('Title 0. A painter, "quoted" and painters number 0.', 2)
    x = bundle.train.x.numpy()
    for i in (0, 13, 30):
        np.testing.assert_allclose(x[i], reference_bow(text.train[i][0], 256, 0),
                                   atol=1e-6)


def test_bag_of_words_is_seeded():
    texts = [f"the {w} and the {w}" for w in DBPEDIA_WORDS.values()]
    a, b, c = bag_of_words(texts, 64, 0), bag_of_words(texts, 64, 0), bag_of_words(texts, 64, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    assert bag_of_words(["", "!!"], 8, 0).tolist() == [[0.0] * 8] * 2


def test_dbpedia_subsampling_and_class_names(dbpedia, tmp_path):
    bundle = create_dataset("dbpedia", root=dbpedia, dim=16, train_per_class=3, val_per_class=1)
    assert np.bincount(bundle.train.labels()).tolist() == [3] * 14 and len(bundle.val) == 14
    write_dbpedia(tmp_path, n_train=1, n_test=1, classes_txt=False)
    assert create_dataset("dbpedia", root=tmp_path, dim=8).classes == list(CLASS_NAMES)
    (tmp_path / "classes.txt").write_text("\n".join(CLASS_NAMES[:13]))
    with pytest.raises(DataError, match=r"classes.txt: expected 14 distinct class names, one per "
                                        r"line; got 13 \(13 distinct\)"):
        create_dataset("dbpedia", root=tmp_path)


@pytest.mark.parametrize(("row", "message"), [
    ('15,"Title","Some text"', ":3: field 'label' is '15', not one of 1..14"),
    ('x,"Title","Some text"', ":3: field 'label' is 'x', not one of 1..14"),
    ('3,"Title only"', ":3: expected 3 fields label,title,content; got 2"),
])
def test_dbpedia_bad_rows_name_file_line_and_value(tmp_path, row, message):
    write_dbpedia(tmp_path, n_train=1, n_test=1)
    path = tmp_path / "train.csv"
    lines = path.read_text().splitlines()
    lines.insert(2, row)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        create_dataset("dbpedia", root=tmp_path)
    assert one_line(err) == f"{path}{message}"


def test_dbpedia_token_features_need_transformers(dbpedia):
    try:
        import transformers  # noqa: F401
    except ImportError:
        with pytest.raises(HypbiasError, match=r"needs the optional package 'transformers'.*"
                                               r"pip install 'hypbias\[text\]'"):
            create_dataset("dbpedia", root=dbpedia, features="tokens")
    else:
        pytest.skip("transformers is installed; token features would need the tokenizer files")


# ---------------------------------------------------------------------- bag-of-words model
def test_bow_model_honours_the_classifier_interface():
    import hypbias.models.bow  # noqa: F401  (registration, until hypbias.models imports it)

    model = create("bow", num_classes=5, in_features=32, embed_dim=8, hidden=[6])
    x = torch.randn(4, 32)
    logits, feats = model.forward_with_features(x)
    assert logits.shape == (4, 5) and feats.shape == (4, 6) and model.num_features == 6
    torch.testing.assert_close(logits, model.head(model.features(x)))
    linear = create("bow", num_classes=3, in_features=10, embed_dim=4)
    x = torch.randn(2, 10)
    torch.testing.assert_close(linear.features(x), x @ linear.embed.weight.T)
    with pytest.raises(ValueError, match=r"The 'dropout' parameter of BagOfWords must be a finite "
                                         r"float in \[0, 1\]. Got 2.0 instead."):
        create("bow", num_classes=3, in_features=10, dropout=2.0)


def test_autoaugment_refuses_standardised_images(tmp_path, capsys):
    write_cifar100(tmp_path / "data", n_train=1, n_test=1)
    code = cli_main(["run", "cifar100_resnet18", "--data-dir", str(tmp_path / "data"),
                     "--out", str(tmp_path / "r"),
                     "--set", "train.augment=autoaugment", "--set", "model.name=small_cnn",
                     "--set", "train.epochs=1", "--no-progress", "--no-report"])
    assert code == 2
    assert "set data.normalize to 'unit' or 'none'" in capsys.readouterr().err
