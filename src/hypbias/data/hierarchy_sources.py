"""Where a hierarchy comes from, for ``hypbias hierarchy``: a file, WordNet over wnids, or a dataset.

:func:`load_hierarchy_source` returns the hierarchy and the label spaces its source defines (the
paper's ImageNet spaces for WordNet, a dataset's own spaces such as CIFAR-100's ``S20``).
"""

from __future__ import annotations

import re
from pathlib import Path

from hypbias.data.base import create_dataset
from hypbias.data.imagefolder import list_images, select_classes
from hypbias.errors import ConfigError, DataError
from hypbias.hierarchy.class_index import load_class_index
from hypbias.hierarchy.files import read_hierarchy
from hypbias.hierarchy.tree import Hierarchy
from hypbias.hierarchy.wordnet import wordnet
from hypbias.labelspace.imagenet import wordnet_spaces
from hypbias.labelspace.space import LabelSpace

WNID = re.compile(r"n\d{8}")
"""A WordNet noun synset id."""

Source = tuple[Hierarchy, dict[str, LabelSpace]]


def load_hierarchy_source(source: str | Path | None = None, *, wordnet_ids: str | Path | None = None,
                          dataset: str | None = None, data_dir: str | Path | None = None,
                          wordnet_dir: str | Path | None = None) -> Source:
    """The hierarchy of exactly one source, and the label spaces that source defines.

    Parameters
    ----------
    source : a hierarchy file (``.json``, ``.yaml``, ``.csv``, ``.nwk``) or a run directory (its
        ``hierarchy.json``)
    wordnet_ids : an ImageNet class index JSON or a text file of wnids: WordNet over those wnids
    dataset : a registered dataset's name; ``data_dir`` its folder (``imagenet``/``imagefolder``
        read only the class folder names)
    wordnet_dir : WordNet's ``data.noun`` or its folder (default: searched)
    """
    given = [name for name, value in (("SOURCE", source), ("--wordnet", wordnet_ids),
                                      ("--dataset", dataset)) if value is not None]
    if len(given) != 1:
        raise ConfigError("hypbias hierarchy needs exactly one of SOURCE, --wordnet or --dataset; "
                          f"got {', '.join(given) if given else 'none'}")
    if wordnet_ids is not None:
        return wordnet_source(Path(wordnet_ids), wordnet_dir)
    if dataset is not None:
        return dataset_source(dataset, data_dir, wordnet_dir)
    path = Path(source)
    if path.is_dir():
        if not (path / "hierarchy.json").is_file():
            raise DataError(f"{path}: a run directory holds hierarchy.json; none here")
        path = path / "hierarchy.json"
    return read_hierarchy(path), {}


def read_wnids(path: Path) -> list[str]:
    """Wnids of an ImageNet class index JSON (``.json``) or of a text file (any whitespace)."""
    if path.suffix.lower() == ".json":
        return [wnid for wnid, _ in load_class_index(path)]
    try:
        words = path.read_text(encoding="utf-8").split()
    except OSError as err:
        raise DataError(f"{path}: cannot read the wnids file: {err.strerror}") from None
    bad = next((w for w in words if not WNID.fullmatch(w)), None)
    if bad is not None or not words:
        raise DataError(f"{path}: expected wnids such as n01440764, whitespace-separated; "
                        f"got {bad!r}" if words else f"{path}: no wnids")
    return words


def wordnet_source(path: Path, wordnet_dir: str | Path | None) -> Source:
    """WordNet over the wnids of ``path`` and the paper's ImageNet spaces on them."""
    hierarchy = wordnet(read_wnids(path), source=wordnet_dir)
    return hierarchy, wordnet_spaces(hierarchy)


def dataset_source(name: str, data_dir: str | Path | None, wordnet_dir: str | Path | None) -> Source:
    """A registered dataset's hierarchy and spaces (image folders: from the folder names alone)."""
    if name in ("imagenet", "imagefolder"):  # the folder names suffice: decode no image
        if data_dir is None:
            raise ConfigError(f"--dataset {name} needs --data-dir (the folder holding train/)")
        root = Path(data_dir)
        _, hierarchy, spaces = select_classes(root, list(list_images(root / "train")), None,
                                              wordnet_dir, None)
        return hierarchy, spaces
    bundle = create_dataset(name, **({} if data_dir is None else {"root": data_dir}))
    return bundle.hierarchy, bundle.spaces


__all__ = ["WNID", "dataset_source", "load_hierarchy_source", "read_wnids", "wordnet_source"]
