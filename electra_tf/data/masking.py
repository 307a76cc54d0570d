"""ELECTRA's masking of one sequence, with stateless random ops.

The rule (DESIGN.md): of a sequence with ``n`` real tokens (not ``[PAD]``;
``[CLS]`` and ``[SEP]`` count, as in ELECTRA's ``input_mask``), exactly
``P = min(round(mask_prob * n), max_predictions, candidates)`` positions are
chosen uniformly among the candidates, which are all positions that do not
hold a special token (``[PAD]``, ``[CLS]``, ``[SEP]``). ``round`` is
round-half-to-even, as Python's. Each chosen position independently becomes
``[MASK]`` with probability ``mask_token_prob`` (0.85) and keeps its original
token otherwise; there is no random replacement.

The randomness is a function of ``seed`` only (stateless ops), so the same
seed always gives the same mask, in a ``tf.data`` map, in a ``tf.function``
or eagerly. This is the one masking function of the project: training,
evaluation and benchmarks all use it.

Three strategies choose the positions (``data.masking``); the budget ``P``,
the specials and the 85/15 split per chosen piece are the same for all:

* ``token`` (default): ``P`` positions uniformly among the candidates (above).
* ``whole_word``: words (a piece that starts with SentencePiece's ``▁``, a
  WordPiece token that does not start with ``##``, or a piece that follows a
  special, begins a word; the pieces after it up to the next word start
  belong to it, so ``##`` continuations go with their word) are visited in a random order and each is
  chosen whole if it fits in what is left of the budget, skipped otherwise
  (the visit goes on with the next word), until the budget is spent. A word
  is never split, so the budget is met exactly whenever some unchosen word
  fits the remainder; when every unchosen word is longer, the sequence gets
  fewer than ``P`` pieces (the choice is maximal, not a subset-sum search:
  another set of words may have met ``P``).
* ``span``: SpanBERT's spans. Each proposal draws a length ``l`` in pieces
  from a geometric distribution (``p = 0.2``) truncated to ``1..10`` and a
  start word uniformly among the words; the span is that word and the
  following whole words while the total stays ``<= l`` (a first word longer
  than ``l`` is taken alone). A span is accepted if it overlaps no chosen
  word and fits in the remaining budget, dropped otherwise (never cut).
  After ``S`` proposals, or as soon as the budget is spent, a remainder is
  filled word by word as in ``whole_word``.

Example:

>>> ids = tf.constant([2, 17, 93, 41, 8, 3, 0, 0], tf.int32)
>>> out = mask_sequence(ids, seed=tf.constant([0, 7], tf.int64), mask_prob=0.15, max_predictions=2)
>>> sorted(out)
['input_ids', 'input_mask', 'masked_ids', 'masked_input_ids', 'masked_positions', 'masked_weights']
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import tensorflow as tf

from electra_tf.config.schema import MASKING_STRATEGIES, default_max_predictions
from electra_tf.data.vocab import CLS_ID, MASK_ID, PAD_ID, SEP_ID

__all__ = ["mask_sequence", "default_max_predictions", "MASKING_STRATEGIES", "SPAN_P", "SPAN_MAX_PIECES"]

SPAN_P = 0.2
SPAN_MAX_PIECES = 10


def mask_sequence(
    input_ids: tf.Tensor,
    seed: tf.Tensor,
    mask_prob: float,
    max_predictions: int,
    mask_token_prob: float = 0.85,
    mask_id: int = MASK_ID,
    special_ids: Sequence[int] = (PAD_ID, CLS_ID, SEP_ID),
    strategy: str = "token",
    word_start: Optional[tf.Tensor] = None,
) -> Dict[str, tf.Tensor]:
    """Chooses and masks positions of one sequence.

    Args:
        input_ids: int32 ``[S]`` token ids, padded with ``[PAD]`` (``special_ids[0]``).
        seed: int32 or int64 ``[2]``, the stateless seed of this example,
            e.g. ``(global seed, example index)``.
        mask_prob: fraction of the real tokens to choose, in (0, 1).
        max_predictions: ``P_max``, the length of the position outputs.
        mask_token_prob: probability that a chosen position becomes ``mask_id``.
        mask_id: the ``[MASK]`` id.
        special_ids: ids never chosen; the first is the padding id.
        strategy: ``token``, ``whole_word`` or ``span`` (see the module docstring).
        word_start: bool ``[vocab_size]``, True for the ids that begin a word
            (a vocabulary's ``word_start_table()``, :mod:`electra_tf.data.vocabulary`); needed by
            ``whole_word`` and ``span``.

    Returns:
        A dict of tensors:
        ``input_ids`` int32 ``[S]`` (unchanged), ``input_mask`` int32 ``[S]``
        (1 for non-padding), ``masked_input_ids`` int32 ``[S]``,
        ``masked_positions`` int32 ``[P_max]`` (ascending, then zeros),
        ``masked_ids`` int32 ``[P_max]`` (original ids there, 0 in the
        padding of the list) and ``masked_weights`` float32 ``[P_max]``
        (1.0 for a chosen position, 0.0 for padding).
    """
    if not 0.0 < mask_prob < 1.0:
        raise ValueError(f"mask_prob must be in (0, 1), got {mask_prob!r}")
    if not 0.0 <= mask_token_prob <= 1.0:
        raise ValueError(f"mask_token_prob must be in [0, 1], got {mask_token_prob!r}")
    if int(max_predictions) < 1:
        raise ValueError(f"max_predictions must be an integer >= 1, got {max_predictions!r}")
    if strategy not in MASKING_STRATEGIES:
        raise ValueError(f"masking strategy must be one of {', '.join(MASKING_STRATEGIES)}, got {strategy!r}")
    if strategy != "token" and word_start is None:
        raise ValueError(f"masking strategy {strategy!r} needs word_start, the word-start table of the vocabulary")
    max_predictions = int(max_predictions)
    input_ids = tf.cast(input_ids, tf.int32)
    seed = tf.cast(seed, tf.int64)
    length = tf.shape(input_ids)[0]

    input_mask = tf.cast(tf.not_equal(input_ids, special_ids[0]), tf.int32)
    candidate = tf.reduce_all(tf.not_equal(input_ids[:, None], tf.constant(list(special_ids), tf.int32)), axis=-1)
    n_real = tf.cast(tf.reduce_sum(input_mask), tf.float64)
    n_candidates = tf.reduce_sum(tf.cast(candidate, tf.int32))
    count = tf.cast(tf.round(n_real * tf.constant(mask_prob, tf.float64)), tf.int32)
    count = tf.minimum(tf.minimum(count, max_predictions), n_candidates)

    choose_seed, token_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    static_length = input_ids.shape[0]
    k = min(static_length, max_predictions) if static_length is not None else tf.minimum(length, max_predictions)
    if strategy == "token":
        # Random scores in [0, 1) for candidates, -1 elsewhere: the top `count` are a uniform sample.
        scores = tf.random.stateless_uniform([length], seed=choose_seed, dtype=tf.float32)
        scores = tf.where(candidate, scores, -1.0)
        _, top = tf.math.top_k(scores, k=k, sorted=True)
    else:
        picked = _choose_words(input_ids, candidate, count, choose_seed, word_start, strategy == "span")
        count = tf.reduce_sum(tf.cast(picked, tf.int32))
        # The picked positions, ascending, first (at most max_predictions of them: the budget caps them).
        _, top = tf.math.top_k(tf.where(picked, -tf.range(length), -length - 1), k=k, sorted=True)
    slots = tf.range(k)
    chosen = slots < count
    # Ascending positions first, then the padding of the list (sorted as `length`, then set to 0).
    positions = tf.sort(tf.where(chosen, top, length))
    positions = tf.where(chosen, positions, 0)
    pad = max_predictions - k
    positions = tf.ensure_shape(tf.pad(positions, [[0, pad]]), [max_predictions])
    chosen = tf.ensure_shape(tf.pad(chosen, [[0, pad]]), [max_predictions])

    use_mask = tf.random.stateless_uniform([max_predictions], seed=token_seed, dtype=tf.float32) < mask_token_prob
    to_mask = tf.logical_and(chosen, use_mask)
    hits = tf.scatter_nd(positions[:, None], tf.cast(to_mask, tf.int32), shape=[length]) > 0
    masked_input_ids = tf.where(hits, tf.constant(mask_id, tf.int32), input_ids)

    chosen_int = tf.cast(chosen, tf.int32)
    return {
        "input_ids": input_ids,
        "input_mask": input_mask,
        "masked_input_ids": masked_input_ids,
        "masked_positions": positions * chosen_int,
        "masked_ids": tf.gather(input_ids, positions) * chosen_int,
        "masked_weights": tf.cast(chosen, tf.float32),
    }


def _choose_words(input_ids, candidate, budget, seed, word_start, spans: bool) -> tf.Tensor:
    """Bool ``[S]``: the positions of whole words (spans, then single words) within ``budget`` pieces."""
    length = tf.shape(input_ids)[0]
    follows_special = tf.concat([[True], tf.logical_not(candidate[:-1])], 0)
    begins = tf.logical_and(candidate, tf.logical_or(tf.gather(tf.cast(word_start, tf.bool), input_ids),
                                                     follows_special))
    n_words = tf.reduce_sum(tf.cast(begins, tf.int32))
    # Word index of each candidate position; `length` (out of range) for the others.
    word = tf.where(candidate, tf.cumsum(tf.cast(begins, tf.int32)) - 1, length)
    word_len = tf.math.unsorted_segment_sum(tf.ones_like(word), word, length + 1)[:length]
    word_end = tf.cumsum(word_len)  # pieces in words 0..w
    word_begin = word_end - word_len
    words = tf.range(length)
    is_word = words < n_words
    span_seed, fill_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))

    def take(state, in_unit):
        taken, left = state
        pieces = tf.reduce_sum(tf.where(in_unit, word_len, 0))
        ok = tf.logical_and(pieces <= left, tf.logical_not(tf.reduce_any(tf.logical_and(in_unit, taken))))
        return (tf.where(ok, tf.logical_or(taken, in_unit), taken), tf.where(ok, left - pieces, left))

    taken, left = tf.zeros([length], tf.bool), budget
    if spans:
        start_seed, length_seed = tf.unstack(tf.random.experimental.stateless_split(span_seed, num=2))
        starts = tf.cast(tf.random.stateless_uniform([length], seed=start_seed) * tf.cast(n_words, tf.float32),
                         tf.int32)
        starts = tf.minimum(starts, tf.maximum(n_words - 1, 0))
        # Geometric(p) truncated to 1..L by the inverse CDF: l = 1 + floor(log(1 - u (1 - q^L)) / log q).
        q = 1.0 - SPAN_P
        u = tf.random.stateless_uniform([length], seed=length_seed, dtype=tf.float32)
        spans_len = 1 + tf.cast(tf.floor(tf.math.log(1.0 - u * (1.0 - q ** SPAN_MAX_PIECES)) / math.log(q)), tf.int32)
        spans_len = tf.clip_by_value(spans_len, 1, SPAN_MAX_PIECES)

        def span_step(j, taken, left):
            s = starts[j]
            in_span = tf.logical_and(tf.logical_and(words >= s, is_word),
                                     tf.logical_or(word_end - word_begin[s] <= spans_len[j], words == s))
            return (j + 1, *take((taken, left), in_span))

        _, taken, left = tf.while_loop(lambda j, t, r: tf.logical_and(j < length, r > 0), span_step,
                                       (tf.constant(0), taken, left))
    # Words in a random order, each taken whole if it fits (and is free).
    scores = tf.where(is_word, tf.random.stateless_uniform([length], seed=fill_seed), -1.0)
    _, order = tf.math.top_k(scores, k=length, sorted=True)

    def word_step(i, taken, left):
        return (i + 1, *take((taken, left), tf.equal(words, order[i])))

    _, taken, _ = tf.while_loop(lambda i, t, r: tf.logical_and(i < n_words, r > 0), word_step,
                                (tf.constant(0), taken, left))
    return tf.gather(tf.concat([taken, [False]], 0), word)
