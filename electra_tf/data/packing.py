"""Tokenizing and packing documents into fixed-length pretraining sequences.

This module is the work a writer process does; it imports neither TensorFlow
nor anything heavy, so worker processes start fast.

Packing rule (ELECTRA's, with one segment): the lines of one document are
tokenized and appended to the current sequence while they fit in
``target_length - 2`` tokens; then the sequence is emitted as
``[CLS] tokens [SEP]`` and padded with ``[PAD]`` to ``max_seq_length``. A
document's end always emits the current sequence, so no sequence spans two
documents. A line longer than a whole sequence is cut into pieces rather than
dropped. ``target_length`` is ``max_seq_length``, except that with
probability ``short_seq_prob`` a sequence gets a random target in
``[5, max_seq_length]`` (so the model also sees short inputs).

Whole documents go either to the training split or to the eval split:
document ``i`` is held out when ``floor((i + 1) * f + 0.5) > floor(i * f + 0.5)``
for ``f = eval_fraction``, i.e. every ``1/f``-th document, spread evenly.
"""

from __future__ import annotations

import math
import random
from typing import Dict, List, Optional, Sequence, Tuple

import sentencepiece as spm

from electra_tf.data.vocab import SENTENCEPIECE_SPECIALS, SpecialIds

__all__ = ["pack_document", "serialize_example", "is_eval_document", "encode_chunk", "init_worker", "specials_of",
           "MIN_TARGET_LENGTH"]

MIN_TARGET_LENGTH = 5
FEATURE = "input_ids"

_processor = None  # a spm.SentencePieceProcessor or a vocabulary of electra_tf.data.vocabulary
_varints: List[bytes] = []


def init_worker(vocab_path: Optional[str] = None, model_proto: Optional[bytes] = None,
                lower_case: Optional[bool] = None) -> None:
    """Loads the vocabulary (a file, or a SentencePiece model's bytes) once per process (a pool initializer).

    A WordPiece ``vocab.txt`` tokenizes with tensorflow-text, so such a worker imports TensorFlow.
    """
    global _processor
    if model_proto is not None:
        _processor = spm.SentencePieceProcessor(model_proto=model_proto)
    elif vocab_path.endswith(".txt"):
        from electra_tf.data.wordpiece import load_wordpiece

        _processor = load_wordpiece(vocab_path, lower_case=lower_case)
    else:
        _processor = spm.SentencePieceProcessor(model_file=vocab_path)


def specials_of(processor) -> SpecialIds:
    """The special ids of a tokenizer: a vocabulary's own, or 0-4 for a bare SentencePiece processor."""
    return getattr(processor, "specials", SENTENCEPIECE_SPECIALS)


def is_eval_document(index: int, eval_fraction: float) -> bool:
    """Whether document ``index`` (0-based, over all inputs) belongs to the eval split."""
    if eval_fraction <= 0:
        return False
    return math.floor((index + 1) * eval_fraction + 0.5) > math.floor(index * eval_fraction + 0.5)


def pack_document(
    lines: Sequence[Sequence[int]],
    max_seq_length: int,
    short_seq_prob: float = 0.0,
    rng: Optional[random.Random] = None,
    specials: SpecialIds = SENTENCEPIECE_SPECIALS,
) -> List[List[int]]:
    """Packs the token ids of one document's lines into sequences.

    Args:
        lines: token ids of each line, in order, without special tokens.
        max_seq_length: the length of every sequence, special tokens included.
        short_seq_prob: probability that a sequence gets a shorter random target length.
        rng: source of randomness for the short targets (needed when ``short_seq_prob > 0``).
        specials: the vocabulary's special ids (``[CLS]`` and ``[SEP]`` are used).

    Returns:
        Sequences ``[CLS, ..., SEP]`` of at most ``max_seq_length`` ids, unpadded.
    """
    if max_seq_length < MIN_TARGET_LENGTH:
        raise ValueError(f"max_seq_length must be >= {MIN_TARGET_LENGTH}, got {max_seq_length}")

    def new_room() -> int:
        target = max_seq_length
        if short_seq_prob > 0 and rng.random() < short_seq_prob:
            target = rng.randint(MIN_TARGET_LENGTH, max_seq_length)
        return target - 2

    cls_id, sep_id = specials.cls, specials.sep
    out: List[List[int]] = []
    current: List[int] = []
    room = new_room()
    for line in lines:
        line = list(line)
        while line:
            free = room - len(current)
            if len(line) <= free:
                current.extend(line)
                line = []
            elif current:  # the line does not fit: close the sequence, retry in a new one
                out.append([cls_id, *current, sep_id])
                current, room = [], new_room()
            else:  # longer than a whole sequence: cut it
                out.append([cls_id, *line[:room], sep_id])
                line, room = line[room:], new_room()
        if len(current) >= room:
            out.append([cls_id, *current, sep_id])
            current, room = [], new_room()
    if current:
        out.append([cls_id, *current, sep_id])
    return out


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _table(size: int) -> List[bytes]:
    """Varint encodings of ``0 .. size-1`` (at least 2^16), cached per process."""
    global _varints
    if size > len(_varints):
        _varints = [_varint(i) for i in range(max(size, 2 * len(_varints), 1 << 16))]
    return _varints


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    table = _table(len(payload) + 1)
    return tag + table[len(payload)] + payload


_KEY = b"\x0a" + _varint(len(FEATURE)) + FEATURE.encode()  # map entry key (field 1)


def serialize_example(ids: Sequence[int], max_seq_length: int, pad_id: int = SENTENCEPIECE_SPECIALS.pad) -> bytes:
    """A serialized ``tf.train.Example`` with one int64 feature ``input_ids`` of length ``max_seq_length``.

    The protobuf is written by hand (the same bytes as TensorFlow's
    serializer) so that worker processes need not import TensorFlow. The
    sequence is padded with ``pad_id``.
    """
    if len(ids) > max_seq_length:
        raise ValueError(f"a sequence of {len(ids)} ids does not fit max_seq_length={max_seq_length}")
    table = _table(max(max(ids) if ids else 0, pad_id) + 1)
    packed = b"".join([table[i] for i in ids]) + table[pad_id] * (max_seq_length - len(ids))
    int64_list = _length_delimited(b"\x0a", packed)      # Int64List.value, packed (field 1)
    feature = _length_delimited(b"\x1a", int64_list)     # Feature.int64_list (field 3)
    entry = _KEY + _length_delimited(b"\x12", feature)   # map<string, Feature> entry value (field 2)
    features = _length_delimited(b"\x0a", entry)         # Features.feature (field 1)
    return _length_delimited(b"\x0a", features)          # Example.features (field 1)


def encode_chunk(task: Tuple[int, int, List[List[str]], int, float, float, int],
                 processor=None) -> Dict[str, object]:
    """Tokenizes, packs and serializes one chunk of documents (runs in a worker).

    Args:
        task: ``(chunk_index, first_document_index, documents, max_seq_length,
            short_seq_prob, eval_fraction, seed)``. The chunk's random stream
            depends only on ``(seed, chunk_index)``, so the output does not
            depend on the number of workers.
        processor: the tokenizer: a ``SentencePieceProcessor`` or a vocabulary of
            :mod:`electra_tf.data.vocabulary` (its ``encode`` and special ids are
            used); by default the one :func:`init_worker` loaded in this process.

    Returns:
        ``{"train": [bytes], "eval": [bytes], "stats": {split: {...}}}``.
    """
    chunk_index, first_doc, documents, max_seq_length, short_seq_prob, eval_fraction, seed = task
    if processor is None:
        processor = _processor
    if processor is None:
        raise RuntimeError("init_worker() must be called before encode_chunk(), or a processor passed")
    specials = specials_of(processor)
    rng = random.Random(seed * 1_000_003 + chunk_index)
    records: Dict[str, List[bytes]] = {"train": [], "eval": []}
    stats = {split: {"documents": 0, "tokens": 0, "text_bytes": 0} for split in records}
    lines = [line for doc in documents for line in doc]
    encoded = processor.encode(lines, num_threads=1) if lines else []
    offset = 0
    for i, doc in enumerate(documents):
        split = "eval" if is_eval_document(first_doc + i, eval_fraction) else "train"
        ids = encoded[offset:offset + len(doc)]
        offset += len(doc)
        sequences = pack_document(ids, max_seq_length, short_seq_prob, rng, specials)
        records[split].extend(serialize_example(seq, max_seq_length, specials.pad) for seq in sequences)
        stats[split]["documents"] += 1
        stats[split]["tokens"] += sum(len(seq) for seq in sequences)
        stats[split]["text_bytes"] += sum(len(line.encode("utf-8")) + 1 for line in doc) + 1
    return {"train": records["train"], "eval": records["eval"], "stats": stats}
