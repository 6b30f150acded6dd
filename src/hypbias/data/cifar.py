"""CIFAR-100 from its python pickles (``cifar-100-python/{train,test,meta}``).

The format (https://www.cs.toronto.edu/~kriz/cifar.html): ``train`` and ``test`` are pickled dicts
with ``data`` (uint8, shape (N, 3072): 1024 red, then green, then blue values of a 32×32 image in
row-major order), ``fine_labels`` (0..99) and ``coarse_labels`` (0..19); ``meta`` holds
``fine_label_names`` and ``coarse_label_names``. The files were written by Python 2, so keys may
come back as ``bytes``; both spellings are accepted.

The hierarchy is the dataset's own: each of the 20 coarse classes is the parent of the 5 fine
classes whose samples carry its coarse label, and ``spaces["S20"]`` is that map (App. C.1.4).

The pickles are read by :class:`DataUnpickler`, which builds only what the format holds (dicts,
lists, strings, bytes, numbers and NumPy arrays): a file carrying any other object, such as one
whose unpickling would run a command, is refused before anything in it runs.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hypbias._validation import check_choice
from hypbias.data.base import DatasetBundle, TensorSplit, data_folder, register_dataset
from hypbias.errors import DataError
from hypbias.hierarchy.tree import Hierarchy
from hypbias.labelspace import LabelSpace

FOLDER = "cifar-100-python"
DOWNLOAD_HINT = ("download cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
                 "and extract it there")


def find_cifar100(root: str | Path | None) -> Path:
    """The ``cifar-100-python`` folder: ``root`` itself or ``root/cifar-100-python``."""
    root = data_folder(root, "cifar100", f"{FOLDER}/", must_exist=False)
    for folder in (root / FOLDER, root):
        if all((folder / name).is_file() for name in ("train", "test", "meta")):
            return folder
    missing = [n for n in ("train", "test", "meta") if not (root / FOLDER / n).is_file()]
    raise DataError(f"{root}: no CIFAR-100 python files (missing {FOLDER}/{', '.join(missing)}); "
                    f"{DOWNLOAD_HINT}")


class RefusedObject(pickle.UnpicklingError):
    """A pickle names a global that :class:`DataUnpickler` does not build."""


class DataUnpickler(pickle.Unpickler):
    """An unpickler that builds plain data and NumPy arrays only.

    Containers, strings, bytes and numbers need no global; the only globals admitted are the few
    that NumPy's own pickles of arrays, dtypes and scalars name (:data:`ADMITTED`), in the spelling
    of NumPy 1 (``numpy.core``) and 2 (``numpy._core``). Any other global is refused before it is
    imported, so nothing a file names is ever called.
    """

    ADMITTED = frozenset({
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        *((f"numpy.{core}.multiarray", name) for core in ("core", "_core")
          for name in ("_reconstruct", "scalar")),
        *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ADMITTED:
            raise RefusedObject(f"{module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):  # NumPy 2 reading NumPy 1's
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def read_pickle(path: Path) -> dict[str, Any]:
    """Unpickle one CIFAR file into a dict with ``str`` keys (:class:`DataUnpickler`); DataError
    when truncated, garbled or holding anything but plain data and NumPy arrays."""
    try:
        with open(path, "rb") as fh:
            data = DataUnpickler(fh, encoding="latin1").load()
    except RefusedObject as err:
        raise DataError(f"{path}: refused: it holds a Python object ({err}) where CIFAR files hold "
                        "only dicts, lists, strings, numbers and NumPy arrays; nothing in it was "
                        "run") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, ImportError) as err:
        raise DataError(f"{path}: truncated or corrupt pickle ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else 'no detail'})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(data).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in data.items()}


def _field(data: dict[str, Any], key: str, path: Path) -> Any:
    if key not in data:
        raise DataError(f"{path}: missing field {key!r} (found: {', '.join(map(str, data))})")
    return data[key]


def _names(data: dict[str, Any], key: str, count: int, path: Path) -> list[str]:
    names = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in _field(data, key, path)]
    if len(names) != count or len(set(names)) != count:
        raise DataError(f"{path}: field {key!r} must hold {count} distinct names; "
                        f"got {len(names)} ({len(set(names))} distinct)")
    return names


def read_split(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8, fine labels (N,) and coarse labels (N,) of one split file."""
    data = read_pickle(path)
    images = np.asarray(_field(data, "data", path))
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3072:
        raise DataError(f"{path}: field 'data' must be uint8 of shape (N, 3072); "
                        f"got {images.dtype} of shape {images.shape}")
    labels = []
    for key, count in (("fine_labels", 100), ("coarse_labels", 20)):
        y = np.asarray(_field(data, key, path))
        if y.shape != (len(images),) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: field {key!r} must hold {len(images)} integer labels; "
                            f"got shape {y.shape} and dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= count):
            bad = int(y[(y < 0) | (y >= count)][0])
            raise DataError(f"{path}: field {key!r} holds {bad}, outside 0..{count - 1}")
        labels.append(y.astype(np.int64))
    return images.reshape(-1, 3, 32, 32), labels[0], labels[1]


def coarse_of_fine(fine: np.ndarray, coarse: np.ndarray, path: Path) -> np.ndarray:
    """The coarse label of each of the 100 fine classes, shape (100,), checked to be a function."""
    table = np.full(100, -1, dtype=np.int64)
    table[fine] = coarse
    clash = table[fine] != coarse
    if clash.any():
        i = int(np.flatnonzero(clash)[0])
        raise DataError(f"{path}: fine class {fine[i]} carries coarse labels {table[fine[i]]} "
                        f"and {coarse[i]}")
    if (table < 0).any():
        raise DataError(f"{path}: fine class {int(np.flatnonzero(table < 0)[0])} has no sample")
    return table


NORMALIZATIONS = ("standard", "unit", "none")
"""Input scalings of the image loaders: per-channel standardisation, [0, 1] floats, raw uint8."""


def channel_scaling(normalize: str, mean: Any, std: Any, owner: str
                    ) -> tuple[list[float], list[float]] | None:
    """The per-channel (offset, scale), in [0, 255] units, that :func:`standardize` applies.

    ``"standard"``: the dataset's ``mean`` and ``std``; ``"unit"``: 0 and 255 (floats in [0, 1], the
    range the batched augmentations of ``hypbias.data.augment`` expect); ``"none"``: None (uint8).
    """
    check_choice(normalize, "normalize", owner, NORMALIZATIONS)
    if normalize == "none":
        return None
    if normalize == "unit":
        return [0.0] * len(mean), [255.0] * len(mean)
    return [float(m) for m in mean], [float(s) for s in std]


def standardize(images: torch.Tensor, mean: Any, std: Any) -> torch.Tensor:
    """``(images - mean) / std`` per channel as float32; images of shape (N, C, H, W), any dtype."""
    out = images.float()  # a new tensor for uint8 input, so the in-place ops below are safe
    if out is images:
        out = out.clone()
    out.sub_(torch.as_tensor(mean, dtype=torch.float32)[:, None, None])
    return out.div_(torch.as_tensor(std, dtype=torch.float32)[:, None, None])


@register_dataset("cifar100")
def load_cifar100(root: str | Path | None = None, normalize: str = "standard") -> DatasetBundle:
    """CIFAR-100 with its 20 coarse classes as the hierarchy.

    Parameters
    ----------
    root : the ``cifar-100-python`` folder or the folder that holds it.
    normalize : ``"standard"``: float32 standardised per channel with the train split's mean and
        standard deviation (recorded in ``info``); ``"unit"``: float32 in [0, 1], for AutoAugment;
        ``"none"``: uint8 in [0, 255].

    Returns
    -------
    DatasetBundle: ``train`` (50 000 samples) and ``val`` (the 10 000 of ``test``) as TensorSplits
    with inputs of shape (N, 3, 32, 32); classes are the fine label names in label order;
    ``spaces["S20"]`` maps them to the coarse classes.
    """
    channel_scaling(normalize, (0,), (1,), "load_cifar100")  # validate before reading
    folder = find_cifar100(root)
    meta = read_pickle(folder / "meta")
    fine_names = _names(meta, "fine_label_names", 100, folder / "meta")
    coarse_names = _names(meta, "coarse_label_names", 20, folder / "meta")
    x_train, y_train, c_train = read_split(folder / "train")
    x_val, y_val, c_val = read_split(folder / "test")
    table = coarse_of_fine(y_train, c_train, folder / "train")
    coarse_of_fine(np.concatenate([y_train, y_val]), np.concatenate([c_train, c_val]),
                   folder / "test")
    overlap = set(fine_names) & set(coarse_names)
    if overlap:
        raise DataError(f"{folder / 'meta'}: {sorted(overlap)[0]!r} is both a fine and a coarse name")
    hierarchy = Hierarchy.from_parents(
        {**{name: coarse_names[table[i]] for i, name in enumerate(fine_names)},
         **{name: None for name in coarse_names}},
        fine_names, source=str(folder),
    )
    mean = x_train.mean(axis=(0, 2, 3), dtype=np.float64)
    std = x_train.std(axis=(0, 2, 3), dtype=np.float64)
    scaling = channel_scaling(normalize, mean, std, "load_cifar100")

    def tensors(x: np.ndarray, y: np.ndarray) -> TensorSplit:
        xt = torch.from_numpy(x)
        return TensorSplit(xt if scaling is None else standardize(xt, *scaling),
                           torch.from_numpy(y))

    info = {"root": str(folder), "normalize": normalize, "mean": mean.tolist(),
            "std": std.tolist(), "train_samples": len(y_train), "val_samples": len(y_val),
            "coarse_label_names": coarse_names}
    return DatasetBundle("cifar100", tensors(x_train, y_train), tensors(x_val, y_val),
                         fine_names, hierarchy, (3, 32, 32),
                         spaces={"S20": LabelSpace(table, names=coarse_names)}, info=info)
