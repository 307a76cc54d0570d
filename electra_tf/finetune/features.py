"""Tokenizing examples with the pretraining vocabulary and batching them with tf.data.

A single sentence becomes ``[CLS] a [SEP]``, a pair ``[CLS] a [SEP] b [SEP]``,
with token type 0 up to and including the first ``[SEP]`` and 1 after it. The
special ids are the vocabulary's (a SentencePiece model of this project: 0-4;
a WordPiece ``vocab.txt``: where its lines put them), padding with its ``[PAD]``.
When a pair is too long, tokens are dropped from the end of the longer side
first (BERT's ``_truncate_seq_pair``; on a tie, from ``b``).

Example:

>>> sp = load_sentencepiece("runs/tiny/export/vocab.model")          # doctest: +SKIP
>>> encode_pair(sp.encode("a b"), sp.encode("c"), max_seq_length=8)   # doctest: +SKIP
([2, 11, 12, 3, 13, 3], [0, 0, 0, 0, 1, 1])
"""

from __future__ import annotations

import dataclasses
import logging
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from electra_tf.data.packing import specials_of
from electra_tf.data.vocab import SENTENCEPIECE_SPECIALS, SpecialIds

__all__ = ["EncodedSplit", "truncate_pair", "encode_pair", "encode_examples", "train_dataset", "eval_dataset"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class EncodedSplit:
    """A tokenized split: ragged token ids and types, and the labels.

    ``labels`` is an array with one label per example ([N]; [N, 2] start and
    end positions for question answering) or, for token tagging, a list of
    per-token rows (-1 where a token has no label). ``specials`` are the
    vocabulary's special ids (padding uses its ``[PAD]``).
    """

    input_ids: List[List[int]]
    token_type_ids: List[List[int]]
    labels: Union[np.ndarray, List[List[int]]]
    truncated: int = 0
    specials: SpecialIds = SENTENCEPIECE_SPECIALS

    def __len__(self):
        return len(self.input_ids)


def truncate_pair(a: List[int], b: Optional[List[int]], max_tokens: int) -> Tuple[List[int], Optional[List[int]]]:
    """Drops tokens from the end of the longer list until both fit in ``max_tokens``."""
    a = list(a)
    if b is None:
        return a[:max_tokens], None
    b = list(b)
    while len(a) + len(b) > max_tokens:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return a, b


def encode_pair(a: Sequence[int], b: Optional[Sequence[int]], max_seq_length: int,
                special_ids: SpecialIds = SENTENCEPIECE_SPECIALS) -> Tuple[List[int], List[int]]:
    """``(input_ids, token_type_ids)`` of ``[CLS] a [SEP] (b [SEP])``, at most ``max_seq_length`` long."""
    specials = 2 if b is None else 3
    if max_seq_length < specials + (1 if b is None else 2):
        raise ValueError(f"max_seq_length must leave room for the special tokens and one token per text, "
                         f"got {max_seq_length}")
    a, b = truncate_pair(a, b, max_seq_length - specials)
    ids = [special_ids.cls] + a + [special_ids.sep]
    types = [0] * len(ids)
    if b is not None:
        ids += b + [special_ids.sep]
        types += [1] * (len(b) + 1)
    return ids, types


def encode_examples(sp, examples, max_seq_length: int, is_regression: bool = False) -> EncodedSplit:
    """Tokenizes ``examples`` (a list of :class:`~electra_tf.finetune.readers.Example`) with ``sp``.

    ``sp`` is a vocabulary of :mod:`electra_tf.data.vocabulary` (its special
    ids are used) or a bare ``SentencePieceProcessor`` (ids 0-4).
    """
    specials_ids = specials_of(sp)
    firsts = sp.encode([e.text_a for e in examples])
    pairs = examples and examples[0].text_b is not None
    seconds = sp.encode([e.text_b or "" for e in examples]) if pairs else [None] * len(examples)
    ids, types, truncated = [], [], 0
    specials = 3 if pairs else 2
    for a, b in zip(firsts, seconds):
        if len(a) + (len(b) if b is not None else 0) > max_seq_length - specials:
            truncated += 1
        i, t = encode_pair(a, b, max_seq_length, specials_ids)
        ids.append(i)
        types.append(t)
    dtype = np.float32 if is_regression else np.int32
    labels = np.asarray([e.label for e in examples], dtype=dtype)
    if truncated:
        log.info("%d of %d examples truncated to %d tokens", truncated, len(examples), max_seq_length)
    return EncodedSplit(ids, types, labels, truncated, specials_ids)


def _ragged(rows):
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    flat = np.fromiter((x for r in rows for x in r), dtype=np.int32, count=int(lengths.sum()))
    return tf.RaggedTensor.from_row_lengths(flat, lengths)


def _labels(labels):
    """Labels as tf.data takes them: an array ([N] or [N, k]) as it is, a list of per-token rows ragged."""
    return labels if isinstance(labels, np.ndarray) else _ragged(labels)


def _dataset(split: EncodedSplit, weights: np.ndarray) -> tf.data.Dataset:
    ids = _ragged(split.input_ids)
    features = {
        "input_ids": ids,
        "token_type_ids": _ragged(split.token_type_ids),
        "input_mask": tf.ones_like(ids),
        "label": _labels(split.labels),
        "weight": weights,
    }
    return tf.data.Dataset.from_tensor_slices(features).map(
        lambda f: {k: v.to_tensor() if isinstance(v, tf.RaggedTensor) else v for k, v in f.items()})


def _padded_batch(ds, batch_size, pad_to, pad_id):
    shape = [pad_to] if pad_to else [None]
    label_spec = ds.element_spec["label"]
    # Per-token labels (tagging) pad like the tokens, with -1 (no label); others keep their shape.
    label_shape = shape if label_spec.shape.rank == 1 and label_spec.shape[0] is None else label_spec.shape
    shapes = {"input_ids": shape, "token_type_ids": shape, "input_mask": shape, "label": label_shape, "weight": []}
    values = {"input_ids": pad_id, "token_type_ids": 0, "input_mask": 0,
              "label": tf.constant(-1 if label_spec.dtype.is_integer else 0, label_spec.dtype), "weight": 0.0}
    return ds.padded_batch(batch_size, padded_shapes=shapes, padding_values=values, drop_remainder=True)


def _options(ds):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    return ds.with_options(options)


def train_dataset(split: EncodedSplit, batch_size: int, seed: int, pad_to: Optional[int] = None) -> tf.data.Dataset:
    """Endless shuffled batches (reshuffled every epoch, seeded); each batch padded to its longest row.

    ``pad_to`` pads every batch to that length instead (static shapes, for TPUs).
    """
    n = len(split)
    ds = _dataset(split, np.ones(n, np.float32))
    ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True).repeat()
    return _options(_padded_batch(ds, batch_size, pad_to, split.specials.pad).prefetch(tf.data.AUTOTUNE))


def eval_dataset(split: EncodedSplit, batch_size: int, pad_to: Optional[int] = None,
                 num_workers: int = 1) -> tf.data.Dataset:
    """Every example once, in order, as full batches: the last one is filled with weight-0 examples.

    Full batches keep shapes static and split evenly across replicas (and the
    number of batches is a multiple of ``num_workers``, so every worker takes
    part in every step); metrics ignore rows whose ``weight`` is 0.
    """
    n = len(split)
    fill = (-n) % (batch_size * num_workers)
    if isinstance(split.labels, np.ndarray):
        labels = np.concatenate([split.labels, np.zeros((fill,) + split.labels.shape[1:], split.labels.dtype)])
    else:
        labels = list(split.labels) + [[-1, -1]] * fill
    cls_sep = [split.specials.cls, split.specials.sep]
    padded = EncodedSplit(split.input_ids + [cls_sep] * fill, split.token_type_ids + [[0, 0]] * fill, labels)
    weights = np.concatenate([np.ones(n, np.float32), np.zeros(fill, np.float32)])
    batches = _padded_batch(_dataset(padded, weights), batch_size, pad_to, split.specials.pad)
    return _options(batches.prefetch(tf.data.AUTOTUNE))
