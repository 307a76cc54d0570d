"""T5-style bucketed relative position bias."""

import math

import keras
import tensorflow as tf


def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    """Maps relative positions (key - query) to bucket ids, as in T5.

    Distances below ``num_buckets // 2`` (per direction when bidirectional) get a
    bucket each; larger ones share logarithmically wider buckets up to
    ``max_distance``, beyond which all positions share the last bucket.

    Args:
        relative_position: int32 tensor of ``key_position - query_position``.
        bidirectional: whether keys after the query get buckets of their own.
        num_buckets: total number of buckets.
        max_distance: distance from which all positions share a bucket.

    Returns:
        int32 tensor of the same shape with values in ``[0, num_buckets)``.
    """
    n = -tf.cast(relative_position, tf.int32)
    buckets = tf.zeros_like(n)
    if bidirectional:
        num_buckets //= 2
        buckets += tf.cast(n < 0, tf.int32) * num_buckets
        n = tf.abs(n)
    else:
        n = tf.maximum(n, 0)
    exact = num_buckets // 2
    # Log-spaced buckets for the far distances, computed in float32 so the
    # boundaries agree with the reference implementations bit for bit.
    log_ratio = tf.math.log(tf.cast(n, tf.float32) / exact) / math.log(max_distance / exact)
    far = exact + tf.cast(log_ratio * (num_buckets - exact), tf.int32)
    far = tf.minimum(far, num_buckets - 1)
    return buckets + tf.where(n < exact, n, far)


@keras.saving.register_keras_serializable(package="electra_tf")
class RelativePositionBias(keras.layers.Layer):
    """A learned per-head bias over bucketed relative positions (T5).

    The bias is computed once per forward pass and added to every layer's
    attention scores; it is returned in float32 so that it is added to the
    float32 attention logits even under mixed precision.

    Args:
        num_heads: number of attention heads (one bias per head and bucket).
        num_buckets: number of relative position buckets.
        max_distance: distance from which positions share the last bucket.
        bidirectional: whether keys after the query have buckets of their own.
        initializer_range: stddev of the truncated-normal initializer.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:

    >>> bias = RelativePositionBias(num_heads=2, num_buckets=8, max_distance=16)
    >>> bias(tf.zeros([3, 5, 4])).shape
    TensorShape([1, 2, 5, 5])
    """

    def __init__(self, num_heads, num_buckets=32, max_distance=128, bidirectional=True,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.num_heads = num_heads
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        self.initializer_range = initializer_range

    def build(self, input_shape=None):
        self.bias_table = self.add_weight(
            name="bias_table",
            shape=(self.num_buckets, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range),
            dtype="float32",
        )
        self.built = True

    def call(self, inputs):
        """Returns the float32 bias of shape ``[1, num_heads, seq, seq]`` for ``inputs`` [batch, seq, ...]."""
        length = tf.shape(inputs)[1]
        positions = tf.range(length)
        relative = positions[None, :] - positions[:, None]  # [query, key]: key - query
        buckets = relative_position_bucket(relative, self.bidirectional, self.num_buckets, self.max_distance)
        values = tf.gather(tf.cast(self.bias_table, tf.float32), buckets)  # [q, k, heads]
        return tf.transpose(values, [2, 0, 1])[None]

    def compute_output_shape(self, input_shape):
        return (1, self.num_heads, input_shape[1], input_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_heads": self.num_heads,
            "num_buckets": self.num_buckets,
            "max_distance": self.max_distance,
            "bidirectional": self.bidirectional,
            "initializer_range": self.initializer_range,
        })
        return config
