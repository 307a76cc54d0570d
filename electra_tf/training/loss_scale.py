"""Dynamic loss scaling for float16 training, one scale per optimizer group.

Keras's ``LossScaleOptimizer`` scales inside ``optimizer.apply`` and reduces
gradients per replica; here gradients are all-reduced, measured and clipped by
the step itself (see :mod:`electra_tf.training.step`), so the scale is kept in
a small class of its own with the same policy: start at 2**15, halve (never
below 1) after a step with a non-finite loss or gradient, double after
``growth_interval`` consecutive finite steps.
"""

import tensorflow as tf

LOSS_SCALE_INIT = 2.0 ** 15
LOSS_SCALE_GROWTH_INTERVAL = 2000


class DynamicLossScale:
    """A loss scale that backs off on overflow and grows after a run of good steps.

    Args:
        name: prefix of the variables' names.
        initial_scale: the first scale.
        growth_interval: finite steps in a row after which the scale doubles.

    Example:

    >>> scale = DynamicLossScale("generator", initial_scale=8.0, growth_interval=2)
    >>> scale.update(tf.constant(False)); float(scale.scale.numpy())
    4.0
    """

    def __init__(self, name, initial_scale=LOSS_SCALE_INIT, growth_interval=LOSS_SCALE_GROWTH_INTERVAL):
        if initial_scale < 1:
            raise ValueError(f"initial_scale must be >= 1, got {initial_scale!r}")
        if growth_interval < 1:
            raise ValueError(f"growth_interval must be >= 1, got {growth_interval!r}")
        self.growth_interval = int(growth_interval)
        agg = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.scale = tf.Variable(float(initial_scale), trainable=False, dtype=tf.float32, name=f"{name}_loss_scale",
                                 aggregation=agg)
        self.good_steps = tf.Variable(0, trainable=False, dtype=tf.int64, name=f"{name}_good_steps",
                                      aggregation=agg)

    def update(self, finite):
        """After a step: halve the scale if ``finite`` is False, else count the step and maybe double it."""
        grow = tf.logical_and(finite, self.good_steps + 1 >= self.growth_interval)
        new_scale = tf.where(finite, tf.where(grow, self.scale * 2.0, self.scale), tf.maximum(self.scale / 2.0, 1.0))
        self.scale.assign(new_scale)
        self.good_steps.assign(tf.where(finite & ~grow, self.good_steps + 1, tf.constant(0, tf.int64)))
