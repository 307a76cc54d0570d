"""The ``manifest.json`` of a TFRecord data dir, and checks of a data dir against it.

A data dir is complete when its manifest exists: the writer writes it last.
The manifest records, per split, the shard files with their example counts,
byte sizes and sha256, so that a truncated, replaced or corrupt shard can be
named (:func:`check_shard_files` at open time, :func:`diagnose_shards` after a
``tf.errors.DataLossError``).

Example:

>>> manifest = load_manifest("tfrecords/builtin-v4096-s64")
>>> check_manifest(manifest, vocab_size=4096, max_seq_length=64, data_dir="tfrecords/builtin-v4096-s64")
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from electra_tf.data.errors import DataError
from electra_tf.data.vocab import SpecialIds, file_sha256

__all__ = [
    "DataError", "MANIFEST", "VOCAB_MODEL", "FORMAT", "load_manifest", "check_manifest", "write_manifest",
    "shard_name", "shard_paths", "check_shard_files", "diagnose_shards", "check_vocab_file",
    "data_vocab_path", "data_vocab_kind", "data_special_ids",
]

MANIFEST = "manifest.json"
VOCAB_MODEL = "vocab.model"
FORMAT = "electra_tf.pretraining_data.v1"
_BUILD_HINT = ("build it with scripts/build_pretraining_data.py --input ... --vocab PREFIX.model "
               "--output DIR --max_seq_length N (or leave data.path unset for the built-in corpus)")


def data_vocab_kind(manifest: Dict[str, Any]) -> str:
    """``sentencepiece`` or ``wordpiece``."""
    return manifest.get("vocab_kind", "sentencepiece")


def data_vocab_path(data_dir: str, manifest: Dict[str, Any]) -> str:
    """The vocabulary file of a data dir (``vocab.model``, ``vocab.txt``, or the original's ``vocab.txt``)."""
    return os.path.join(data_dir, manifest.get("vocab_model") or VOCAB_MODEL)


def data_special_ids(manifest: Dict[str, Any], data_dir: str = "the data dir") -> SpecialIds:
    """The special ids recorded in a manifest (0-4 when it records none)."""
    return SpecialIds.from_dict(manifest.get("special_ids"), where=f"{os.path.join(data_dir, MANIFEST)}")


def shard_name(split: str, index: int, count: int) -> str:
    """``train-00000-of-00004.tfrecord``."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def write_manifest(directory: str, manifest: Dict[str, Any]) -> None:
    """Writes ``manifest.json`` atomically (temporary name, then rename)."""
    path = os.path.join(directory, MANIFEST)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def load_manifest(data_dir: str) -> Dict[str, Any]:
    """Reads a data dir's manifest.

    A dir without ``manifest.json`` that holds google-research/electra's
    ``pretrain_data.tfrecord-*`` files gets a manifest made in memory
    (:func:`electra_tf.data.original.original_manifest`).

    Raises:
        DataError: the dir or its manifest is missing (an incomplete build) and
            it is not the original's data either, or the manifest is not valid
            JSON of this format.
    """
    if not os.path.isdir(data_dir):
        raise DataError(f"data dir {data_dir} does not exist; {_BUILD_HINT}")
    path = os.path.join(data_dir, MANIFEST)
    if not os.path.isfile(path):
        from electra_tf.data.original import original_manifest

        manifest = original_manifest(data_dir)
        if manifest is not None:
            return manifest
        raise DataError(f"data dir {data_dir} has no {MANIFEST} and no pretrain_data.tfrecord-* files: it is "
                        f"neither a data dir of this project (or its build did not finish) nor one written by "
                        f"google-research/electra's build_pretraining_dataset.py; {_BUILD_HINT}")
    try:
        with open(path, "r", encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} cannot be read as JSON ({exc}); rebuild the data dir") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise DataError(f"{path} has format {found!r}, expected {FORMAT!r}; rebuild the data dir")
    return manifest


def check_manifest(manifest: Dict[str, Any], vocab_size: Optional[int], max_seq_length: Optional[int],
                   data_dir: str) -> None:
    """Checks a manifest against the config's vocabulary size and sequence length.

    Args:
        manifest: as returned by :func:`load_manifest`.
        vocab_size: ``model.vocab_size``, or None to skip the check.
        max_seq_length: ``data.max_seq_length``, or None to skip the check.
        data_dir: the dir, for the message.

    Raises:
        DataError: naming both values when they differ.
    """
    if vocab_size is not None and int(manifest["vocab_size"]) != int(vocab_size):
        raise DataError(f"data dir {data_dir} was built with a vocabulary of {manifest['vocab_size']} pieces but "
                        f"model.vocab_size is {vocab_size}; set model.vocab_size to {manifest['vocab_size']} "
                        "(or auto) or rebuild the data with a matching vocabulary")
    if max_seq_length is not None and int(manifest["max_seq_length"]) != int(max_seq_length):
        raise DataError(f"data dir {data_dir} holds sequences of length {manifest['max_seq_length']} but "
                        f"data.max_seq_length is {max_seq_length}; set data.max_seq_length to "
                        f"{manifest['max_seq_length']} or rebuild the data with --max_seq_length {max_seq_length}")


def check_vocab_file(data_dir: str, manifest: Dict[str, Any]) -> None:
    """Checks the data dir's vocabulary against its manifest: sha256, number of entries, special ids.

    Catches a manifest edited by hand or a vocabulary swapped after the build
    before any training, not at the export after it.

    Raises:
        DataError: naming the file, the manifest and both values.
    """
    path = data_vocab_path(data_dir, manifest)
    if not os.path.isfile(path):
        return  # reported by what needs it (word masking, the export's text signatures), as before
    expected = manifest.get("vocab_sha256")
    if expected and file_sha256(path) != expected:
        raise DataError(f"the vocabulary {path} does not match {os.path.join(data_dir, MANIFEST)} (sha256 "
                        f"{file_sha256(path)[:12]}... vs {str(expected)[:12]}... recorded): the data dir was "
                        f"altered after it was built; rebuild it")
    from electra_tf.data.vocab import VocabError
    from electra_tf.data.vocabulary import load_vocabulary

    try:
        vocab = load_vocabulary(path)
    except VocabError as exc:
        raise DataError(f"the vocabulary of data dir {data_dir} cannot be used: {exc}") from None
    pieces = vocab.size
    if vocab.kind != data_vocab_kind(manifest):
        raise DataError(f"{os.path.join(data_dir, MANIFEST)} records a {data_vocab_kind(manifest)} vocabulary but "
                        f"{path} is {vocab.kind}: the data dir was altered after it was built; rebuild it")
    if vocab.specials != data_special_ids(manifest, data_dir):
        raise DataError(f"{os.path.join(data_dir, MANIFEST)} records special ids "
                        f"{data_special_ids(manifest, data_dir).as_dict()} but {path} has {vocab.specials.as_dict()}: "
                        "the data dir was altered after it was built; rebuild it")
    if int(manifest.get("vocab_size", pieces)) != pieces:
        raise DataError(f"{os.path.join(data_dir, MANIFEST)} says vocab_size {manifest['vocab_size']} but its "
                        f"vocabulary {path} has {pieces} pieces: the data dir was altered after it was built; "
                        f"rebuild it")


def shard_paths(data_dir: str, manifest: Dict[str, Any], split: str) -> List[str]:
    """The shard files of one split, in manifest order.

    Raises:
        DataError: the split is unknown or has no examples.
    """
    shards = manifest.get("shards", {})
    if split not in shards:
        raise DataError(f"data dir {data_dir} has no split {split!r} (splits: {', '.join(sorted(shards))})")
    if not shards[split]:
        raise DataError(f"data dir {data_dir} has no {split} examples (built with eval_fraction="
                        f"{manifest.get('eval_fraction')}); rebuild with a larger --eval_fraction or more text")
    return [os.path.join(data_dir, shard["file"]) for shard in shards[split]]


def _size_problems(data_dir: str, manifest: Dict[str, Any], splits: List[str]) -> Dict[str, str]:
    """``{path: problem}`` for each shard that is missing or has the wrong size."""
    problems = {}
    for split in splits:
        for shard in manifest.get("shards", {}).get(split, []):
            path = os.path.join(data_dir, shard["file"])
            if not os.path.isfile(path):
                problems[path] = f"shard {path} is missing"
                continue
            size = os.path.getsize(path)
            if size != shard["bytes"]:
                kind = "truncated" if size < shard["bytes"] else "longer than written"
                problems[path] = f"shard {path} is {kind}: {size} bytes, the manifest records {shard['bytes']}"
    return problems


def check_shard_files(data_dir: str, manifest: Dict[str, Any], split: str) -> List[str]:
    """Checks that every shard of ``split`` exists with the size the manifest records.

    Returns:
        The shard paths.

    Raises:
        DataError: naming each missing or resized shard file.
    """
    paths = shard_paths(data_dir, manifest, split)
    problems = _size_problems(data_dir, manifest, [split])
    if problems:
        raise DataError("; ".join(problems.values()) + "; rebuild the data dir")
    return paths


def diagnose_shards(data_dir: str, deep: bool = True) -> List[str]:
    """Finds what is wrong with a data dir's shards.

    Call it when reading raised ``tf.errors.DataLossError`` (whose message does
    not name the file) to report which shard is bad.

    Args:
        data_dir: the data dir.
        deep: also compare every file's sha256 with the manifest's (reads all bytes).

    Returns:
        One message per problem, each naming the file; empty when all is well.
    """
    try:
        manifest = load_manifest(data_dir)
    except DataError as exc:
        return [str(exc)]
    splits = sorted(manifest.get("shards", {}))
    bad_size = _size_problems(data_dir, manifest, splits)
    problems = list(bad_size.values())
    vocab = data_vocab_path(data_dir, manifest)
    if not os.path.isfile(vocab):
        problems.append(f"vocabulary {vocab} is missing")
    elif deep and manifest.get("vocab_sha256") and file_sha256(vocab) != manifest.get("vocab_sha256"):
        problems.append(f"vocabulary {vocab} differs from the one the data was built with (sha256 mismatch)")
    if not deep:
        return problems
    for split in splits:
        for shard in manifest["shards"][split]:
            path = os.path.join(data_dir, shard["file"])
            if path not in bad_size and shard.get("sha256") and file_sha256(path) != shard["sha256"]:
                problems.append(f"shard {path} is corrupt: its bytes differ from what was written "
                                "(sha256 mismatch with the manifest)")
    return problems
