"""DBPedia-14 (Zhang et al. 2015) from its CSV files, with the paper's five superclasses (Table 5).

Format: ``train.csv`` and ``test.csv`` without a header, one ``label,title,content`` row per
article (fields quoted where needed, ``""`` for a quote), labels 1..14; ``classes.txt``, when
present, names the 14 classes one per line in label order.

Inputs, by ``features``:

* ``"bow"`` (default): a tokenizer-free bag of words for CPU runs. Words are runs of letters and
  digits of the lower-cased title and content; each word is hashed (BLAKE2b keyed by ``seed``,
  stable across processes) to one of ``dim`` buckets and a sign, the signed counts are
  log-scaled, ``sign · log(1 + |count|)``, and every row is scaled to unit L2 norm. Inputs of shape
  (N, dim) in a :class:`TensorSplit`.
* ``"tokens"``: token ids of shape (N, max_length) from a Hugging Face tokenizer (``tokenizer``,
  a name or a local directory; needs the ``text`` extra), padded and truncated, for the
  ``hf:bert-base-uncased`` adapter, whose attention mask is ``ids != pad_token_id``.
* ``"text"``: the raw ``title + ". " + content`` strings in a :class:`TextSplit`, for models that
  tokenise themselves.
"""

from __future__ import annotations

import csv
import hashlib
import re
from array import array
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.sparse import coo_matrix, diags
from torch.utils.data import Dataset

from hypbias._validation import check_choice, check_int
from hypbias.data.base import DatasetBundle, TensorSplit, data_folder, register_dataset
from hypbias.errors import DataError, missing_dependency
from hypbias.hierarchy.tree import Hierarchy
from hypbias.labelspace import LabelSpace

CLASS_NAMES = ("Company", "EducationalInstitution", "Artist", "Athlete", "OfficeHolder",
               "MeanOfTransportation", "Building", "NaturalPlace", "Village", "Animal", "Plant",
               "Album", "Film", "WrittenWork")
"""The 14 classes in label order (label k is ``CLASS_NAMES[k - 1]``)."""

SUPERCLASSES = {
    "Eukaryote": ("Artist", "Athlete", "OfficeHolder", "Animal", "Plant"),
    "Organization": ("Company", "EducationalInstitution"),
    "Place": ("NaturalPlace", "Village"),
    "Work": ("Album", "Film", "WrittenWork"),
    "Others": ("MeanOfTransportation", "Building"),
}
"""Table 5 of the paper: the first level of the DBPedia ontology over the 14 classes."""

_WORD = re.compile(r"[^\W_]+")


class TextSplit(Dataset):
    """Raw texts and labels: yields ``(text, label)``; ``labels()`` gives shape (N,)."""

    def __init__(self, texts: Sequence[str], labels: np.ndarray) -> None:
        self.texts = list(texts)
        self.y = torch.as_tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[str, torch.Tensor]:
        return self.texts[i], self.y[i]

    def labels(self) -> np.ndarray:
        return self.y.numpy()


def read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Texts (``title + ". " + content``) and 0-based labels, shape (N,), of one split file.

    Raises :class:`DataError` naming the file and line of a row without 3 fields or with a
    label outside 1..14.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file (DBPedia-14 needs train.csv and test.csv)")
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            for row in reader:
                if not row:
                    continue
                if len(row) != 3:
                    raise DataError(f"{path}:{reader.line_num}: expected 3 fields "
                                    f"label,title,content; got {len(row)}")
                value = row[0].strip()
                if value not in _LABELS:
                    raise DataError(f"{path}:{reader.line_num}: field 'label' is {value!r}, "
                                    "not one of 1..14")
                labels.append(_LABELS[value])
                texts.append(f"{row[1].strip()}. {row[2].strip()}")
        except (csv.Error, UnicodeDecodeError) as err:
            raise DataError(f"{path}:{reader.line_num}: malformed CSV ({err})") from None
    if not labels:
        raise DataError(f"{path}: no rows")
    return texts, np.asarray(labels, dtype=np.int64)


_LABELS = {str(k): k - 1 for k in range(1, 15)}


def read_class_names(root: Path) -> list[str]:
    """Names from ``classes.txt`` (14 non-empty lines) when present, else :data:`CLASS_NAMES`."""
    path = root / "classes.txt"
    if not path.is_file():
        return list(CLASS_NAMES)
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) != 14 or len(set(names)) != 14:
        raise DataError(f"{path}: expected 14 distinct class names, one per line; "
                        f"got {len(names)} ({len(set(names))} distinct)")
    return names


def dbpedia_hierarchy(names: Sequence[str] = CLASS_NAMES) -> tuple[Hierarchy, LabelSpace]:
    """Table 5 as a hierarchy and as the label space S5 (groups in the table's order).

    ``names`` renames the 14 classes (label order); the grouping follows the labels.
    """
    group_of = {CLASS_NAMES.index(c): g for g, members in enumerate(SUPERCLASSES.values())
                for c in members}
    t = np.array([group_of[k] for k in range(14)], dtype=np.int64)
    supers = list(SUPERCLASSES)
    clash = set(names) & set(supers)
    if clash:
        raise DataError(f"class name {sorted(clash)[0]!r} is also a superclass name of Table 5")
    parents = {name: supers[t[k]] for k, name in enumerate(names)}
    hierarchy = Hierarchy.from_parents({**parents, **{s: None for s in supers}}, list(names),
                                       source="dbpedia (Table 5)")
    return hierarchy, LabelSpace(t, names=supers)


def word_buckets(word: str, dim: int, key: bytes) -> tuple[int, float]:
    """Bucket in ``0..dim-1`` and sign (±1) of a word under the keyed hash."""
    h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8, key=key).digest(), "little")
    return h % dim, 1.0 if (h >> 63) & 1 else -1.0


def bag_of_words(texts: Sequence[str], dim: int, seed: int) -> np.ndarray:
    """Hashed bag-of-words features of shape (len(texts), dim), float32, rows of unit L2 norm."""
    key = seed.to_bytes(8, "little")
    cache: dict[str, tuple[int, float]] = {}
    rows, cols, vals = array("q"), array("q"), array("d")
    for i, text in enumerate(texts):
        for word in _WORD.findall(text.lower()):
            hit = cache.get(word)
            if hit is None:
                hit = cache[word] = word_buckets(word, dim, key)
            rows.append(i)
            cols.append(hit[0])
            vals.append(hit[1])
    # the sparse matrix sums repeated (row, bucket) pairs: signed counts without a dense float64
    counts = coo_matrix((np.frombuffer(vals), (np.frombuffer(rows, dtype=np.int64),
                                               np.frombuffer(cols, dtype=np.int64))),
                        shape=(len(texts), dim)).tocsr()
    counts.data = np.sign(counts.data) * np.log1p(np.abs(counts.data))
    norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1))).ravel()
    scale = 1.0 / np.where(norms > 0, norms, 1.0)
    return (diags(scale) @ counts).toarray().astype(np.float32)


def token_ids(texts: Sequence[str], tokenizer: str, max_length: int) -> np.ndarray:
    """Token ids of shape (len(texts), max_length), int64, from ``AutoTokenizer(tokenizer)``."""
    try:
        import transformers
    except ImportError:
        raise missing_dependency("transformers", "text", "DBPedia token features") from None
    tok = transformers.AutoTokenizer.from_pretrained(tokenizer)
    enc = tok(list(texts), padding="max_length", truncation=True, max_length=max_length,
              return_tensors="np")
    return np.asarray(enc["input_ids"], dtype=np.int64)


def _subsample(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Indices keeping at most ``per_class`` rows per label (seeded), in file order."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


@register_dataset("dbpedia")
def load_dbpedia(root: str | Path | None = None, features: str = "bow", dim: int = 4096,
                 tokenizer: str = "bert-base-uncased", max_length: int = 128,
                 train_per_class: int | None = None, val_per_class: int | None = None,
                 seed: int = 0) -> DatasetBundle:
    """DBPedia-14 with Table 5's superclasses as the hierarchy and ``spaces["S5"]``.

    Parameters
    ----------
    root : folder holding ``train.csv``, ``test.csv`` and optionally ``classes.txt``.
    features : ``"bow"`` (hashed bag of words, inputs of shape (dim,)), ``"tokens"`` (token ids,
        shape (max_length,)) or ``"text"`` (raw strings).
    dim : number of hash buckets of the bag of words.
    tokenizer, max_length : the Hugging Face tokenizer and sequence length of ``"tokens"``.
    train_per_class, val_per_class : keep at most this many rows per class (seeded); None keeps
        all (560 000 and 70 000 rows: the dense bag of words then takes N · dim · 4 bytes).
    seed : keys the word hash and seeds the subsampling.

    Returns
    -------
    DatasetBundle with ``val`` = ``test.csv``.
    """
    owner = "load_dbpedia"
    features = check_choice(features, "features", owner, ["bow", "tokens", "text"])
    dim = check_int(dim, "dim", owner, low=1)
    max_length = check_int(max_length, "max_length", owner, low=2)
    seed = check_int(seed, "seed", owner, low=0)
    root = data_folder(root, "dbpedia", "train.csv and test.csv")
    names = read_class_names(root)
    hierarchy, s5 = dbpedia_hierarchy(names)
    splits: dict[str, Dataset] = {}
    sizes = {}
    for split, file, per_class in (("train", "train.csv", train_per_class),
                                   ("val", "test.csv", val_per_class)):
        if per_class is not None:
            check_int(per_class, f"{split}_per_class", owner, low=1)
        texts, labels = read_csv(root / file)
        keep = _subsample(labels, per_class, seed)
        texts, labels = [texts[i] for i in keep], labels[keep]
        sizes[split] = len(labels)
        if features == "text":
            splits[split] = TextSplit(texts, labels)
            continue
        x = bag_of_words(texts, dim, seed) if features == "bow" \
            else token_ids(texts, tokenizer, max_length)
        splits[split] = TensorSplit(torch.from_numpy(x), torch.from_numpy(labels))
    info = {"root": str(root), "features": features, "seed": seed,
            **({"dim": dim} if features == "bow" else {}),
            **({"tokenizer": tokenizer, "max_length": max_length} if features == "tokens" else {}),
            "train_per_class": train_per_class, "val_per_class": val_per_class,
            "train_samples": sizes["train"], "val_samples": sizes["val"]}
    shape = {"bow": (dim,), "tokens": (max_length,), "text": ()}[features]
    return DatasetBundle("dbpedia", splits["train"], splits["val"], names, hierarchy, shape,
                         spaces={"S5": s5}, info=info)
