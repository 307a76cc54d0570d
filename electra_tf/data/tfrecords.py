"""TFRecord data dirs: the writer's entry point and the masked ``tf.data`` reader.

A data dir (see :mod:`electra_tf.data.writer`) holds ``SPLIT-IIIII-of-NNNNN.tfrecord``
shards of ``tf.train.Example`` with one fixed-length int64 feature
``input_ids``, ``manifest.json`` and ``vocab.model`` (or a WordPiece ``vocab.txt``);
google-research/electra's ``pretrain_data.tfrecord-*`` dirs are read too
(:mod:`electra_tf.data.original`). :func:`pretraining_dataset`
reads one split as batches ready for the pretrainer:

shards (seeded shuffle, per-worker shard) -> interleave -> seeded shuffle ->
repeat -> ``enumerate`` -> parse and :func:`~electra_tf.data.masking.mask_sequence`
keyed by ``(seed, running example index)`` -> batch (``drop_remainder``) -> prefetch.

Because masks are keyed by the running index, the same seed gives the same
batches, every epoch gets new masks, and a plain ``iter(ds)`` saved in a
``tf.train.Checkpoint`` resumes with exactly the batches it would have given.

Example:

>>> ds = pretraining_dataset("tfrecords/builtin-v4096-s64", batch_size=32, max_seq_length=64,
...                          vocab_size=4096, max_predictions=10)
>>> batch = next(iter(ds))
>>> batch["masked_positions"].shape
TensorShape([32, 10])
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import tensorflow as tf

from electra_tf.data.manifest import (
    DataError,
    check_manifest,
    check_shard_files,
    data_special_ids,
    data_vocab_path,
    diagnose_shards,
    load_manifest,
)
from electra_tf.data.masking import MASKING_STRATEGIES, default_max_predictions, mask_sequence
from electra_tf.data.packing import FEATURE
from electra_tf.data.vocabulary import load_vocabulary
from electra_tf.data.writer import write_pretraining_data
from electra_tf.seeds import mask_stream

__all__ = [
    "pretraining_dataset", "write_pretraining_data", "load_manifest", "check_manifest", "diagnose_shards",
    "vocab_path", "DataError", "corrupt_shard_error",
]


def vocab_path(data_dir: str) -> str:
    """The vocabulary of a data dir: its ``vocab.model`` or ``vocab.txt`` (as its manifest records).

    For google-research/electra's data, the ``vocab.txt`` found beside it
    (:mod:`electra_tf.data.original`). A dir without a readable manifest gives
    ``DIR/vocab.model``, for the caller to report.
    """
    try:
        return data_vocab_path(data_dir, load_manifest(data_dir))
    except DataError:
        return os.path.join(data_dir, "vocab.model")


def corrupt_shard_error(data_dir: str, error: Exception) -> DataError:
    """Turns a ``tf.errors.DataLossError`` met while reading into an error that names the bad shards.

    Example:

    >>> try:
    ...     batch = next(iterator)
    ... except tf.errors.DataLossError as exc:
    ...     raise corrupt_shard_error(data_dir, exc) from exc
    """
    problems = diagnose_shards(data_dir, deep=True)
    if not problems:
        problems = [f"no shard of {data_dir} looks damaged now; the read failed with: {error}"]
    return DataError("; ".join(problems) + "; rebuild the data dir with scripts/build_pretraining_data.py")


def pretraining_dataset(
    data_dir: str,
    split: str = "train",
    batch_size: int = 32,
    max_seq_length: Optional[int] = None,
    mask_prob: float = 0.15,
    max_predictions: Optional[int] = None,
    mask_token_prob: float = 0.85,
    seed: int = 0,
    shuffle_buffer: int = 10_000,
    repeat: bool = True,
    shuffle: bool = True,
    input_context: Optional[tf.distribute.InputContext] = None,
    vocab_size: Optional[int] = None,
    cycle_length: int = 4,
    masking: str = "token",
) -> tf.data.Dataset:
    """Batches of masked pretraining examples from a data dir.

    Args:
        data_dir: a data dir with a complete ``manifest.json``.
        split: ``train`` or ``eval``.
        batch_size: examples per batch emitted by this pipeline (per worker
            when ``input_context`` is given: divide the global batch first).
        max_seq_length: expected sequence length; None takes the manifest's.
        mask_prob: fraction of real tokens to mask.
        max_predictions: length of the position outputs; None means
            ``int((mask_prob + 0.005) * max_seq_length)``.
        mask_token_prob: probability that a chosen position becomes ``[MASK]``.
        seed: seeds the shuffles and keys the masks.
        shuffle_buffer: examples in the shuffle buffer.
        repeat: repeat forever (training) or read the split once (evaluation).
        shuffle: shuffle shard order and examples.
        input_context: with several input pipelines, each reads its own shards
            (or, with fewer shards than pipelines, every n-th example) and
            keys its masks with its pipeline id.
        vocab_size: expected vocabulary size (``model.vocab_size``); None skips the check.
        cycle_length: shards read at once.
        masking: ``token``, ``whole_word`` or ``span``; the word strategies read
            word starts from the data dir's vocabulary (``vocab.model``: ``▁``
            begins a word; ``vocab.txt``: a ``##`` token continues one).

    The special ids (``[PAD]``, ``[CLS]``, ``[SEP]`` never masked; ``[MASK]``)
    are those the manifest records (0-4 when it records none).

    Returns:
        A dataset of dicts with static shapes ``[B, S]``: ``input_ids``,
        ``input_mask``, ``masked_input_ids`` (int32); and ``[B, P]``:
        ``masked_positions``, ``masked_ids`` (int32), ``masked_weights`` (float32).

    Raises:
        DataError: the data dir is incomplete, disagrees with ``vocab_size`` or
            ``max_seq_length``, or a shard is missing or has the wrong size
            (the message names the file).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if shuffle and shuffle_buffer < 1:
        raise ValueError(f"shuffle_buffer must be >= 1, got {shuffle_buffer!r}")
    manifest = load_manifest(data_dir)
    check_manifest(manifest, vocab_size, max_seq_length, data_dir)
    files = check_shard_files(data_dir, manifest, split)
    seq_length = int(manifest["max_seq_length"])
    if max_predictions is None:
        max_predictions = default_max_predictions(mask_prob, seq_length)
    if not 1 <= max_predictions <= seq_length:
        raise ValueError(f"max_predictions must be in [1, {seq_length}], got {max_predictions!r}")

    if masking not in MASKING_STRATEGIES:
        raise ValueError(f"data.masking must be one of {', '.join(MASKING_STRATEGIES)}, got {masking!r}")
    specials = data_special_ids(manifest, data_dir)
    word_start = None
    if masking != "token":
        vocab_file = data_vocab_path(data_dir, manifest)
        if not os.path.isfile(vocab_file):
            raise DataError(f"data.masking={masking} needs the data dir's vocabulary to find word starts, but "
                            f"{vocab_file} does not exist; use data.masking=token or rebuild the data dir")
        word_start = tf.constant(load_vocabulary(vocab_file).word_start_table(), tf.bool)

    pipelines, pipeline_id = 1, 0
    if input_context is not None:
        pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
    mask_seed = mask_stream(seed, pipelines, pipeline_id)

    shards = tf.data.Dataset.from_tensor_slices(files)
    shard_records = pipelines > 1 and len(files) < pipelines
    if pipelines > 1 and not shard_records:
        shards = shards.shard(pipelines, pipeline_id)
    if shuffle:
        shards = shards.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        shards = shards.repeat()
    ds = shards.interleave(
        tf.data.TFRecordDataset, cycle_length=max(1, min(cycle_length, len(files))), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shard_records:
        ds = ds.shard(pipelines, pipeline_id)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    spec = {FEATURE: tf.io.FixedLenFeature([seq_length], tf.int64)}

    def parse_and_mask(index: tf.Tensor, record: tf.Tensor) -> Dict[str, Any]:
        ids = tf.cast(tf.io.parse_single_example(record, spec)[FEATURE], tf.int32)
        key = tf.stack([tf.constant(mask_seed, tf.int64), index])
        return mask_sequence(ids, key, mask_prob, max_predictions, mask_token_prob, mask_id=specials.mask,
                             special_ids=specials.never_masked, strategy=masking, word_start=word_start)

    ds = ds.enumerate().map(parse_and_mask, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)
