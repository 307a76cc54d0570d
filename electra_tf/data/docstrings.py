"""The built-in corpus: English docstrings of Python sources installed on this machine.

So that ``python scripts/pretrain.py`` runs with no data and no network, the
project can make a small English corpus from what every installation has: the
docstrings of the Python standard library and of installed packages
(TensorFlow, Keras, NumPy, ...). Files are read with :mod:`ast` (nothing is
imported), each docstring is one document, its paragraphs are its lines, and:

* only English prose is kept (mostly ASCII letters, at least eight words;
  doctest blocks are dropped);
* documents are deduplicated by their whitespace-normalised text;
* the order is deterministic: roots in a fixed order, files sorted, one file
  from each root in turn, docstrings in the order :func:`ast.walk` gives;
* the corpus stops before it would exceed ``max_mb`` megabytes (10^6 bytes);
* the result is cached as ``builtin-corpus-<MB>mb.txt`` in the BERT format
  (one line per paragraph, a blank line between documents), written under a
  temporary name and renamed, so a cached file is always complete.

Example:

>>> path = builtin_corpus("tfrecords", max_mb=0.5)
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import logging
import os
import re
import sysconfig
import warnings
from typing import Iterator, List, Tuple

__all__ = ["builtin_corpus", "collect_docstrings", "corpus_roots", "BUILTIN_CORPUS_MB", "BUILTIN_PACKAGES"]

logger = logging.getLogger(__name__)

BUILTIN_CORPUS_MB = 4.0
#: Installed packages whose docstrings join the standard library's, in this order.
BUILTIN_PACKAGES = ("tensorflow", "keras", "numpy", "tensorflow_datasets", "tf_keras", "absl",
                    "scipy", "sklearn", "pandas", "matplotlib", "official", "tqdm", "yaml")
_CORPUS_VERSION = 1  # bump when the extraction rules change, so old caches are not reused
_SKIP_DIRS = {"test", "tests", "testing", "__pycache__", "site-packages", "dist-packages", "idlelib",
              "lib2to3", "turtledemo", "_vendor", "vendored", "third_party", "benchmarks"}
_WORD = re.compile(r"[A-Za-z]+")
_SPACE = re.compile(r"\s+")
_PARAGRAPH = re.compile(r"\n\s*\n")
_CODE_START = (">>>", "...", "$ ", "```", "%", "In [")
_RULE = re.compile(r"^[-=~^*_#+.:]+$")  # reST/numpydoc section underlines


def corpus_roots() -> List[Tuple[str, str]]:
    """``(name, directory)`` of the standard library and of each installed package, in order.

    Packages are located with :func:`importlib.util.find_spec`, which does not
    import them.
    """
    roots = [("stdlib", sysconfig.get_paths()["stdlib"])]
    for name in BUILTIN_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        locations = list(spec.submodule_search_locations or []) if spec else []
        if locations:
            roots.append((name, locations[0]))
    return roots


def _python_files(root: str) -> Iterator[str]:
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".py") and not name.startswith("test_") and not name.endswith("_test.py"):
                yield os.path.join(directory, name)


def _docstrings(path: str) -> Iterator[str]:
    try:
        with open(path, "rb") as f:
            source = f.read()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename=path)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield doc


def _paragraphs(doc: str) -> List[str]:
    """The English paragraphs of a docstring, each joined to one line."""
    out = []
    for block in _PARAGRAPH.split(inspect.cleandoc(doc)):
        lines = [line.strip() for line in block.splitlines() if line.strip() and not _RULE.match(line.strip())]
        if not lines or lines[0].startswith(_CODE_START):
            continue
        out.append(_SPACE.sub(" ", " ".join(lines)))
    return out


def _is_english(text: str) -> bool:
    words = _WORD.findall(text)
    if len(words) < 8:
        return False
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    letters = sum(len(w) for w in words)
    return ascii_chars >= 0.97 * len(text) and letters >= 0.55 * len(text)


def collect_docstrings(max_bytes: int) -> Iterator[List[str]]:
    """Yields deduplicated docstring documents (lists of paragraphs) up to ``max_bytes`` of text.

    The size counted is that of the written corpus: UTF-8 bytes of each line
    plus newlines, and a blank line after each document.
    """
    readers = [_python_files(root) for _, root in corpus_roots()]
    seen = set()
    total = 0
    while readers:
        for reader in list(readers):
            path = next(reader, None)
            if path is None:
                readers.remove(reader)
                continue
            for doc in _docstrings(path):
                paragraphs = _paragraphs(doc)
                text = "\n".join(paragraphs)
                if not paragraphs or not _is_english(text):
                    continue
                digest = hashlib.sha1(text.lower().encode("utf-8")).digest()
                if digest in seen:
                    continue
                size = len(text.encode("utf-8")) + 2
                if total + size > max_bytes:
                    return
                seen.add(digest)
                total += size
                yield paragraphs


def builtin_corpus_path(cache_dir: str, max_mb: float = BUILTIN_CORPUS_MB) -> str:
    """Where :func:`builtin_corpus` keeps the corpus of ``max_mb`` MB (whether built or not)."""
    return os.path.join(cache_dir, f"builtin-corpus-v{_CORPUS_VERSION}-{max_mb:g}mb.txt")


def builtin_corpus(cache_dir: str, max_mb: float = BUILTIN_CORPUS_MB) -> str:
    """Builds (once) and returns the path of the built-in corpus text file.

    Args:
        cache_dir: directory for the cached corpus; created if needed.
        max_mb: cap on the corpus size in megabytes (10^6 bytes), > 0.

    Returns:
        Path of ``builtin-corpus-<MB>mb.txt`` in ``cache_dir``, in the BERT format.

    Raises:
        ValueError: ``max_mb`` is not positive, or nothing was found to read.
    """
    if not max_mb > 0:
        raise ValueError(f"max_mb must be > 0, got {max_mb!r}")
    path = builtin_corpus_path(cache_dir, max_mb)
    if os.path.exists(path):
        return path
    os.makedirs(cache_dir, exist_ok=True)
    logger.info("Building the built-in corpus (%g MB of English docstrings) at %s", max_mb, path)
    tmp = f"{path}.tmp-{os.getpid()}"
    count = 0
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for paragraphs in collect_docstrings(int(max_mb * 1e6)):
                f.write("\n".join(paragraphs))
                f.write("\n\n")
                count += 1
        if count == 0:
            raise ValueError("found no English docstrings for the built-in corpus; pass text files instead")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    logger.info("Built-in corpus: %d documents, %.2f MB at %s", count, os.path.getsize(path) / 1e6, path)
    return path
