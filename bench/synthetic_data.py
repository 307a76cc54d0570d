"""A synthetic TFRecord data dir for the benchmark: random ids, a real manifest, no vocabulary.

Throughput does not depend on which ids a sequence holds, only on its length
and on how many positions are masked, so the benchmark does not need a trained
SentencePiece vocabulary: it writes sequences of uniformly random ids (above
the special ids) framed as ``[CLS] ... [SEP]``, in the shard format and with
the ``manifest.json`` of :mod:`electra_tf.data.manifest`, which
:func:`electra_tf.data.tfrecords.pretraining_dataset` and the trainer read like
any other data dir. Every sequence is full length (as packed pretraining data
nearly always is), so each one has ``round(mask_prob * seq)`` masked positions.

There is no ``vocab.model``: the dir is for training throughput only (an
export or a vocabulary check would need one).

Example:

>>> manifest = write_synthetic_data("/tmp/synthetic-v30522-s128", vocab_size=30522, max_seq_length=128)
>>> manifest["examples"]["train"]
2048
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Dict

import numpy as np

from electra_tf.data.manifest import FORMAT, load_manifest, shard_name, write_manifest
from electra_tf.data.packing import FEATURE, serialize_example
from electra_tf.data.vocab import CLS_ID, MASK_ID, SEP_ID, file_sha256

__all__ = ["write_synthetic_data", "synthetic_data_dir", "SOURCE"]

SOURCE = "synthetic:uniform"
FIRST_ORDINARY_ID = MASK_ID + 1


def write_synthetic_data(output_dir: str, vocab_size: int, max_seq_length: int, examples: int = 2048,
                         shards: int = 2, seed: int = 0) -> Dict[str, Any]:
    """Writes ``examples`` random full-length sequences as a train split; returns the manifest.

    Args:
        output_dir: the data dir to create; an existing one is replaced.
        vocab_size: ids are drawn uniformly from ``[FIRST_ORDINARY_ID, vocab_size)``.
        max_seq_length: length of every sequence, ``[CLS]`` and ``[SEP]`` included.
        examples: number of sequences.
        shards: number of shard files (the reader interleaves them).
        seed: seed of the ids.

    Raises:
        ValueError: a size that cannot make a sequence.
    """
    if vocab_size <= FIRST_ORDINARY_ID:
        raise ValueError(f"vocab_size must be > {FIRST_ORDINARY_ID}, got {vocab_size!r}")
    if max_seq_length < 8:
        raise ValueError(f"max_seq_length must be >= 8, got {max_seq_length!r}")
    if examples < shards or shards < 1:
        raise ValueError(f"need examples >= shards >= 1, got examples={examples!r}, shards={shards!r}")
    rng = np.random.default_rng(seed)
    body = rng.integers(FIRST_ORDINARY_ID, vocab_size, size=(examples, max_seq_length - 2))
    stage = output_dir.rstrip("/") + f".partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    import tensorflow as tf

    entries = []
    bounds = np.linspace(0, examples, shards + 1).astype(int)
    for index in range(shards):
        name = shard_name("train", index, shards)
        path = os.path.join(stage, name)
        with tf.io.TFRecordWriter(path) as writer:
            for row in body[bounds[index]:bounds[index + 1]]:
                writer.write(serialize_example([CLS_ID, *row.tolist(), SEP_ID], max_seq_length))
        entries.append({"file": name, "examples": int(bounds[index + 1] - bounds[index]),
                        "bytes": os.path.getsize(path), "sha256": file_sha256(path)})
    tokens = examples * max_seq_length
    manifest = {
        "format": FORMAT, "feature": FEATURE, "max_seq_length": max_seq_length, "vocab_size": vocab_size,
        "vocab_sha256": None, "vocab_model": None, "source": [SOURCE], "splits": ["train"],
        "examples": {"train": examples, "eval": 0}, "documents": {"train": examples, "eval": 0},
        "tokens": {"train": tokens, "eval": 0}, "text_bytes": {"train": 0, "eval": 0},
        "shards": {"train": entries, "eval": []}, "eval_fraction": 0.0, "short_seq_prob": 0.0, "seed": seed,
        "examples_per_shard": int(max(e["examples"] for e in entries)), "chunk_bytes": 0,
    }
    write_manifest(stage, manifest)
    if os.path.isdir(output_dir):
        shutil.rmtree(output_dir)
    os.rename(stage, output_dir)
    return manifest


def synthetic_data_dir(root: str, vocab_size: int, max_seq_length: int, examples: int = 2048) -> str:
    """``root/synthetic-vV-sS-nN``, written on first use and reused while its manifest matches."""
    path = os.path.join(root, f"synthetic-v{vocab_size}-s{max_seq_length}-n{examples}")
    try:
        manifest = load_manifest(path)
        ok = manifest.get("source") == [SOURCE] and all(
            os.path.getsize(os.path.join(path, s["file"])) == s["bytes"] for s in manifest["shards"]["train"])
    except (ValueError, OSError, KeyError, json.JSONDecodeError):
        ok = False
    if not ok:
        write_synthetic_data(path, vocab_size, max_seq_length, examples)
    return path
