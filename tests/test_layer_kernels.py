"""The hand-written kernels behind the layers give the values and gradients of the plain formulas."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.layers.activations import gelu, gelu_dense
from electra_tf.layers.attention import attend
from electra_tf.layers.fast_dropout import FastDropout, keep_mask
from electra_tf.layers.fused_layer_norm import FusedLayerNorm, layer_norm


def _value_and_grads(fn, *inputs):
    """``[fn(*inputs), d loss / d input ...]`` for a fixed, non-uniform upstream gradient."""
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        out = fn(*inputs)
        weights = tf.reshape(tf.sin(tf.range(tf.size(out), dtype=tf.float32)), tf.shape(out))
        loss = tf.reduce_sum(tf.cast(out, tf.float32) * weights)
    return [out, *tape.gradient(loss, list(inputs))]


def _close(a, b, atol):
    for x, y in zip(a, b):
        np.testing.assert_allclose(tf.cast(x, tf.float32).numpy(), tf.cast(y, tf.float32).numpy(), atol=atol)


def test_gelu_matches_keras_exact_gelu():
    x = tf.random.normal([64, 33]) * 3
    _close(_value_and_grads(gelu, x), _value_and_grads(lambda t: keras.activations.gelu(t, approximate=False), x),
           atol=1e-5)


def test_gelu_dense_matches_gelu_then_matmul():
    x, kernel, bias = tf.random.normal([16, 12]) * 2, tf.random.normal([12, 5]), tf.random.normal([5])
    reference = lambda x, k, b: tf.matmul(keras.activations.gelu(x, approximate=False), k) + b  # noqa: E731
    _close(_value_and_grads(gelu_dense, x, kernel, bias), _value_and_grads(reference, x, kernel, bias), atol=1e-4)


def test_gelu_kernels_in_bfloat16_round_the_float32_result_once():
    # bf16 inputs: the value is the float32 formula's rounded once to bf16 (one bf16 ulp, 2^-8 relative); the
    # input gradient is within a few ulps (the upstream gradient and the slope are bf16 too); dtypes are kept.
    x = tf.cast(tf.random.normal([64, 48]) * 3, tf.bfloat16)
    kernel, bias = tf.cast(tf.random.normal([48, 8]) * 0.2, tf.bfloat16), tf.cast(tf.random.normal([8]), tf.bfloat16)
    exact = lambda t: keras.activations.gelu(tf.cast(t, tf.float32), approximate=False)  # noqa: E731
    ours, reference = _value_and_grads(gelu, x), _value_and_grads(exact, x)
    assert ours[0].dtype == tf.bfloat16 and ours[1].dtype == tf.bfloat16
    for a, b, rtol in zip(ours, reference, (2 ** -8, 2 ** -6)):
        a, b = tf.cast(a, tf.float32).numpy(), tf.cast(b, tf.float32).numpy()
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6)
    dense = _value_and_grads(gelu_dense, x, kernel, bias)
    assert all(t.dtype == tf.bfloat16 for t in dense)
    f32 = [tf.cast(t, tf.float32) for t in (x, kernel, bias)]
    want = _value_and_grads(lambda t, k, b: tf.matmul(exact(t), k) + b, *f32)
    for a, b in zip(dense, want):  # bf16 matmuls: a few bf16 ulps of the float32 result
        a, b = tf.cast(a, tf.float32).numpy(), b.numpy()
        assert np.max(np.abs(a - b)) <= 0.03 * np.max(np.abs(b)), np.max(np.abs(a - b)) / np.max(np.abs(b))


def test_layer_norm_matches_keras_layer_normalization():
    x = tf.random.normal([4, 7, 16]) * 5 + 2
    ours, theirs = FusedLayerNorm(epsilon=1e-12), keras.layers.LayerNormalization(epsilon=1e-12)
    ours.build(x.shape), theirs.build(x.shape)
    gamma, beta = tf.random.normal([16]), tf.random.normal([16])
    for layer in (ours, theirs):
        layer.gamma.assign(gamma), layer.beta.assign(beta)
    _close(_value_and_grads(lambda t: ours(t), x), _value_and_grads(lambda t: theirs(t), x), atol=1e-4)
    _close(_value_and_grads(lambda t, g, b: layer_norm(t, g, b, 1e-12), x, gamma, beta)[2:],
           _value_and_grads(lambda t, g, b: keras.ops.layer_normalization(t, g, b, epsilon=1e-12), x, gamma, beta)[2:],
           atol=1e-3)


def test_layer_norm_under_bfloat16_policy_computes_in_float32():
    layer = FusedLayerNorm(epsilon=1e-12, dtype="mixed_bfloat16")
    y = layer(tf.cast(tf.random.normal([2, 3, 8]) * 100 + 1000, tf.bfloat16))
    assert y.dtype == tf.bfloat16
    assert abs(float(tf.reduce_mean(tf.cast(y, tf.float32)))) < 0.05


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_attend_matches_the_formula(dtype):
    b, h, s, d = 3, 2, 7, 4
    q, k, v = (tf.cast(tf.random.normal([b, h, s, d]), dtype) for _ in range(3))
    bias = tf.random.normal([1, h, s, s])
    mask = tf.constant([[1] * s, [1] * 4 + [0] * 3, [1] * 6 + [0]], tf.float32)
    additive = (1.0 - mask[:, None, None, :]) * -1e9
    keep = tf.random.uniform([b, h, s, s]) > 0.3

    def reference(q, k, v, bias):
        probs = tf.nn.softmax(tf.cast(tf.matmul(q, k, transpose_b=True), tf.float32) + bias + additive)
        return tf.matmul(tf.cast(tf.where(keep, probs / 0.7, 0.0), dtype), v)

    ours = lambda q, k, v, bias: attend(q, k, v, bias, additive, keep, 1 / 0.7)  # noqa: E731
    _close(_value_and_grads(ours, q, k, v, bias), _value_and_grads(reference, q, k, v, bias),
           atol=1e-5 if dtype == tf.float32 else 0.1)


def test_keep_mask_rate_and_dropout_scaling():
    keep = keep_mask(tf.constant([500, 400]), 0.1, tf.constant([3, 4]))
    assert keep.shape == (500, 400) and keep.dtype == tf.bool
    assert abs(float(tf.reduce_mean(tf.cast(keep, tf.float32))) - 0.9) < 0.003
    odd = keep_mask(tf.constant([3, 5]), 0.5, tf.constant([1, 2]))  # an odd number of elements
    assert odd.shape == (3, 5)
    drop = FastDropout(0.25, seed=7)
    x = tf.ones([64, 64])
    y = drop(x, training=True).numpy()
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.75], rtol=1e-6)
    assert drop(x, training=False) is x
    assert not np.array_equal(y, drop(x, training=True).numpy())  # a new mask on every call


@pytest.mark.parametrize("shape", [[8, 5, 3], [8, 2, 7, 7], [8, 64]])
def test_keep_mask_keyed_by_row_is_the_same_however_the_rows_are_split(shape):
    seed = tf.constant([5, 6])
    whole = keep_mask(tf.constant(shape), 0.3, seed, first_row=tf.constant(0, tf.int64)).numpy()
    assert abs(whole.mean() - 0.7) < 0.1
    rest = tf.constant([3, *shape[1:]])
    parts = [keep_mask(tf.constant([5, *shape[1:]]), 0.3, seed, first_row=tf.constant(0, tf.int64)),
             keep_mask(rest, 0.3, seed, first_row=tf.constant(5, tf.int64))]
    np.testing.assert_array_equal(whole, np.concatenate([p.numpy() for p in parts]))
    assert not np.array_equal(whole[:4], whole[4:])  # rows differ


def test_dropout_keyed_by_example_is_fixed_by_step_and_row_and_leaves_the_seed_state():
    from electra_tf.layers.fast_dropout import keyed_by_example

    drop = FastDropout(0.5, seed=3)
    x = tf.ones([6, 16])
    state = drop.seed_generator.state.numpy().copy()
    with keyed_by_example(4, 0):
        whole = drop(x, training=True).numpy()
        again = drop(x, training=True).numpy()
    with keyed_by_example(4, 2):
        tail = drop(x[2:], training=True).numpy()
    with keyed_by_example(5, 0):
        next_step = drop(x, training=True).numpy()
    np.testing.assert_array_equal(whole, again)
    np.testing.assert_array_equal(whole[2:], tail)
    assert not np.array_equal(whole, next_step)
    np.testing.assert_array_equal(drop.seed_generator.state.numpy(), state)


def test_dropout_keyed_by_example_draws_the_same_masks_under_xla():
    from electra_tf.layers.fast_dropout import keyed_by_example

    drop = FastDropout(0.1, seed=3)

    def masked(x, step, first):
        with keyed_by_example(step, first):
            return drop(x, training=True)

    args = (tf.ones([4, 32, 32]), tf.constant(1, tf.int64), tf.constant(2, tf.int64))
    np.testing.assert_array_equal(masked(*args).numpy(), tf.function(masked, jit_compile=True)(*args).numpy())
