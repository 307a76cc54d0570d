"""Sampling and corruption helpers of replaced token detection (pure functions)."""

import tensorflow as tf


def gumbel_sample(logits, seed, temperature=1.0, forbid_ids=None):
    """Draws one token per row of ``logits`` by the Gumbel-max trick, in float32.

    ``argmax(logits / T + Gumbel noise)`` is an exact sample of
    ``softmax(logits / T)``. The noise comes from a stateless generator keyed by
    ``seed``, so a step draws the same tokens however often it is replayed.

    Args:
        logits: float [B, P, V] generator logits at the masked positions.
        seed: int32 [2] stateless seed.
        temperature: softmax temperature (> 0).
        forbid_ids: optional int [B, P] token per position that may not be
            drawn (ELECTRA's ``disallow_correct``: the original token).

    Returns:
        int32 [B, P] sampled token ids (no gradient flows through them).
    """
    logits = tf.cast(tf.stop_gradient(logits), tf.float32) / temperature
    if forbid_ids is not None:
        vocab = tf.shape(logits)[-1]
        logits += tf.one_hot(forbid_ids, vocab, on_value=-1e9, off_value=0.0, dtype=tf.float32)
    uniform = tf.random.stateless_uniform(tf.shape(logits), seed=seed, minval=1e-9, maxval=1.0,
                                          dtype=tf.float32)
    gumbel = -tf.math.log(-tf.math.log(uniform))
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)


def scatter_replacements(input_ids, positions, replacements, weights):
    """Writes ``replacements`` into ``input_ids`` at ``positions`` where ``weights`` > 0.

    Args:
        input_ids: int [B, S] token ids.
        positions: int [B, P] positions to overwrite (padding entries have weight 0).
        replacements: int [B, P] new tokens.
        weights: float [B, P], 0 for padding entries of the position list.

    Returns:
        int32 [B, S] ids with the replacements applied; padding entries leave
        the sequence untouched.
    """
    input_ids = tf.cast(input_ids, tf.int32)
    positions = tf.cast(positions, tf.int32)
    current = tf.gather(input_ids, positions, batch_dims=1)
    updates = tf.where(weights > 0, tf.cast(replacements, tf.int32), current)
    shape = tf.shape(positions)
    rows = tf.broadcast_to(tf.range(shape[0])[:, None], shape)
    indices = tf.stack([rows, positions], axis=-1)
    return tf.tensor_scatter_nd_update(input_ids, indices, updates)


def replaced_labels(original_ids, corrupted_ids, input_mask):
    """1 where the corrupted token differs from the original (a sampled original counts as real).

    Args:
        original_ids, corrupted_ids: int [B, S].
        input_mask: int [B, S], 1 on real tokens; padding is labelled 0.

    Returns:
        int32 [B, S] labels.
    """
    differs = tf.not_equal(tf.cast(original_ids, tf.int32), tf.cast(corrupted_ids, tf.int32))
    return tf.cast(differs, tf.int32) * tf.cast(input_mask, tf.int32)
