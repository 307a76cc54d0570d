"""LayerNorm over the last axis with a hand-written gradient (fewer ops, less saved memory)."""

import keras
import tensorflow as tf


def layer_norm(x, gamma, beta, epsilon):
    """``(x - mean) / sqrt(var + epsilon) * gamma + beta`` over the last axis, in float32.

    The backward pass is the closed form
    ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))`` with ``g = dy * gamma``,
    from the saved normalised input ``xhat`` and ``rstd`` only: about half
    the ops and saved tensors of differentiating the forward formula.

    Args:
        x: [..., H] input (any float dtype; computed in float32).
        gamma, beta: float32 [H] scale and offset.
        epsilon: added to the variance.

    Returns:
        float32 [..., H].
    """

    @tf.custom_gradient
    def forward(x, gamma, beta):
        x32 = tf.cast(x, tf.float32)
        mean = tf.reduce_mean(x32, axis=-1, keepdims=True)
        centered = x32 - mean
        rstd = tf.math.rsqrt(tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True) + epsilon)
        xhat = centered * rstd

        def grad(dy):
            dy = tf.cast(dy, tf.float32)
            width = tf.shape(xhat)[-1]
            flat_dy, flat_xhat = tf.reshape(dy, [-1, width]), tf.reshape(xhat, [-1, width])
            d_gamma = tf.reduce_sum(flat_dy * flat_xhat, axis=0)
            d_beta = tf.reduce_sum(flat_dy, axis=0)
            g = dy * gamma
            dx = rstd * (g - tf.reduce_mean(g, axis=-1, keepdims=True)
                         - xhat * tf.reduce_mean(g * xhat, axis=-1, keepdims=True))
            return tf.cast(dx, x.dtype), d_gamma, d_beta

        return xhat * gamma + beta, grad

    return forward(x, tf.cast(gamma, tf.float32), tf.cast(beta, tf.float32))


@keras.saving.register_keras_serializable(package="electra_tf")
class FusedLayerNorm(keras.layers.LayerNormalization):
    """``keras.layers.LayerNormalization`` over the last axis, computed by :func:`layer_norm`.

    The same weights (``gamma``, ``beta``), config and outputs as Keras's
    layer (statistics in float32 whatever the compute dtype, output in the
    compute dtype), with a closed-form gradient. Other axes, ``center=False``,
    ``scale=False`` and ``rms_scaling`` fall back to Keras's implementation.

    Args:
        epsilon: added to the variance.
        **kwargs: passed to ``keras.layers.LayerNormalization``.

    Example:

    >>> norm = FusedLayerNorm(epsilon=1e-12)
    >>> y = norm(tf.random.normal([2, 3, 8]))
    >>> bool(abs(float(tf.reduce_mean(y))) < 1e-5)
    True
    """

    def call(self, inputs):
        axes = [self.axis] if isinstance(self.axis, int) else list(self.axis)
        last = len(inputs.shape) - 1
        if axes not in ([-1], [last]) or not (self.center and self.scale) or self.rms_scaling:
            return super().call(inputs)
        return tf.cast(layer_norm(inputs, self.gamma, self.beta, self.epsilon), self.compute_dtype)
