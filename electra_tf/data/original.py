"""google-research/electra's pretraining TFRecords, read as a data dir.

The original's ``build_pretraining_dataset.py`` writes
``pretrain_data.tfrecord-I-of-N`` files (no extension after the index, no
manifest) of ``tf.train.Example`` with three int64 features of the same fixed
length: ``input_ids``, ``input_mask`` and ``segment_ids``. Its README's
layout is ``DATA_DIR/vocab.txt`` beside ``DATA_DIR/pretrain_tfrecords/``.

How such a dir is recognised (:func:`original_manifest`), when ``data.path``
has no ``manifest.json``:

1. ``data.path`` holds ``pretrain_data.tfrecord-*`` files, or a
   ``pretrain_tfrecords/`` subdir that does (so ``data.path`` may be the
   original's ``--data-dir`` or its ``pretrain_tfrecords/``);
2. the first record of the first file parses as a ``tf.train.Example`` with
   int64 ``input_ids``, ``input_mask`` and ``segment_ids`` of one length,
   which becomes ``max_seq_length``;
3. the vocabulary is the ``vocab.txt`` beside the files, else the one in
   their parent dir (the original's layout); it must have the WordPiece
   special tokens.

The manifest made in memory has a ``train`` split only (the original holds no
data out), the vocabulary's kind, size, sha256 and special ids, and each
file's size (so a file that changes size while it is read is reported). The
example count is not known without reading every file and is left out.
``input_mask`` and ``segment_ids`` are not read: masking derives the mask from
``[PAD]``, and pretraining here uses one segment (token type 0).
"""

from __future__ import annotations

import glob
import os
from typing import Any, Dict, List, Optional

from electra_tf.data.errors import DataError
from electra_tf.data.vocab import VocabError, file_sha256

__all__ = ["original_manifest", "original_files", "ORIGINAL_FORMAT", "ORIGINAL_PATTERN", "ORIGINAL_FEATURES"]

ORIGINAL_FORMAT = "google-research/electra.build_pretraining_dataset"
ORIGINAL_PATTERN = "pretrain_data.tfrecord-*"
ORIGINAL_FEATURES = ("input_ids", "input_mask", "segment_ids")
SUBDIR = "pretrain_tfrecords"


def original_files(data_dir: str) -> List[str]:
    """The original's TFRecord files in ``data_dir`` or its ``pretrain_tfrecords/``, sorted; empty if none."""
    for directory in (data_dir, os.path.join(data_dir, SUBDIR)):
        files = sorted(path for path in glob.glob(os.path.join(directory, ORIGINAL_PATTERN))
                       if os.path.isfile(path) and not path.endswith((".partial", ".tmp")))
        if files:
            return files
    return []


def _sequence_length(path: str) -> int:
    """The length of the first record's features, checking the original's three int64 features."""
    import tensorflow as tf

    try:
        first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    except tf.errors.OpError as exc:
        raise DataError(f"{path} looks like google-research/electra's pretraining data by its name but cannot be "
                        f"read as a TFRecord file: {exc.message}") from None
    if first is None:
        raise DataError(f"{path} holds no records; google-research/electra's data files each hold examples")
    example = tf.train.Example()
    try:
        example.ParseFromString(first.numpy())
    except Exception as exc:  # protobuf's DecodeError
        raise DataError(f"the first record of {path} is not a tf.train.Example ({exc})") from None
    features = example.features.feature
    lengths = {}
    for key in ORIGINAL_FEATURES:
        if key not in features or features[key].WhichOneof("kind") != "int64_list":
            found = ", ".join(f"{k} ({features[k].WhichOneof('kind')})" for k in sorted(features)) or "none"
            raise DataError(f"{path} is named like google-research/electra's pretraining data, but its first record "
                            f"has no int64 feature {key!r} (it needs {', '.join(ORIGINAL_FEATURES)}; found: {found})")
        lengths[key] = len(features[key].int64_list.value)
    if len(set(lengths.values())) != 1 or lengths["input_ids"] < 3:
        raise DataError(f"the first record of {path} has features of lengths {lengths}; google-research/electra's "
                        "data has input_ids, input_mask and segment_ids of one fixed length")
    return lengths["input_ids"]


def original_manifest(data_dir: str) -> Optional[Dict[str, Any]]:
    """A manifest for google-research/electra's data in ``data_dir``; None when no such files are there.

    Raises:
        DataError: the files are there but their first
            record is not the original's, or no usable ``vocab.txt`` is beside them.
    """
    from electra_tf.data.vocabulary import vocabulary_fields
    from electra_tf.data.wordpiece import load_wordpiece

    files = original_files(data_dir)
    if not files:
        return None
    seq_length = _sequence_length(files[0])
    shard_dir = os.path.dirname(files[0])
    candidates = [os.path.join(shard_dir, "vocab.txt"), os.path.join(os.path.dirname(os.path.abspath(shard_dir)),
                                                                      "vocab.txt")]
    vocab_file = next((path for path in candidates if os.path.isfile(path)), None)
    if vocab_file is None:
        raise DataError(f"{data_dir} holds google-research/electra's pretraining data but no vocab.txt was found "
                        f"(looked at {' and '.join(candidates)}); put the vocab.txt the data was built with beside "
                        "the files or in their parent dir")
    try:
        vocab = load_wordpiece(vocab_file)
    except VocabError as exc:
        raise DataError(f"the vocabulary of {data_dir} cannot be used: {exc}") from None
    data_dir_abs = os.path.abspath(data_dir)
    shards = [{"file": os.path.relpath(path, data_dir_abs), "bytes": os.path.getsize(path)} for path in files]
    return {
        "format": ORIGINAL_FORMAT, "feature": "input_ids", "max_seq_length": seq_length,
        "vocab_size": vocab.size, "vocab_sha256": file_sha256(vocab_file),
        "vocab_model": os.path.relpath(os.path.abspath(vocab_file), data_dir_abs), **vocabulary_fields(vocab),
        "source": [data_dir], "splits": ["train"], "examples": {}, "shards": {"train": shards},
    }
