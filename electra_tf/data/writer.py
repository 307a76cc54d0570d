"""Writing a self-contained TFRecord data dir from text sources.

:func:`write_pretraining_data` reads documents from the sources in order, cuts
them into chunks of about ``chunk_bytes`` of text, and has worker processes
tokenize and pack each chunk (:mod:`electra_tf.data.packing`); results are
consumed in chunk order, so the files are the same whatever the number of
workers, and the same on every re-run.

Nothing is visible half-written:

* the whole build happens in a hidden staging dir beside ``output_dir``
  (``.NAME.partial-PID``), renamed to ``output_dir`` once complete;
* inside it, each shard is written as ``*.tfrecord.partial`` and renamed when
  closed, and ``manifest.json`` is written last;
* on an error the staging dir is removed; a staging dir left by a killed
  writer is removed by the next build.

Example:

>>> manifest = write_pretraining_data(["corpus.txt"], "vocab.model", "tfrecords/mydata",
...                                   max_seq_length=128, workers=2)
>>> manifest["examples"]["train"]
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from tqdm import tqdm

from electra_tf.data import packing
from electra_tf.data.corpus import check_sources, iter_documents, source_size
from electra_tf.data.manifest import FORMAT, MANIFEST, VOCAB_MODEL, DataError, shard_name, write_manifest
from electra_tf.data.vocab import SENTENCEPIECE_SPECIALS, file_sha256
from electra_tf.data.vocabulary import load_vocabulary, vocab_file_name, vocabulary_fields

__all__ = ["write_pretraining_data", "build_manifest", "check_examples", "SPLITS"]

logger = logging.getLogger(__name__)

SPLITS = ("train", "eval")
_PARTIAL = ".partial"


def _check_args(max_seq_length: int, workers: int, eval_fraction: float, short_seq_prob: float,
                examples_per_shard: int) -> None:
    checks = [
        (isinstance(max_seq_length, int) and max_seq_length >= 8, "max_seq_length", max_seq_length, "an integer >= 8"),
        (isinstance(workers, int) and workers >= 1, "workers", workers, "an integer >= 1"),
        (0.0 <= eval_fraction < 1.0, "eval_fraction", eval_fraction, "in [0, 1)"),
        (0.0 <= short_seq_prob <= 1.0, "short_seq_prob", short_seq_prob, "in [0, 1]"),
        (isinstance(examples_per_shard, int) and examples_per_shard >= 1, "examples_per_shard",
         examples_per_shard, "an integer >= 1"),
    ]
    for ok, name, value, accepted in checks:
        if not ok:
            raise ValueError(f"{name} must be {accepted}, got {value!r}")


def _is_ours(name: str) -> bool:
    if name in (MANIFEST, VOCAB_MODEL, vocab_file_name("wordpiece")):
        return True
    return name.endswith(".tfrecord") and name.startswith(SPLITS)


def _check_output_dir(output_dir: str) -> None:
    """Refuses an output path that is a file or a dir holding files a build did not make."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise DataError(f"output {output_dir} exists and is not a directory")
    if os.path.isdir(output_dir):
        foreign = sorted(name for name in os.listdir(output_dir) if not _is_ours(name))
        if foreign:
            raise DataError(f"output dir {output_dir} holds files that are not from a data build "
                            f"({', '.join(foreign[:3])}); choose a new or empty directory")


def _stage_dir(output_dir: str) -> str:
    """Creates the staging dir, removing stale ones left by dead writers."""
    parent, base = os.path.split(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    prefix = f".{base}{_PARTIAL}-"
    for name in os.listdir(parent):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            try:
                os.kill(int(name[len(prefix):]), 0)
            except ProcessLookupError:
                logger.info("Removing %s, left by an interrupted build", os.path.join(parent, name))
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
            except PermissionError:
                pass
    stage = os.path.join(parent, f"{prefix}{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    return stage


def _publish(stage: str, output_dir: str) -> None:
    """Moves the finished staging dir to ``output_dir``, replacing a previous build."""
    output_dir = os.path.abspath(output_dir)
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        _check_output_dir(output_dir)
        old = f"{stage}.old"
        os.rename(output_dir, old)
        os.rename(stage, output_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if os.path.isdir(output_dir):
            os.rmdir(output_dir)
        os.rename(stage, output_dir)


class _SplitWriter:
    """Writes one split's records into shards of ``examples_per_shard``, each renamed when closed."""

    def __init__(self, directory: str, split: str, examples_per_shard: int):
        self.directory, self.split, self.per_shard = directory, split, examples_per_shard
        self.closed: List[Tuple[str, int]] = []
        self._writer = None
        self._count = 0

    def _path(self, index: int) -> str:
        return os.path.join(self.directory, f"{self.split}-{index:05d}.tfrecord")

    def write(self, records: Sequence[bytes]) -> None:
        import tensorflow as tf

        for record in records:
            if self._writer is None:
                self._writer = tf.io.TFRecordWriter(self._path(len(self.closed)) + _PARTIAL)
            self._writer.write(record)
            self._count += 1
            if self._count == self.per_shard:
                self._close()

    def _close(self) -> None:
        self._writer.close()
        path = self._path(len(self.closed))
        os.rename(path + _PARTIAL, path)
        self.closed.append((path, self._count))
        self._writer, self._count = None, 0

    def finish(self) -> List[Dict[str, Any]]:
        """Closes the last shard and gives the shards their final ``-of-N`` names."""
        if self._writer is not None:
            self._close()
        shards = []
        for index, (path, count) in enumerate(self.closed):
            name = shard_name(self.split, index, len(self.closed))
            final = os.path.join(self.directory, name)
            os.rename(path, final)
            shards.append({"file": name, "examples": count, "bytes": os.path.getsize(final),
                           "sha256": file_sha256(final)})
        return shards


def _chunks(sources: Sequence[str], chunk_bytes: int, params: Tuple) -> Iterator[Tuple]:
    """Tasks for :func:`packing.encode_chunk`: consecutive documents of about ``chunk_bytes``."""
    docs: List[List[str]] = []
    size = chunk = first = 0
    for source in sources:
        for doc in iter_documents(source):
            docs.append(doc)
            size += sum(len(line) + 1 for line in doc) + 1
            if size >= chunk_bytes:
                yield (chunk, first, docs, *params)
                chunk, first, docs, size = chunk + 1, first + len(docs), [], 0
    if docs:
        yield (chunk, first, docs, *params)


def _results(tasks: Iterator[Tuple], workers: int, vocab) -> Iterator[Dict[str, Any]]:
    """Runs ``encode_chunk`` over tasks in order, in-process or on a pool with bounded look-ahead."""
    vocab_path = vocab.path
    if workers == 1:
        # This build's own vocabulary, not the process-wide one of init_worker (which is for pool workers): a
        # build in this process must neither use nor leave behind another build's vocabulary.
        processor = vocab.processor if vocab.kind == "sentencepiece" else vocab
        for task in tasks:
            yield packing.encode_chunk(task, processor=processor)
        return
    # spawn, not fork: the parent may hold TensorFlow's threads and locks. An executor (unlike
    # multiprocessing.Pool) raises BrokenProcessPool if a worker dies instead of waiting forever.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=packing.init_worker,
                                                initargs=(vocab_path, None, vocab.lower_case)) as pool:
        pending: collections.deque = collections.deque()
        try:
            for task in tasks:
                pending.append(pool.submit(packing.encode_chunk, task))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool as exc:
            raise RuntimeError(f"a tokenizer worker process died ({exc}); if memory is short, or when Python "
                               "cannot start worker processes (code read from stdin), use workers=1") from exc
        finally:
            for future in pending:
                future.cancel()


def check_examples(shards: Dict[str, List[Dict[str, Any]]], stats: Dict[str, Dict[str, int]],
                   sources: Sequence[str], eval_fraction: float) -> Dict[str, int]:
    """Examples per split; an error when there is no training sequence, a warning when there is no eval one."""
    examples = {split: sum(s["examples"] for s in shards[split]) for split in SPLITS}
    if examples["train"] == 0:
        raise DataError(f"no training sequences were made from {', '.join(sources)}")
    if eval_fraction > 0 and examples["eval"] == 0:
        logger.warning("No document was held out for eval (%d documents, eval_fraction=%g)",
                       stats["train"]["documents"], eval_fraction)
    return examples


def build_manifest(inputs: Sequence[str], vocab_sha256: str, vocab_size: int, max_seq_length: int,
                   shards: Dict[str, List[Dict[str, Any]]], stats: Dict[str, Dict[str, int]], eval_fraction: float,
                   short_seq_prob: float, seed: int, examples_per_shard: int, chunk_bytes: int,
                   vocabulary: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The manifest of a data dir (the local and the Beam builder write the same one).

    ``vocabulary`` is :func:`~electra_tf.data.vocabulary.vocabulary_fields` of the
    vocabulary; None means a SentencePiece model (special ids 0-4).
    """
    examples = {split: sum(s["examples"] for s in shards[split]) for split in SPLITS}
    if vocabulary is None:
        vocabulary = {"vocab_kind": "sentencepiece", "special_ids": SENTENCEPIECE_SPECIALS.as_dict()}
    return {
        "format": FORMAT, "feature": packing.FEATURE, "max_seq_length": max_seq_length,
        "vocab_size": vocab_size, "vocab_sha256": vocab_sha256,
        "vocab_model": vocab_file_name(vocabulary["vocab_kind"]), **vocabulary,
        "source": list(inputs), "splits": [s for s in SPLITS if examples[s] > 0], "examples": examples,
        "documents": {s: stats[s]["documents"] for s in SPLITS},
        "tokens": {s: stats[s]["tokens"] for s in SPLITS},
        "text_bytes": {s: stats[s]["text_bytes"] for s in SPLITS},
        "shards": shards, "eval_fraction": eval_fraction, "short_seq_prob": short_seq_prob, "seed": seed,
        "examples_per_shard": examples_per_shard, "chunk_bytes": chunk_bytes,
    }


def write_pretraining_data(
    inputs: Sequence[str],
    vocab_path: str,
    output_dir: str,
    max_seq_length: int,
    workers: int = 1,
    eval_fraction: float = 0.02,
    short_seq_prob: float = 0.1,
    seed: int = 0,
    examples_per_shard: int = 10_000,
    chunk_bytes: int = 256 * 1024,
    progress: bool = True,
    lower_case: Optional[bool] = None,
) -> Dict[str, Any]:
    """Tokenizes and packs text sources into a self-contained TFRecord data dir.

    Args:
        inputs: text files, ``.jsonl`` files, ``tfds:NAME[:SPLIT]`` or ``builtin``; globs are expanded.
        vocab_path: a SentencePiece model with the fixed special ids (copied as
            ``vocab.model``) or a WordPiece ``vocab.txt`` (copied as ``vocab.txt``;
            special ids read from it and recorded in the manifest).
        output_dir: the data dir to create (or replace, if it holds a previous build).
        max_seq_length: length of every sequence, ``[CLS]`` and ``[SEP]`` included.
        workers: tokenizer processes; 1 works in-process.
        eval_fraction: fraction of documents held out as the eval split.
        short_seq_prob: probability that a sequence gets a shorter random target length.
        seed: seed of the short-length draws.
        examples_per_shard: sequences per shard file.
        chunk_bytes: text per unit of work (changing it changes the short-length draws).
        progress: show a tqdm progress bar (on a terminal).
        lower_case: WordPiece only: lower-case text before tokenizing; None
            decides from the vocabulary (see :mod:`electra_tf.data.wordpiece`).

    Returns:
        The manifest, as written to ``output_dir/manifest.json``.

    Raises:
        ValueError: a bad argument value.
        electra_tf.data.corpus.CorpusError: an input is missing, empty or not UTF-8.
        DataError: the output dir holds foreign files, or no sequence was produced.
    """
    _check_args(max_seq_length, workers, eval_fraction, short_seq_prob, examples_per_shard)
    sources = check_sources(inputs)
    vocab = load_vocabulary(vocab_path, lower_case=lower_case)
    if vocab.kind == "wordpiece":
        logger.info("WordPiece vocabulary, %d tokens, special ids %s; %s", vocab.size, vocab.specials.as_dict(),
                    vocab.describe_casing())
    _check_output_dir(output_dir)
    sizes = [source_size(s) for s in sources]
    total = None if None in sizes else sum(sizes)
    stage = _stage_dir(output_dir)
    start = time.time()
    try:
        writers = {split: _SplitWriter(stage, split, examples_per_shard) for split in SPLITS}
        stats = {split: {"documents": 0, "tokens": 0, "text_bytes": 0} for split in SPLITS}
        tasks = _chunks(sources, chunk_bytes, (max_seq_length, short_seq_prob, eval_fraction, seed))
        bar = tqdm(total=total, unit="B", unit_scale=True, desc="tokenizing", disable=None if progress else True)
        with bar, contextlib.closing(_results(tasks, workers, vocab)) as results:
            for result in results:
                for split in SPLITS:
                    writers[split].write(result[split])
                    for key, value in result["stats"][split].items():
                        stats[split][key] += value
                bar.update(result["stats"]["train"]["text_bytes"] + result["stats"]["eval"]["text_bytes"])
        shards = {split: writers[split].finish() for split in SPLITS}
        examples = check_examples(shards, stats, sources, eval_fraction)
        shutil.copyfile(vocab_path, os.path.join(stage, vocab_file_name(vocab.kind)))
        manifest = build_manifest(inputs, file_sha256(vocab_path), vocab.size, max_seq_length, shards, stats,
                                  eval_fraction, short_seq_prob, seed, examples_per_shard, chunk_bytes,
                                  vocabulary=vocabulary_fields(vocab))
        write_manifest(stage, manifest)
        _publish(stage, output_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    seconds = time.time() - start
    text_mb = sum(stats[s]["text_bytes"] for s in SPLITS) / 1e6
    logger.info("Wrote %d train and %d eval sequences of %d to %s in %.1f s (%.2f MB of text/s, %d workers)",
                examples["train"], examples["eval"], max_seq_length, output_dir, seconds,
                text_mb / max(seconds, 1e-9), workers)
    return manifest
