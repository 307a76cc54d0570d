"""Sampling and corruption helpers of replaced token detection (pure functions)."""

import tensorflow as tf


def example_seeds(seed, batch_size):
    """Per-example stateless seeds [B, 2] int64 from one seed [2]: row i is ``(seed[0], seed[1] + i)``.

    Callers give each example of a global batch a distinct offset (its index), so the noise an
    example gets does not depend on how the batch is split across replicas or micro-batches.
    """
    seed = tf.cast(tf.reshape(seed, [2]), tf.int64)
    offsets = tf.range(tf.cast(batch_size, tf.int64), dtype=tf.int64)
    return tf.stack([tf.fill([batch_size], seed[0]), seed[1] + offsets], axis=1)


def gumbel_sample(logits, seed, temperature=1.0, forbid_ids=None):
    """Draws one token per row of ``logits`` by the Gumbel-max trick, in float32.

    ``argmax(logits / T + Gumbel noise)`` is an exact sample of
    ``softmax(logits / T)``. The noise comes from stateless generators keyed
    by one seed per example, so a step draws the same tokens however often it
    is replayed and however the batch is split.

    Args:
        logits: float [B, P, V] generator logits at the masked positions.
        seed: int [B, 2] per-example stateless seeds, or one [2] seed
            (expanded with :func:`example_seeds`).
        temperature: softmax temperature (> 0).
        forbid_ids: optional int [B, P] token per position that may not be
            drawn (ELECTRA's ``disallow_correct``: the original token).

    Returns:
        int32 [B, P] sampled token ids (no gradient flows through them).
    """
    logits = tf.cast(tf.stop_gradient(logits), tf.float32) / temperature
    shape = tf.shape(logits)
    if forbid_ids is not None:
        logits += tf.one_hot(forbid_ids, shape[-1], on_value=-1e9, off_value=0.0, dtype=tf.float32)
    seeds = tf.cast(seed, tf.int64)
    if seeds.shape.rank == 1:
        seeds = example_seeds(seeds, shape[0])
    uniform = tf.map_fn(
        lambda s: tf.random.stateless_uniform(shape[1:], seed=s, minval=1e-9, maxval=1.0, dtype=tf.float32),
        seeds, fn_output_signature=tf.float32)
    gumbel = -tf.math.log(-tf.math.log(uniform))
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)


def scatter_replacements(input_ids, positions, replacements, weights):
    """Writes ``replacements`` into ``input_ids`` at ``positions`` where ``weights`` > 0.

    Args:
        input_ids: int [B, S] token ids.
        positions: int [B, P] positions to overwrite, distinct among the
            entries of weight > 0 (padding entries, weight 0, may repeat any
            position, usually 0).
        replacements: int [B, P] new tokens.
        weights: float [B, P], 0 for padding entries of the position list.

    Returns:
        int32 [B, S] ids with the replacements applied; padding entries leave
        the sequence untouched, also at a position a real entry replaces.
    """
    input_ids = tf.cast(input_ids, tf.int32)
    positions = tf.cast(positions, tf.int32)
    current = tf.gather(input_ids, positions, batch_dims=1)
    # Add (new - old) at real entries and 0 at padding ones: a padding entry that shares its index
    # with a real one (position 0) adds nothing, where an update could overwrite the sample.
    delta = tf.where(weights > 0, tf.cast(replacements, tf.int32) - current, 0)
    shape = tf.shape(positions)
    rows = tf.broadcast_to(tf.range(shape[0])[:, None], shape)
    indices = tf.stack([rows, positions], axis=-1)
    return tf.tensor_scatter_nd_add(input_ids, indices, delta)


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
