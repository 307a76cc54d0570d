"""Dropout that draws 16 random bits per element instead of a float32 uniform."""

import contextlib
import threading

import keras
import tensorflow as tf

RANDOM_BITS = 16
PHILOX = 1  # tf.random.Algorithm.PHILOX: 4 uint32 words per counter value

_example_rows = threading.local()


@contextlib.contextmanager
def keyed_by_example(step, first_row):
    """Within it, every active :class:`FastDropout` keys its mask by (layer, ``step``, example index).

    Row ``i`` of an input gets the mask of example ``first_row + i`` of the
    global batch at ``step``, drawn from the layer's seed (not advanced):
    the same masks whatever the number of replicas or micro-batches the
    global batch is split into, and again after a resume. Read when a
    function is traced; ``step`` and ``first_row`` are int64 scalars.
    """
    previous = getattr(_example_rows, "value", None)
    _example_rows.value = (tf.cast(step, tf.int64), tf.cast(first_row, tf.int64))
    try:
        yield
    finally:
        _example_rows.value = previous


def _rows_mask(shape, threshold, seed, first_row):
    """Row i's bits are Philox words at a counter offset of its example index: any split of rows gives the same."""
    rows = shape[0]
    row_size = tf.reduce_prod(shape[1:])
    blocks = ((row_size + 1) // 2 + 3) // 4  # whole Philox blocks (4 words, 8 halves) per row
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    offset = tf.cast(first_row, tf.uint64) * tf.cast(blocks, tf.uint64)
    counter = counter + tf.stack([offset, tf.zeros([], tf.uint64)])
    words = tf.raw_ops.StatelessRandomUniformFullIntV2(shape=tf.stack([rows * blocks * 4]), key=key, counter=counter,
                                                      alg=PHILOX, dtype=tf.uint32)
    halves = tf.reshape(tf.bitcast(tf.reshape(words, [rows, blocks * 4]), tf.uint16), [rows, blocks * 8])
    return tf.reshape(halves[:, :row_size] >= threshold, shape)


def keep_mask(shape, rate, seed, first_row=None):
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
        first_row: None, or the index of row 0 (the first dimension) among
            all rows drawn with ``seed``: each row's bits then depend on the
            seed and its index only, so a split of the rows across calls
            draws the same mask.

    Returns:
        bool tensor of ``shape``.
    """
    threshold = tf.constant(int(round(rate * 2 ** RANDOM_BITS)), tf.uint16)
    shape = tf.convert_to_tensor(shape, tf.int32)
    if first_row is not None:
        return _rows_mask(shape, threshold, seed, first_row)
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

        Within :func:`keyed_by_example`: the layer's seed folded with the step,
        without advancing the generator.

        Drawing the seed apart from the mask lets a caller replay the same mask
        later, e.g. when a block's forward pass is recomputed in the backward
        pass (``train.recompute``).
        """
        rows = getattr(_example_rows, "value", None)
        if rows is not None:  # keyed_by_example: the layer's seed folded with the step; its state is not advanced
            state = tf.cast(tf.math.floormod(self.seed_generator.state.value, tf.int32.max - 1), tf.int64)
            folded = tf.random.experimental.stateless_fold_in(state, rows[0])
            # int32, as below: XLA reads only the low 32 bits of an int64 seed, and a jit_compile'd step must
            # draw the masks the plain one draws.
            return tf.cast(tf.math.floormod(folded, tf.int32.max - 1), tf.int32)
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
        rows = getattr(_example_rows, "value", None)
        return keep_mask(shape, self.rate, self.next_seed() if seed is None else seed,
                         first_row=None if rows is None else rows[1])
