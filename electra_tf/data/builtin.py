"""The data a run uses when it is given none: built-in corpus, vocabulary and TFRecords.

:func:`ensure_builtin_data` builds, under ``root``, each of these only if it
is absent, and returns the data dir::

    ROOT/builtin-corpus-v1-4mb.txt           the corpus (docstrings, BERT format)
    ROOT/builtin-4mb-v4096.model / .vocab    the SentencePiece vocabulary
    ROOT/builtin-4mb-v4096-s64/              the data dir (shards, manifest, vocab.model)

A data dir counts as built when its manifest is complete and matches the
request; a build holds an exclusive lock on ``ROOT/.builtin.lock`` so that two
processes (e.g. two workers of a multi-worker run) never build it twice.

Example:

>>> data_dir = ensure_builtin_data("tfrecords", vocab_size=4096, max_seq_length=64)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from typing import Iterator

from electra_tf.data.docstrings import builtin_corpus
from electra_tf.data.manifest import DataError, load_manifest
from electra_tf.data.vocab import train_vocab
from electra_tf.data.writer import write_pretraining_data

__all__ = ["ensure_builtin_data", "builtin_data_dir"]

logger = logging.getLogger(__name__)


def builtin_data_dir(root: str, vocab_size: int, max_seq_length: int, corpus_mb: float = 4.0) -> str:
    """Where :func:`ensure_builtin_data` puts the data dir for these settings."""
    return os.path.join(root, f"builtin-{corpus_mb:g}mb-v{vocab_size}-s{max_seq_length}")


@contextlib.contextmanager
def _locked(root: str) -> Iterator[None]:
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, ".builtin.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _is_built(data_dir: str, vocab_size: int, max_seq_length: int, eval_fraction: float, seed: int) -> bool:
    try:
        manifest = load_manifest(data_dir)
    except DataError:
        return False
    wanted = {"vocab_size": vocab_size, "max_seq_length": max_seq_length, "eval_fraction": eval_fraction,
              "seed": seed}
    return all(manifest.get(key) == value for key, value in wanted.items())


def ensure_builtin_data(
    root: str,
    vocab_size: int,
    max_seq_length: int,
    corpus_mb: float = 4.0,
    eval_fraction: float = 0.02,
    seed: int = 0,
    workers: int = 1,
) -> str:
    """Builds the built-in corpus, its vocabulary and TFRecords where absent; returns the data dir.

    Args:
        root: directory for everything built (``data.builtin_dir``).
        vocab_size: SentencePiece pieces; the vocabulary has exactly this many.
        max_seq_length: sequence length of the TFRecords.
        corpus_mb: size cap of the corpus in MB (``data.builtin_corpus_mb``).
        eval_fraction: fraction of documents held out for evaluation.
        seed: seed of the vocabulary sample and of the packing.
        workers: tokenizer processes.

    Returns:
        The data dir, e.g. ``ROOT/builtin-4mb-v4096-s64``.

    Raises:
        electra_tf.data.vocab.VocabError: the corpus is too small for ``vocab_size``
            (raise ``corpus_mb`` or lower the vocabulary size).
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 8:
        raise ValueError(f"the built-in data needs a vocabulary size: model.vocab_size must be an integer >= 8 "
                         f"when data.path is unset, got {vocab_size!r}")
    data_dir = builtin_data_dir(root, vocab_size, max_seq_length, corpus_mb)
    if _is_built(data_dir, vocab_size, max_seq_length, eval_fraction, seed):
        logger.info("Using the built-in data at %s", data_dir)
        return data_dir
    with _locked(root):
        if _is_built(data_dir, vocab_size, max_seq_length, eval_fraction, seed):
            return data_dir
        start = time.time()
        corpus = builtin_corpus(root, corpus_mb)
        prefix = os.path.join(root, f"builtin-{corpus_mb:g}mb-v{vocab_size}")
        vocab = prefix + ".model"
        if not os.path.exists(vocab):
            train_vocab([corpus], vocab_size, prefix, seed=seed, max_sentences=300_000)
        else:
            logger.info("Using the vocabulary %s", vocab)
        manifest = write_pretraining_data([corpus], vocab, data_dir, max_seq_length, workers=workers,
                                          eval_fraction=eval_fraction, seed=seed)
        logger.info("Built-in data ready in %.0f s: corpus %s, vocabulary %s, %d train / %d eval sequences in %s",
                    time.time() - start, corpus, vocab, manifest["examples"]["train"],
                    manifest["examples"]["eval"], data_dir)
    return data_dir
