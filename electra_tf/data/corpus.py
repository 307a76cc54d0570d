"""Text sources for vocabulary and pretraining data.

A *source* is a string naming where documents come from:

* a plain text file in the BERT/ELECTRA format: one sentence or paragraph per
  line, a blank line between documents;
* a ``.jsonl`` file with one JSON object per line and the document in its
  ``text`` field (paragraphs separated by newlines);
* ``tfds:NAME[:SPLIT]``, a TensorFlow Datasets dataset read example by example
  (streamed, never loaded whole), e.g. ``tfds:wikipedia/20230601.en:train``;
* any of these files on a filesystem TensorFlow knows (``gs://bucket/corpus.txt``,
  ``s3://``/``hdfs://`` with tensorflow-io), read through ``tf.io.gfile``;
* ``builtin`` or ``builtin:MB``: the built-in corpus of English docstrings
  (see :mod:`electra_tf.data.docstrings`), cached under
  ``$ELECTRA_TF_DATA_DIR`` (default ``tfrecords/``).

Every source yields documents as lists of non-empty lines. Inputs are checked
strictly: a missing or empty file, a file that is not UTF-8 (the error names
the line), or a JSONL line without text raises :class:`CorpusError`.

Example:

>>> for doc in iter_documents("corpus.txt"):
...     print(len(doc), "lines")
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from typing import Iterable, Iterator, List, Optional, Tuple

from electra_tf.data.docstrings import BUILTIN_CORPUS_MB, builtin_corpus

__all__ = [
    "CorpusError",
    "iter_documents",
    "builtin_corpus",
    "check_sources",
    "expand_sources",
    "source_size",
    "default_data_dir",
    "parse_tfds_source",
    "is_remote",
]

logger = logging.getLogger(__name__)

_VERSION = re.compile(r"^\d+(\.\d+)*$|^\d+\.\d+\.[\d*]+$")


class CorpusError(ValueError):
    """A text source is missing, empty, not UTF-8 or malformed."""


def default_data_dir() -> str:
    """Where the built-in corpus is cached: ``$ELECTRA_TF_DATA_DIR`` or ``tfrecords``."""
    return os.environ.get("ELECTRA_TF_DATA_DIR", "tfrecords")


def parse_tfds_source(source: str) -> Tuple[str, str]:
    """Splits ``tfds:NAME[:SPLIT]`` into ``(NAME, SPLIT)``; the split defaults to ``train``.

    A trailing ``:1.2.0`` is read as a version that belongs to the name.
    """
    body = source[len("tfds:"):]
    if not body:
        raise CorpusError(f"a TFDS source must look like tfds:NAME[:SPLIT], got {source!r}")
    name, _, split = body.rpartition(":")
    if not name or _VERSION.match(split):
        return body, "train"
    return name, split


def _builtin_mb(source: str) -> float:
    _, _, size = source.partition(":")
    if not size:
        return BUILTIN_CORPUS_MB
    try:
        mb = float(size)
    except ValueError:
        mb = -1.0
    if mb <= 0:
        raise CorpusError(f"the built-in corpus size must be a positive number of MB, as in builtin:4, got {source!r}")
    return mb


def is_remote(path: str) -> bool:
    """Whether a path names a file on a filesystem other than the local one (``gs://...``)."""
    return "://" in path


def _remote_stat(source: str) -> Optional[int]:
    """The size of a remote file, or None when it does not exist (or is a directory)."""
    import tensorflow as tf

    if not tf.io.gfile.exists(source) or tf.io.gfile.isdir(source):
        return None
    return tf.io.gfile.stat(source).length


def _is_special(source: str) -> bool:
    return source.startswith("tfds:") or source == "builtin" or source.startswith("builtin:")


def expand_sources(sources: Iterable[str]) -> List[str]:
    """Expands glob patterns (``data/*.txt``) in a list of sources, keeping order.

    Raises:
        CorpusError: if no source is given or a pattern matches no file.
    """
    out: List[str] = []
    for source in sources:
        if not _is_special(source) and any(ch in source for ch in "*?["):
            if is_remote(source):
                import tensorflow as tf

                matches = sorted(tf.io.gfile.glob(source))
            else:
                matches = sorted(glob.glob(source))
            if not matches:
                raise CorpusError(f"input pattern {source!r} matches no file")
            out.extend(matches)
        else:
            out.append(source)
    if not out:
        raise CorpusError("no input given: pass text files, .jsonl files, tfds:NAME[:SPLIT] or builtin")
    return out


def check_sources(sources: Iterable[str]) -> List[str]:
    """Checks that every file source exists and is not empty, before any work starts.

    Returns:
        The expanded list of sources.

    Raises:
        CorpusError: naming the first missing, unreadable or empty file.
    """
    expanded = expand_sources(sources)
    for source in expanded:
        if source.startswith("tfds:"):
            parse_tfds_source(source)
        elif source == "builtin" or source.startswith("builtin:"):
            _builtin_mb(source)
        elif is_remote(source):
            size = _remote_stat(source)
            if size is None:
                raise CorpusError(f"input file {source} does not exist (accepted: a text file, a .jsonl file, "
                                  "tfds:NAME[:SPLIT] or builtin)")
            if size == 0:
                raise CorpusError(f"input file {source} is empty")
        elif not os.path.exists(source):
            raise CorpusError(f"input file {source} does not exist (accepted: a text file, a .jsonl file, "
                              "tfds:NAME[:SPLIT] or builtin)")
        elif not os.path.isfile(source):
            raise CorpusError(f"input {source} is not a file")
        elif os.path.getsize(source) == 0:
            raise CorpusError(f"input file {source} is empty")
    return expanded


def source_size(source: str) -> Optional[int]:
    """The size in bytes of a file source, or None when unknown (TFDS)."""
    if source.startswith("tfds:"):
        return None
    if source == "builtin" or source.startswith("builtin:"):
        path = builtin_corpus(default_data_dir(), _builtin_mb(source))
        return os.path.getsize(path)
    if is_remote(source):
        return _remote_stat(source)
    return os.path.getsize(source)


def iter_documents(source: str) -> Iterator[List[str]]:
    """Yields the documents of one source, each a list of non-empty lines.

    Args:
        source: a text file path, a ``.jsonl`` path, ``tfds:NAME[:SPLIT]``,
            ``builtin`` or ``builtin:MB``.

    Raises:
        CorpusError: the source is missing, empty, not UTF-8 or malformed; the
            message names the file (and line where one applies).
    """
    if source.startswith("tfds:"):
        yield from _iter_tfds(source)
        return
    if source == "builtin" or source.startswith("builtin:"):
        path = builtin_corpus(default_data_dir(), _builtin_mb(source))
        yield from _iter_text_file(path)
        return
    check_sources([source])
    if source.endswith(".jsonl"):
        yield from _iter_jsonl(source)
    else:
        yield from _iter_text_file(source)


def _iter_lines(path: str) -> Iterator[Tuple[int, str]]:
    """Yields ``(line_number, text)`` with strict UTF-8 decoding."""
    if is_remote(path):
        import tensorflow as tf

        opened = tf.io.gfile.GFile(path, "rb")
    else:
        opened = open(path, "rb")
    with opened as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CorpusError(f"{path}, line {number}: not valid UTF-8 ({exc.reason} at byte "
                                  f"{exc.start} of the line); convert the file to UTF-8") from None


def _iter_text_file(path: str) -> Iterator[List[str]]:
    doc: List[str] = []
    found = False
    for _, line in _iter_lines(path):
        line = line.strip()
        if line:
            doc.append(line)
        elif doc:
            found = True
            yield doc
            doc = []
    if doc:
        found = True
        yield doc
    if not found:
        raise CorpusError(f"input file {path} holds no text (only blank lines)")


def _split_text(text: str) -> List[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _iter_jsonl(path: str) -> Iterator[List[str]]:
    found = False
    for number, line in _iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path}, line {number}: not valid JSON ({exc.msg})") from None
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise CorpusError(f"{path}, line {number}: expected a JSON object with a string \"text\" field, "
                              f"got {line.strip()[:80]!r}")
        doc = _split_text(text)
        if doc:
            found = True
            yield doc
    if not found:
        raise CorpusError(f"input file {path} holds no text")


def _text_feature(features, name: str) -> str:
    import tensorflow_datasets as tfds

    texts = [key for key, feature in features.items() if isinstance(feature, tfds.features.Text)]
    if "text" in texts:
        return "text"
    if not texts:
        raise CorpusError(f"TFDS dataset {name} has no text feature (features: {', '.join(features)})")
    return texts[0]


def _iter_tfds(source: str) -> Iterator[List[str]]:
    """Streams a TFDS split; the dataset must be prepared or preparable locally."""
    import tensorflow_datasets as tfds

    name, split = parse_tfds_source(source)
    try:
        builder = tfds.builder(name)
        builder.download_and_prepare()
    except Exception as exc:  # tfds raises many types: unknown name, no network, ...
        raise CorpusError(f"cannot open TFDS dataset {name!r} ({source}): {exc}") from exc
    key = _text_feature(builder.info.features, name)
    logger.info("Streaming TFDS %s split %s, feature %r", name, split, key)
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except Exception as exc:
        splits = ", ".join(builder.info.splits) or "none prepared"
        raise CorpusError(f"cannot read split {split!r} of TFDS dataset {name} (splits: {splits}): {exc}") from exc
    for example in tfds.as_numpy(ds):
        doc = _split_text(example[key].decode("utf-8", errors="replace"))
        if doc:
            yield doc
