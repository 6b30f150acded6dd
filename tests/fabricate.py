"""Miniature datasets written in the exact on-disk formats the loaders read.

* :func:`write_wndb`: a WordNet ``data.noun`` whose synsets sit at the byte offsets their wnids
  name, so real wnids (``n00015388`` = animal) can be used in a tiny file.
* :func:`write_cifar100`: ``cifar-100-python/{train,test,meta}`` pickles.
* :func:`write_imagefolder`: ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` with tiny JPEGs.
* :func:`write_dbpedia`: ``train.csv``, ``test.csv`` (``label,title,content``) and ``classes.txt``.
"""

from __future__ import annotations

import csv
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

# A small slice of WordNet 3.0 at its real offsets, pointers simplified (dog and domestic cat hang
# from mammal; volcano's instance pointer is invented to exercise '@i'): entity down to a few
# classes of each kind (animals, artifacts, misc), with sandbar's two routes to the top.
MINI_WORDNET: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "n00001740": (("entity",), ()),
    "n00001930": (("physical_entity",), ("@n00001740",)),
    "n00002684": (("object", "physical_object"), ("@n00001930",)),
    "n00003553": (("whole", "unit"), ("@n00002684",)),
    "n00004258": (("living_thing", "animate_thing"), ("@n00003553",)),
    "n00004475": (("organism", "being"), ("@n00004258",)),
    "n00015388": (("animal", "animate_being"), ("@n00004475",)),
    "n00019128": (("natural_object",), ("@n00003553",)),
    "n00021939": (("artifact", "artefact"), ("@n00003553",)),
    "n01317541": (("domestic_animal",), ("@n00015388",)),
    "n01466257": (("chordate",), ("@n00015388",)),
    "n01471682": (("vertebrate", "craniate"), ("@n01466257",)),
    "n01861778": (("mammal", "mammalian"), ("@n01471682",)),
    "n02084071": (("dog", "domestic_dog"), ("@n01861778", "@n01317541")),
    "n02121808": (("domestic_cat", "house_cat"), ("@n01861778", "@n01317541")),
    "n01503061": (("bird",), ("@n01471682",)),
    "n01530575": (("brambling", "Fringilla_montifringilla"), ("@n01503061",)),
    "n01905661": (("invertebrate",), ("@n00015388",)),
    "n01910747": (("jellyfish",), ("@n01905661",)),
    "n03575240": (("instrumentality", "instrumentation"), ("@n00021939",)),
    "n02958343": (("car", "auto"), ("@n03575240",)),
    "n03122748": (("covering",), ("@n00021939",)),
    "n03595614": (("jersey", "T-shirt"), ("@n03122748",)),
    "n09287968": (("geological_formation", "formation"), ("@n00002684",)),
    "n09214060": (("bar",), ("@n09409512", "@n09214581")),
    "n09214581": (("barrier",), ("@n09349797",)),
    "n09349797": (("mechanism",), ("@n00019128",)),
    "n09366317": (("natural_elevation", "elevation"), ("@n09287968",)),
    "n09409512": (("ridge",), ("@n09366317",)),
    "n09421951": (("sandbar", "sand_bar"), ("@n09214060",)),
    "n09472597": (("volcano",), ("@n09287968", "@in09366317")),
}
"""{wnid: (lemmas, hypernym pointers as '@<wnid>' or '@i<wnid>')}."""

MINI_CLASSES = ("n02084071", "n02121808", "n01530575", "n01910747", "n02958343", "n03595614",
                "n09421951", "n09472597")
"""Leaves of :data:`MINI_WORDNET` (dog, domestic cat, brambling, jellyfish, car, jersey, sandbar,
volcano); in ImageNet-1k terms 4 animals, 2 artifacts and 2 misc."""


def _wndb_line(wnid: str, words: Sequence[str], pointers: Sequence[str]) -> str:
    ptrs = []
    for p in pointers:
        symbol, target = ("@i", p[2:]) if p.startswith("@i") else ("@", p[1:])
        ptrs.append(f"{symbol} {target[1:]} n 0000")
    lemmas = " ".join(f"{w} 0" for w in words)
    return (f"{wnid[1:]} 03 n {len(words):02x} {lemmas} {len(ptrs):03d} "
            f"{' '.join(ptrs)}{' ' if ptrs else ''}| fabricated gloss  ")


def write_wndb(folder: Path, synsets: Mapping[str, tuple[Sequence[str], Sequence[str]]]
               = MINI_WORDNET) -> Path:
    """Write ``folder/data.noun`` with each synset's line at the byte offset of its wnid.

    Gaps are filled with a license-style header line before the first synset and with trailing
    spaces after the others (WNDB lines end in spaces anyway). Returns the file's path.
    """
    out = bytearray()
    for wnid in sorted(synsets, key=lambda w: int(w[1:])):
        words, pointers = synsets[wnid]
        gap = int(wnid[1:]) - len(out)
        if gap < 0:
            raise ValueError(f"synset {wnid} overlaps the line before it")
        if gap and not out:
            if gap < 3:
                raise ValueError(f"synset {wnid}: offset too small for a header line")
            out += b"  " + b" " * (gap - 3) + b"\n"
        elif gap:
            out[-1:] = b" " * gap + b"\n"
        out += _wndb_line(wnid, words, pointers).encode() + b"\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data.noun"
    path.write_bytes(bytes(out))
    return path


def write_cifar100(root: Path, n_train: int = 3, n_test: int = 1, seed: int = 0,
                   bytes_keys: bool = True) -> dict[str, np.ndarray]:
    """Write ``root/cifar-100-python`` with ``n_train``/``n_test`` images per fine class.

    Fine class f has coarse label f % 20 (the real map differs; any map is valid). Keys are written
    as ``bytes``, as Python 2 wrote them, unless ``bytes_keys`` is False. Returns the arrays written.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)

    def key(k: str) -> str | bytes:
        return k.encode() if bytes_keys else k

    arrays = {}
    for split, per_class in (("train", n_train), ("test", n_test)):
        fine = rng.permutation(np.repeat(np.arange(100), per_class))
        data = rng.integers(0, 256, size=(len(fine), 3072), dtype=np.uint8)
        arrays[f"{split}_data"], arrays[f"{split}_fine"] = data, fine
        with open(folder / split, "wb") as fh:
            pickle.dump({key("batch_label"): b"fabricated", key("fine_labels"): fine.tolist(),
                         key("coarse_labels"): (fine % 20).tolist(), key("data"): data,
                         key("filenames"): [b"x.png"] * len(fine)}, fh, protocol=2)
    meta = {key("fine_label_names"): [f"fine{i:02d}".encode() for i in range(100)],
            key("coarse_label_names"): [f"coarse{i:02d}".encode() for i in range(20)]}
    with open(folder / "meta", "wb") as fh:
        pickle.dump(meta, fh, protocol=2)
    return arrays


def write_imagefolder(root: Path, wnids: Sequence[str], n_train: int = 3, n_val: int = 2,
                      size: tuple[int, int] = (20, 14), seed: int = 0) -> None:
    """Write ``root/{train,val}/<wnid>/<wnid>_<k>.JPEG``: solid-colour JPEGs, one colour per class.

    Class i has colour ``(40 * i % 256, 255 - 30 * i % 256, 90)``, so decoded pixels identify it.
    """
    from PIL import Image

    for split, per_class in (("train", n_train), ("val", n_val)):
        for i, wnid in enumerate(wnids):
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            colour = class_colour(i)
            for k in range(per_class):
                Image.new("RGB", size, colour).save(folder / f"{wnid}_{k}.JPEG", quality=95)


def class_colour(i: int) -> tuple[int, int, int]:
    """The solid colour of class ``i`` in :func:`write_imagefolder`."""
    return (40 * i % 256, (255 - 30 * i) % 256, 90)


DBPEDIA_WORDS = {1: "company", 2: "school", 3: "painter", 4: "footballer", 5: "senator",
                 6: "ship", 7: "tower", 8: "river", 9: "village", 10: "beetle", 11: "orchid",
                 12: "album", 13: "film", 14: "novel"}


def write_dbpedia(root: Path, n_train: int = 4, n_test: int = 2, classes_txt: bool = True
                  ) -> None:
    """Write ``train.csv`` and ``test.csv`` (no header; ``label,title,content``, all quoted as in the
    real files) with ``n`` rows per label 1..14, whose content names a word typical of the label."""
    from hypbias.data.dbpedia import CLASS_NAMES

    root.mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", n_train), ("test", n_test)):
        with open(root / f"{split}.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC)
            for k in range(per_class):
                for label, word in DBPEDIA_WORDS.items():
                    writer.writerow([label, f"Title {k}", f" A {word}, \"quoted\" and {word}s "
                                                          f"number {k}."])
    if classes_txt:
        (root / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
