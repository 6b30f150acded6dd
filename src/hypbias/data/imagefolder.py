"""ImageNet-style class folders: ``train/<class>/*.JPEG`` and ``val/<class>/*.JPEG``.

Class folders named by wnids (``n01440764``) get their hierarchy from WordNet 3.0
(:func:`hypbias.hierarchy.wordnet.wordnet`) and the paper's ImageNet label spaces (App. B.2) as
``DatasetBundle.spaces``; any other folder names need a hierarchy file (``hierarchy:``).

Images are decoded with Pillow, the shorter side resized to ``resize`` and the centre cropped to
``image_size`` × ``image_size`` (the usual 256 → 224 evaluation transform). The fast path decodes
each selected image once and caches the split as a uint8 array of shape (N, 3, S, S) in a ``.npy``
file under ``cache_dir``, named by a hash of the file list (paths, sizes, modification times) and
the image options, and written atomically; later runs memory-map it. Splits that fit in memory
(``in_memory``) are served as one :class:`TensorSplit`; larger ones as an :class:`ImageArraySplit`
reading the memory map through a ``DataLoader``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hypbias._validation import check_int
from hypbias.data.base import DatasetBundle, TensorSplit, data_folder, register_dataset
from hypbias.data.cifar import channel_scaling, standardize
from hypbias.errors import DataError, missing_dependency
from hypbias.hierarchy.files import read_hierarchy
from hypbias.hierarchy.tree import Hierarchy
from hypbias.hierarchy.wordnet import load_wordnet
from hypbias.hierarchy.wordnet import wordnet as wordnet_hierarchy
from hypbias.io import atomic_path
from hypbias.labelspace import LabelSpace
from hypbias.labelspace.imagenet import wordnet_spaces

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Channel mean and standard deviation of ImageNet-1k images scaled to [0, 1]."""

EXTENSIONS = (".jpeg", ".jpg", ".png")
IN_MEMORY_BYTES = 2 * 1024**3
"""``in_memory=None`` keeps a split in memory when its float32 tensor is at most this large."""
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$HYPBIAS_CACHE/imagefolder``, else ``~/.cache/hypbias/imagefolder``."""
    base = os.environ.get("HYPBIAS_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "hypbias") / "imagefolder"


def list_images(split_dir: Path) -> dict[str, list[Path]]:
    """Image files (sorted) of every class folder (sorted by name) under one split folder."""
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: no such folder; expected class folders "
                        f"{split_dir.name}/<class>/*.JPEG")
    out = {}
    for folder in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        out[folder.name] = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)
        if not out[folder.name]:
            raise DataError(f"{folder}: no images ({', '.join(EXTENSIONS)})")
    if not out:
        raise DataError(f"{split_dir}: no class folders (expected {split_dir.name}/<class>/*.JPEG)")
    return out


def subsample(files: list[list[Path]], per_class: int | None, seed: int
              ) -> tuple[list[Path], np.ndarray]:
    """At most ``per_class`` files per class, drawn without replacement (seeded, order kept).

    Returns the flat file list and the class label of each file, shape (N,).
    """
    rng = np.random.default_rng(seed)
    paths: list[Path] = []
    labels: list[int] = []
    for label, images in enumerate(files):
        if per_class is not None and len(images) > per_class:
            keep = np.sort(rng.choice(len(images), size=per_class, replace=False))
            images = [images[k] for k in keep]
        paths += images
        labels += [label] * len(images)
    return paths, np.asarray(labels, dtype=np.int64)


def decode(path: Path, image_size: int, resize: int) -> np.ndarray:
    """One image as uint8 of shape (3, image_size, image_size): shorter side to ``resize``, centre
    crop. Raises :class:`DataError` naming the file when Pillow cannot read it."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise missing_dependency("pillow", "image", "Reading image folders") from None
    try:
        with Image.open(path) as img:
            img.draft("RGB", (resize, resize))  # JPEG: decode at a reduced scale >= resize
            img = img.convert("RGB")
            w, h = img.size
            scale = resize / min(w, h)
            img = img.resize((max(resize, round(w * scale)), max(resize, round(h * scale))),
                             Image.Resampling.BILINEAR)
            w, h = img.size
            left, top = (w - image_size) // 2, (h - image_size) // 2
            img = img.crop((left, top, left + image_size, top + image_size))
            return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"{path}: cannot decode the image ({err})") from None


def decode_all(paths: Sequence[Path], image_size: int, resize: int, out: np.ndarray,
               workers: int) -> None:
    """Decode ``paths`` into ``out`` (shape (N, 3, S, S), uint8) with a pool of threads."""
    def one(i: int) -> None:
        out[i] = decode(paths[i], image_size, resize)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(len(paths))))


def cache_key(paths: Sequence[Path], image_size: int, resize: int) -> str:
    """Hash of the selected files (path, size, modification time) and the image options."""
    digest = hashlib.sha256(json.dumps(
        {"version": CACHE_VERSION, "image_size": image_size, "resize": resize}).encode())
    for p in paths:
        st = p.stat()
        digest.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def cached_images(paths: Sequence[Path], image_size: int, resize: int, cache_dir: Path,
                  workers: int) -> Path:
    """The ``.npy`` file of the decoded images (N, 3, S, S), decoding and writing it when absent."""
    target = cache_dir / f"images-{image_size}-{cache_key(paths, image_size, resize)}.npy"
    if not target.is_file():
        with atomic_path(target) as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                            shape=(len(paths), 3, image_size, image_size))
            decode_all(paths, image_size, resize, arr, workers)
            arr.flush()
            del arr
    return target


class ImageArraySplit(Dataset):
    """Decoded images in a ``.npy`` file, read through a memory map; yields normalised tensors.

    Parameters
    ----------
    path : ``.npy`` file of uint8 images, shape (N, 3, S, S).
    labels : array of shape (N,).
    scaling : per-channel (offset, scale) in [0, 255] units (see ``channel_scaling``); None
        yields the uint8 images unchanged.

    The memory map is opened lazily in each process, so DataLoader workers share the page cache.
    """

    def __init__(self, path: Path, labels: np.ndarray,
                 scaling: tuple[Sequence[float], Sequence[float]] | None) -> None:
        self.path = Path(path)
        self.y = torch.as_tensor(labels, dtype=torch.long)
        self.scaling = scaling
        self._images: np.ndarray | None = None

    @property
    def images(self) -> np.ndarray:
        if self._images is None:
            self._images = np.load(self.path, mmap_mode="r")
        return self._images

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(np.array(self.images[i]))
        if self.scaling is not None:
            x = standardize(x[None], *self.scaling)[0]
        return x, self.y[i]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_images": None}

    def labels(self) -> np.ndarray:
        return self.y.numpy()


def check_wnids(names: Sequence[str], split_dir: Path,
                wordnet_source: str | Path | None) -> None:
    """Raise :class:`DataError` naming the first class folder whose name is not a noun wnid."""
    nouns = load_wordnet(wordnet_source)
    for name in names:
        if name not in nouns:
            raise DataError(f"{split_dir / name}: folder name {name!r} is not a WordNet noun "
                            f"synset id (nXXXXXXXX in {nouns.path}); give a hierarchy file for "
                            "folders not named by wnids")


def classes_within(classes: Sequence[str], synset: str, wordnet_source: str | Path | None
                   ) -> list[str]:
    """The classes with ``synset`` among their WordNet ancestors (graph view), in order."""
    nouns = load_wordnet(wordnet_source)
    nouns.synset(synset)  # an unknown wnid raises here, naming it
    kept = [c for c in classes if synset in nouns.closure([c])]
    if not kept:
        raise DataError(f"no class folder lies under within={synset!r} ({nouns.name(synset)})")
    return kept


def load_imagefolder(
    root: str | Path | None = None,
    image_size: int = 224,
    resize: int | None = None,
    train_per_class: int | None = None,
    val_per_class: int | None = None,
    normalize: str = "standard",
    in_memory: bool | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    hierarchy: str | Path | None = None,
    wordnet: str | Path | None = None,
    within: str | None = None,
    workers: int | None = None,
    seed: int = 0,
) -> DatasetBundle:
    """Load ``root/train/<class>/*`` and ``root/val/<class>/*`` (registered as ``imagenet`` and
    ``imagefolder``).

    Parameters
    ----------
    root : the folder holding ``train/`` and ``val/``.
    image_size : side S of the square crop; inputs have shape (3, S, S).
    resize : shorter side before the centre crop; default ``S * 256 // 224`` (256 for 224).
    train_per_class, val_per_class : keep at most this many images per class, drawn with ``seed``
        (App. B.1 trains the neural-collapse ResNet-152 on 600 per class); None keeps all.
    normalize : ``"standard"``: standardise with the ImageNet channel mean/std (recorded in
        ``info``); ``"unit"``: floats in [0, 1], for AutoAugment; ``"none"``: uint8 in [0, 255].
    in_memory : serve a split as one TensorSplit; None decides by size (at most 2 GiB of float32).
    cache, cache_dir : keep decoded images as memory-mapped ``.npy`` files (default dir:
        ``$HYPBIAS_CACHE/imagefolder`` or ``~/.cache/hypbias/imagefolder``).
    hierarchy : a hierarchy file over the folder names; default: WordNet over the wnids.
    wordnet : WordNet's ``data.noun`` or its folder (default: searched, see ``hypbias.hierarchy``).
    within : keep only the classes under this WordNet synset in the graph view, e.g.
        ``n00015388`` (animal) for the paper's Table 3.
    workers : decoding threads (default: the CPU count).
    seed : seeds the per-class subsampling.
    """
    owner = "load_imagefolder"
    root = data_folder(root, "imagefolder", "train/ and val/ class folders")
    image_size = check_int(image_size, "image_size", owner, low=1)
    resize = image_size * 256 // 224 if resize is None else check_int(resize, "resize", owner,
                                                                       low=image_size)
    per_class = {"train": train_per_class, "val": val_per_class}
    for split, n in per_class.items():
        if n is not None:
            check_int(n, f"{split}_per_class", owner, low=1)
    workers = check_int(workers, "workers", owner, low=1) if workers is not None \
        else (os.cpu_count() or 1)

    scaling = channel_scaling(normalize, [255 * m for m in IMAGENET_MEAN],
                              [255 * s for s in IMAGENET_STD], owner)
    if not cache and in_memory is False:
        raise ValueError(f"The 'in_memory' parameter of {owner} can be False only with cache=True "
                         "(the memory-mapped cache serves such splits). Got cache=False instead.")
    folders = {split: list_images(root / split) for split in ("train", "val")}
    check_val_classes(root, folders)
    classes, tree, spaces = select_classes(root, list(folders["train"]), hierarchy, wordnet, within)
    images = ImageOptions(image_size, resize, scaling, in_memory, cache,
                          Path(cache_dir) if cache_dir is not None else default_cache_dir(), workers)
    splits = {split: load_split(root / split, [folders[split].get(c, []) for c in classes],
                                per_class[split], seed, images)
              for split in ("train", "val")}
    info = {"root": str(root), "image_size": image_size, "resize": resize,
            "train_per_class": train_per_class, "val_per_class": val_per_class,
            "normalize": normalize, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "within": within, "seed": seed,
            "train_samples": len(splits["train"]), "val_samples": len(splits["val"])}
    return DatasetBundle("imagenet", splits["train"], splits["val"], classes, tree,
                         (3, image_size, image_size), spaces=spaces, info=info)


def check_val_classes(root: Path, folders: dict[str, dict[str, list[Path]]]) -> None:
    """Every class folder of ``val/`` has a train folder (``folders``: split -> class -> files)."""
    stray = [c for c in folders["val"] if c not in folders["train"]]
    if stray:
        raise DataError(f"{root / 'val' / stray[0]}: class folder {stray[0]!r} has no train folder")


def select_classes(root: Path, classes: list[str], hierarchy: str | Path | None,
                   wordnet: str | Path | None, within: str | None
                   ) -> tuple[list[str], Hierarchy, dict[str, LabelSpace]]:
    """The classes (the train folder names ``classes``, optionally those ``within`` a synset), their
    hierarchy (the given file, else WordNet) and the label spaces it defines (the paper's, for
    WordNet)."""
    if hierarchy is None:
        check_wnids(classes, root / "train", wordnet)
    if within is not None:
        classes = classes_within(classes, within, wordnet)
    if hierarchy is not None:
        return classes, read_hierarchy(hierarchy, classes=classes), {}
    tree = wordnet_hierarchy(classes, source=wordnet)
    return classes, tree, wordnet_spaces(tree)


@dataclass(frozen=True)
class ImageOptions:
    """How :func:`load_split` decodes, caches and serves images (see :func:`load_imagefolder`)."""

    image_size: int
    resize: int
    scaling: tuple[list[float], list[float]] | None
    in_memory: bool | None
    cache: bool
    cache_dir: Path
    workers: int


def load_split(split_dir: Path, files: list[list[Path]], per_class: int | None, seed: int,
               opts: ImageOptions) -> Dataset:
    """One split from the image files of every class (in class order), subsampled per class.

    In memory as a :class:`TensorSplit` when it fits (or ``in_memory``), else an
    :class:`ImageArraySplit` over the memory-mapped cache.
    """
    paths, labels = subsample(files, per_class, seed)
    if not paths:
        raise DataError(f"{split_dir}: no images of the selected classes")
    shape = (len(paths), 3, opts.image_size, opts.image_size)
    keep = opts.in_memory if opts.in_memory is not None \
        else (not opts.cache or 4 * int(np.prod(shape)) <= IN_MEMORY_BYTES)
    if opts.cache:
        npy = cached_images(paths, opts.image_size, opts.resize, opts.cache_dir, opts.workers)
        if not keep:
            return ImageArraySplit(npy, labels, opts.scaling)
        images = np.load(npy)
    else:
        images = np.empty(shape, dtype=np.uint8)
        decode_all(paths, opts.image_size, opts.resize, images, opts.workers)
    x = torch.from_numpy(images)
    return TensorSplit(x if opts.scaling is None else standardize(x, *opts.scaling),
                       torch.from_numpy(labels))


register_dataset("imagenet")(load_imagefolder)
register_dataset("imagefolder")(load_imagefolder)
