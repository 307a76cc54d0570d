"""Activations for the dense layers, with a cheaper exact GELU.

``get_activation("gelu")`` returns :func:`gelu`, the exact (erf) GELU with a
hand-written gradient; every other name resolves through
``keras.activations.get``. Layers store the *name* in their config, so a
saved model rebuilds with whatever the name resolves to.
:func:`gelu_dense` is GELU followed by a dense layer, the second half of a
transformer's feed-forward network, in less memory.
"""

import keras
import tensorflow as tf

_SQRT_HALF = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


@tf.custom_gradient
def gelu(x):
    """The exact GELU ``x * Phi(x)``, ``Phi`` the standard normal CDF (as ``keras.activations.gelu``).

    The derivative ``Phi(x) + x * phi(x)`` is formed in the forward pass and
    is the only tensor kept for the backward pass, which is then one multiply;
    differentiating the formula instead keeps several input-sized
    intermediates and runs a longer chain of element-wise ops. Computed in
    float32 and rounded once to ``x``'s dtype (under mixed bf16, a chain of
    bf16 ops converts at every op: slower, and less exact than Keras's GELU
    in bf16 is).

    Args:
        x: float tensor.

    Returns:
        a tensor of ``x``'s shape and dtype.
    """
    activated, slope = _gelu_parts(x)

    def grad(dy):
        return dy * slope

    return activated, grad


def recompute_after(x, signal):
    """``x``, for recomputing values from it once ``signal`` (a backward-pass tensor) exists.

    Without the control dependency, Grappler's common-subexpression
    elimination merges the recomputation with the identical forward
    computation, and the forward values stay alive after all.
    """
    with tf.control_dependencies([signal]):
        return tf.identity(x)


def _gelu_parts(x):
    """``(gelu(x), d gelu / dx)`` in ``x``'s dtype, computed in float32."""
    activated, slope = _gelu_parts32(tf.cast(x, tf.float32))
    return tf.cast(activated, x.dtype), tf.cast(slope, x.dtype)


def _gelu_parts32(x):
    """``(gelu(x), d gelu / dx)`` of a float32 ``x``, in float32."""
    cdf = 0.5 + 0.5 * tf.math.erf(x * _SQRT_HALF)
    return x * cdf, cdf + x * (_INV_SQRT_2PI * tf.exp(-0.5 * tf.square(x)))


def gelu_dense(x, kernel, bias):
    """``gelu(x) @ kernel + bias`` for 2-D ``x``, keeping only ``x`` for the backward pass.

    The backward pass recomputes ``gelu(x)`` (for the kernel's gradient) and
    its derivative from ``x``: the activation of the feed-forward network's
    wide layer is then stored once instead of twice (``x`` and ``gelu(x)``)
    until the backward pass reaches it, for one erf more per element.

    Under mixed precision the matmuls run in ``x``'s dtype and the
    element-wise GELU chains in float32, each rounded once to ``x``'s dtype:
    bf16 element-wise ops each convert to float32 and back, so a bf16 chain
    is slower than one cast in and one out (measured: docs/performance.md).

    Args:
        x: [N, F] pre-activations.
        kernel: [F, H] in ``x``'s dtype.
        bias: [H] in ``x``'s dtype.

    Returns:
        [N, H].
    """

    @tf.custom_gradient
    def forward(x, kernel, bias):
        x32 = tf.cast(x, tf.float32)
        activated = tf.cast(x32 * (0.5 + 0.5 * tf.math.erf(x32 * _SQRT_HALF)), x.dtype)

        def grad(d_out):
            activated, slope = _gelu_parts32(tf.cast(recompute_after(x, d_out), tf.float32))
            d_kernel = tf.matmul(tf.cast(activated, x.dtype), d_out, transpose_a=True)
            d_x = tf.cast(tf.cast(tf.matmul(d_out, kernel, transpose_b=True), tf.float32) * slope, x.dtype)
            return d_x, d_kernel, tf.reduce_sum(d_out, axis=0)

        return tf.nn.bias_add(tf.matmul(activated, kernel), bias), grad

    return forward(x, kernel, bias)


def get_activation(name):
    """The activation function for a name (``"gelu"`` -> :func:`gelu`) or a callable (returned as is)."""
    if name == "gelu":
        return gelu
    return keras.activations.get(name)
