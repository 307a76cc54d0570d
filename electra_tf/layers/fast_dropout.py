"""Dropout that draws 16 random bits per element instead of a float32 uniform."""

import keras
import tensorflow as tf

RANDOM_BITS = 16


def keep_mask(shape, rate, seed):
    """A boolean mask that is True with probability ``1 - rate`` (to within 2**-17), independently per element.

    Each uint32 that the stateless Philox generator draws is split into two
    16-bit numbers, each compared with ``round(rate * 2**16)``: half the
    random numbers (the dominant cost of dropout on a CPU) of a float32
    uniform per element, with a keep probability that differs from
    ``1 - rate`` by less than 2**-17.

    Args:
        shape: int32 [rank] shape of the mask; the last dimension must be static.
        rate: drop probability in [0, 1).
        seed: int32 [2] stateless seed.

    Returns:
        bool tensor of ``shape``.
    """
    threshold = tf.constant(int(round(rate * 2 ** RANDOM_BITS)), tf.uint16)
    shape = tf.convert_to_tensor(shape, tf.int32)
    size = tf.reduce_prod(shape)
    words = tf.random.stateless_uniform([(size + 1) // 2], seed=seed, minval=None, maxval=None, dtype=tf.uint32)
    halves = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:size]
    return tf.reshape(halves >= threshold, shape)


@keras.saving.register_keras_serializable(package="electra_tf")
class FastDropout(keras.layers.Dropout):
    """``keras.layers.Dropout`` with a cheaper random mask; the same rate, scaling and seeding.

    Zeroes each input element with probability ``rate`` during training and
    scales the others by ``1 / (1 - rate)``, like Keras's layer, whose
    arguments, config and ``seed_generator`` (the per-layer random state that
    checkpoints save) it keeps. The mask comes from :func:`keep_mask`: 16
    random bits per element rather than a float32 uniform, which halves the
    random-number work that dominates dropout's cost on a CPU. The backward
    pass keeps only the boolean mask (one byte per element).
    ``noise_shape`` is not supported (none of this package's layers uses it).

    Args:
        rate: fraction of the inputs to drop, in [0, 1).
        seed: optional integer seed of the layer's ``SeedGenerator``.
        **kwargs: passed to ``keras.layers.Dropout``.

    Example:

    >>> drop = FastDropout(0.5, seed=1)
    >>> y = drop(tf.ones([2, 1000]), training=True)
    >>> sorted(set(y.numpy().ravel().tolist()))
    [0.0, 2.0]
    """

    def __init__(self, rate, seed=None, **kwargs):
        if kwargs.get("noise_shape") is not None:
            raise ValueError(f"FastDropout does not support noise_shape, got {kwargs['noise_shape']!r}")
        kwargs.pop("noise_shape", None)
        super().__init__(rate, seed=seed, **kwargs)

    def call(self, inputs, training=False, seed=None):
        """``seed``: optional int32 [2] stateless seed used instead of the layer's next one (:meth:`next_seed`)."""
        keep = self.draw_mask(tf.shape(inputs), training, seed=seed)
        if keep is None:
            return inputs
        scale = tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
        return tf.where(keep, inputs * scale, tf.zeros([], inputs.dtype))

    def active(self, training):
        """Whether the layer drops anything in this mode."""
        return bool(training) and self.rate > 0

    def next_seed(self):
        """Advances the layer's ``SeedGenerator`` and returns the int32 [2] stateless seed of its next mask.

        Drawing the seed apart from the mask lets a caller replay the same mask
        later, e.g. when a block's forward pass is recomputed in the backward
        pass (``train.recompute``).
        """
        # Keras's own conversion of a SeedGenerator state to a stateless seed.
        return tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)

    def draw_mask(self, shape, training, seed=None):
        """The boolean keep mask this layer would apply to an input of ``shape``; None when it is inactive.

        For callers that apply the mask themselves (e.g. inside a fused
        gradient); the kept values are to be scaled by ``1 / (1 - rate)``.
        ``seed`` replaces the layer's next seed when given.
        """
        if not self.active(training):
            return None
        if self.rate >= 1:
            return tf.zeros(shape, tf.bool)
        return keep_mask(shape, self.rate, self.next_seed() if seed is None else seed)
