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

Example:

>>> ids = tf.constant([2, 17, 93, 41, 8, 3, 0, 0], tf.int32)
>>> out = mask_sequence(ids, seed=tf.constant([0, 7], tf.int64), mask_prob=0.15, max_predictions=2)
>>> sorted(out)
['input_ids', 'input_mask', 'masked_ids', 'masked_input_ids', 'masked_positions', 'masked_weights']
"""

from __future__ import annotations

from typing import Dict, Sequence

import tensorflow as tf

from electra_tf.data.vocab import CLS_ID, MASK_ID, PAD_ID, SEP_ID

__all__ = ["mask_sequence", "default_max_predictions"]


def default_max_predictions(mask_prob: float, max_seq_length: int) -> int:
    """ELECTRA's cap on the chosen positions: ``int((mask_prob + 0.005) * max_seq_length)``, at least 1."""
    return max(1, int((mask_prob + 0.005) * max_seq_length))


def mask_sequence(
    input_ids: tf.Tensor,
    seed: tf.Tensor,
    mask_prob: float,
    max_predictions: int,
    mask_token_prob: float = 0.85,
    mask_id: int = MASK_ID,
    special_ids: Sequence[int] = (PAD_ID, CLS_ID, SEP_ID),
) -> Dict[str, tf.Tensor]:
    """Chooses and masks positions of one sequence.

    Args:
        input_ids: int32 ``[S]`` token ids, padded with ``[PAD]`` (0).
        seed: int32 or int64 ``[2]``, the stateless seed of this example,
            e.g. ``(global seed, example index)``.
        mask_prob: fraction of the real tokens to choose, in (0, 1).
        max_predictions: ``P_max``, the length of the position outputs.
        mask_token_prob: probability that a chosen position becomes ``mask_id``.
        mask_id: the ``[MASK]`` id.
        special_ids: ids never chosen; the first is the padding id.

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

    # Random scores in [0, 1) for candidates, -1 elsewhere: the top `count` are a uniform sample.
    choose_seed, token_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    scores = tf.random.stateless_uniform([length], seed=choose_seed, dtype=tf.float32)
    scores = tf.where(candidate, scores, -1.0)
    static_length = input_ids.shape[0]
    k = min(static_length, max_predictions) if static_length is not None else tf.minimum(length, max_predictions)
    _, top = tf.math.top_k(scores, k=k, sorted=True)
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
