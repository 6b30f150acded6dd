"""WordNet 3.0 noun hierarchy read from its WNDB files (``data.noun``).

A wnid ``nXXXXXXXX`` is the letter ``n`` and the 8-digit offset of a synset in ``data.noun``; the
offset is the byte position of the synset's line, so a synset is found by one slice of the file,
without an index. The file (about 15 MB) is read once per path and kept in memory.

:func:`wordnet` builds the :class:`~hypbias.hierarchy.tree.Hierarchy` over the ancestors of given
classes:

* **graph view**: every hypernym (``@``) and instance-hypernym (``@i``) pointer between those
  ancestors (the paper's "WordNet graph", used for d_W in the CCC, Sec. 3.2);
* **tree view**: one parent per synset, chosen by the rule of :func:`tree_parent_order` (the
  paper's "WordNet tree", Sec. 3): the parent with the longest hypernym chain above it, ties by the
  order of the pointers in ``data.noun``. Hierarchy's tree view takes a node's first parent, so the
  chosen parent is listed first.

Where WordNet is looked for, in order: the ``source`` argument, ``$WORDNET_DIR``, NLTK's data
directories (``corpora/wordnet`` under ``$NLTK_DATA``, ``~/nltk_data`` and the system locations
NLTK searches), then ``/usr/share/wordnet`` (Debian's ``wordnet-base``).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hypbias.errors import HierarchyError
from hypbias.hierarchy.tree import Hierarchy

INSTALL_HINT = (
    "install WordNet 3.0 with `apt-get install wordnet-base` (Debian/Ubuntu) or "
    "`python -c \"import nltk; nltk.download('wordnet')\"`, or point WORDNET_DIR at a folder "
    "holding data.noun"
)
"""How to get WordNet; part of the error raised when none is found."""

HYPERNYM_POINTERS = ("@", "@i")
"""Pointer symbols followed upwards: hypernym and instance hypernym."""


@dataclass(frozen=True)
class Synset:
    """One noun synset: its wnid, lemmas (as written in WordNet, ``_`` for spaces) and hypernyms.

    ``hypernyms`` lists the wnids of the ``@`` and ``@i`` pointers in the order ``data.noun`` gives
    them.
    """

    wnid: str
    words: tuple[str, ...]
    hypernyms: tuple[str, ...]

    @property
    def name(self) -> str:
        """Readable name: the first lemma with spaces, e.g. ``"geological formation"``."""
        return self.words[0].replace("_", " ")


def wordnet_search_dirs() -> list[Path]:
    """Folders searched for ``data.noun`` when no ``source`` is given, in order."""
    dirs: list[Path] = []
    if os.environ.get("WORDNET_DIR"):
        dirs.append(Path(os.environ["WORDNET_DIR"]))
    nltk_roots = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    nltk_roots += [Path.home() / "nltk_data", Path(sys.prefix) / "nltk_data",
                   Path(sys.prefix) / "share" / "nltk_data", Path(sys.prefix) / "lib" / "nltk_data",
                   Path("/usr/share/nltk_data"), Path("/usr/local/share/nltk_data"),
                   Path("/usr/lib/nltk_data"), Path("/usr/local/lib/nltk_data")]
    dirs += [root / "corpora" / "wordnet" for root in nltk_roots]
    dirs.append(Path("/usr/share/wordnet"))
    return dirs


def find_data_noun(source: str | Path | None = None) -> Path:
    """Path of WordNet's ``data.noun``: ``source`` (the file or its folder) or the search dirs.

    Raises :class:`HierarchyError` saying how to install WordNet when none is found.
    """
    if source is not None:
        path = Path(source)
        candidate = path / "data.noun" if path.is_dir() else path
        if not candidate.is_file():
            raise HierarchyError(f"{candidate}: no WordNet data.noun there; {INSTALL_HINT}")
        return candidate
    for folder in wordnet_search_dirs():
        if (folder / "data.noun").is_file():
            return folder / "data.noun"
    raise HierarchyError(f"WordNet 3.0 not found (looked for data.noun in $WORDNET_DIR, NLTK's "
                         f"corpora/wordnet and /usr/share/wordnet); {INSTALL_HINT}")


class WordNetNouns:
    """Random access to the noun synsets of one ``data.noun`` file.

    Parameters
    ----------
    path : path of ``data.noun``.

    Use :func:`load_wordnet`, which shares one instance per file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data = path.read_bytes()
        self._synsets: dict[str, Synset] = {}

    def __contains__(self, wnid: object) -> bool:
        try:
            self.synset(wnid)  # type: ignore[arg-type]
        except (HierarchyError, TypeError):
            return False
        return True

    def synset(self, wnid: str) -> Synset:
        """The synset of ``wnid``; :class:`HierarchyError` when it is not a noun synset."""
        if wnid not in self._synsets:
            self._synsets[wnid] = self._parse(wnid)
        return self._synsets[wnid]

    def name(self, wnid: str) -> str:
        """Readable name of a synset (its first lemma)."""
        return self.synset(wnid).name

    def _parse(self, wnid: str) -> Synset:
        bad = HierarchyError(f"{self.path}: {wnid!r} is not a WordNet noun synset (a wnid is "
                             "'n' followed by the 8-digit offset of a line of data.noun)")
        if not (isinstance(wnid, str) and len(wnid) == 9 and wnid[0] == "n" and wnid[1:].isdigit()):
            raise bad
        offset = int(wnid[1:])
        data = self._data
        if offset >= len(data) or (offset > 0 and data[offset - 1:offset] != b"\n"):
            raise bad
        end = data.find(b"\n", offset)
        line = data[offset:end if end >= 0 else len(data)].decode("utf-8", errors="replace")
        fields = line.split(" | ", 1)[0].split()
        if len(fields) < 4 or fields[0] != wnid[1:] or fields[2] != "n":
            raise bad
        try:
            n_words = int(fields[3], 16)
            words = tuple(fields[4:4 + 2 * n_words:2])
            pos = 4 + 2 * n_words
            n_pointers = int(fields[pos])
            pointers = [fields[pos + 1 + 4 * k: pos + 5 + 4 * k] for k in range(n_pointers)]
            hypernyms = tuple(f"n{p[1]}" for p in pointers
                              if p[0] in HYPERNYM_POINTERS and p[2] == "n")
        except (ValueError, IndexError):
            raise HierarchyError(
                f"{self.path}: malformed synset line at byte offset {offset}: {line[:60]!r}"
            ) from None
        if len(words) != n_words or any(len(p) != 4 for p in pointers):
            raise HierarchyError(
                f"{self.path}: malformed synset line at byte offset {offset}: {line[:60]!r}"
            )
        return Synset(wnid, words, hypernyms)

    def closure(self, wnids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Every synset reachable upwards from ``wnids``, mapped to its hypernyms (in order)."""
        parents: dict[str, tuple[str, ...]] = {}
        stack = list(wnids)
        while stack:
            node = stack.pop()
            if node in parents:
                continue
            parents[node] = self.synset(node).hypernyms
            stack.extend(p for p in parents[node] if p not in parents)
        return parents


@functools.lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> WordNetNouns:
    del mtime_ns  # part of the cache key only: a rewritten file is read again
    return WordNetNouns(path)


def load_wordnet(source: str | Path | None = None) -> WordNetNouns:
    """The WordNet nouns found as :func:`find_data_noun` describes, read once per file."""
    path = find_data_noun(source).resolve()
    return _load(path, path.stat().st_mtime_ns)


def tree_parent_order(parents: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Reorder every node's parents so that its tree parent comes first.

    Rule: the tree parent is the parent with the longest hypernym chain above it (the largest
    graph depth, measured as the longest path to a root); ties go to the pointer listed first in
    ``data.noun``. Deeper parents are more specific, so classes are filed under the most specific
    of their hypernyms. On ImageNet-1k the tree then has the paper's top-level counts (artifact
    522, animal 398, misc 42, ...; App. B.2) except for one class: ``sandbar`` (n09421951) lies
    under natural object (bar → barrier → mechanism, the longer chain) where the paper's tree
    files it under geological formation (bar → ridge → natural elevation); both routes are in the
    graph view, and :mod:`hypbias.labelspace.imagenet` follows the paper. Taking the first pointer
    instead would put 6 artifacts and 11 natural objects elsewhere.
    """
    depth: dict[str, int] = {}

    def longest(node: str) -> int:  # WordNet's hypernym chains are ~20 long: recursion is fine
        if node not in depth:
            depth[node] = 1 + max((longest(p) for p in parents[node]), default=-1)
        return depth[node]

    out = {}
    for node, ps in parents.items():
        ranked = sorted(range(len(ps)), key=lambda k: (-longest(ps[k]), k))
        out[node] = tuple(ps[k] for k in ranked)
    return out


def wordnet(wnids: Sequence[str], source: str | Path | None = None) -> Hierarchy:
    """The WordNet hierarchy over the ancestors of ``wnids`` (the classes, in this order).

    Parameters
    ----------
    wnids : sequence of str
        The C classes as wnids (``"n01440764"``); they must be leaves, i.e. none may be a hypernym
        of another.
    source : path, optional
        WordNet's ``data.noun`` or its folder; default: search as :func:`find_data_noun` does.

    Returns
    -------
    Hierarchy whose node names are wnids; the graph view holds every ``@``/``@i`` pointer among the
    ancestors, the tree view the parent chosen by :func:`tree_parent_order`. The root is ``entity``
    (n00001740). Readable names: :func:`synset_names`.
    """
    nouns = load_wordnet(source)
    wnids = list(wnids)
    parents = nouns.closure(wnids)
    classes = set(wnids)
    for node, ps in parents.items():
        hit = next((p for p in ps if p in classes), None)
        if hit is not None and node in classes:
            raise HierarchyError(
                f"{nouns.path}: class {hit} ({nouns.name(hit)}) is a hypernym of class {node} "
                f"({nouns.name(node)}); classes must be leaves of the hierarchy"
            )
    return Hierarchy(tree_parent_order(parents), wnids, source=f"wordnet:{nouns.path}")


def synset_names(wnids: Iterable[str], source: str | Path | None = None) -> dict[str, str]:
    """Readable names (first lemmas) of synsets, ``{wnid: name}``; non-wnids are left out."""
    nouns = load_wordnet(source)
    return {w: nouns.name(w) for w in wnids if w in nouns}
