"""The ImageNet-1k class index: the wnids and short names of the 1000 ILSVRC-2012 classes.

A wnid ``nXXXXXXXX`` is the letter ``n`` plus the 8-digit offset of the synset in WordNet 3.0's
``data.noun``, so the index is what :func:`hypbias.hierarchy.wordnet.wordnet` needs to build the
paper's ImageNet hierarchy.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypbias.errors import DataError

IMAGENET_CLASS_INDEX = Path(__file__).resolve().parent / "data" / "imagenet_class_index.json"
"""The public ILSVRC-2012 class index shipped with hypbias: ``{"<index>": ["<wnid>", "<name>"]}``
for the 1000 classes in their canonical order (read it with :func:`load_class_index`)."""


def load_class_index(path: str | Path = IMAGENET_CLASS_INDEX) -> list[tuple[str, str]]:
    """Read an ImageNet class index, ``{"<index>": ["<wnid>", "<name>"], ...}``.

    By default the ImageNet-1k index shipped with hypbias (:data:`IMAGENET_CLASS_INDEX`).

    Returns ``[(wnid, name), ...]`` in index order. A file that is not such a mapping, or whose
    indices are not exactly ``0 .. n-1``, raises :class:`DataError` naming the file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise DataError(f"{path}: cannot read the class index: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON: {err.msg} (line {err.lineno})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: a class index maps '<index>' to [wnid, name]; "
                        f"got a {type(data).__name__}")
    out = []
    for i in range(len(data)):
        entry = data.get(str(i))
        if entry is None:
            raise DataError(f"{path}: index {i} is missing (indices must be 0..{len(data) - 1})")
        if (not isinstance(entry, list) or len(entry) != 2
                or not all(isinstance(v, str) for v in entry)):
            raise DataError(f"{path}: entry {i} must be [wnid, name]; got {entry!r}")
        out.append((entry[0], entry[1]))
    return out
