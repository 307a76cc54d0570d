"""Every layer: config round trip, shapes, padding invariance, and that one step trains every variable."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from official.nlp.modeling.layers.position_embedding import _relative_position_bucket as garden_bucket

from electra_tf import layers

B, S, H = 2, 7, 16
IDS = tf.constant([[2, 5, 6, 7, 3, 0, 0], [2, 8, 9, 3, 0, 0, 0]], tf.int32)
MASK = tf.cast(IDS != 0, tf.int32)


@pytest.mark.parametrize("length,buckets,distance", [(16, 8, 16), (64, 32, 128), (512, 32, 128), (512, 128, 256),
                                                     (300, 16, 20)])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_buckets_match_model_garden(length, buckets, distance, bidirectional):
    rel = tf.range(length)[None, :] - tf.range(length)[:, None]
    ours = layers.relative_position_bucket(rel, bidirectional, buckets, distance).numpy()
    theirs = garden_bucket(rel, bidirectional, buckets, distance).numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert ours.min() >= 0 and ours.max() < buckets


def _hidden():
    return tf.random.stateless_normal([B, S, H], seed=[1, 2])


# Each case: (factory, call(layer) -> output, inputs that the gradient flows from)
def _attention():
    return layers.MultiHeadSelfAttention(num_heads=2, dropout=0.0)


def _block():
    return layers.TransformerBlock(num_heads=2, intermediate_size=32, dropout=0.0, attention_dropout=0.0)


def _embeddings():
    return layers.Embeddings(vocab_size=10, embedding_size=8, hidden_size=H, max_position_embeddings=S,
                             dropout=0.0)


def _rtd_head():
    return layers.ReplacedTokenHead(hidden_size=H)


def _mlm_head():
    table = keras.layers.Embedding(10, 8)
    table.build((None, None))
    return layers.MaskedLMHead(table)


def _bias():
    return layers.RelativePositionBias(num_heads=2, num_buckets=8, max_distance=16)


POSITIONS = tf.constant([[1, 2], [1, 0]])
CASES = {
    "attention": (_attention, lambda layer: layer(_hidden(), attention_bias=None, padding_mask=MASK), (B, S, H)),
    "block": (_block, lambda layer: layer(_hidden(), padding_mask=MASK), (B, S, H)),
    "embeddings": (_embeddings, lambda layer: layer(IDS), (B, S, H)),
    "rtd_head": (_rtd_head, lambda layer: layer(_hidden()), (B, S)),
    "mlm_head": (_mlm_head, lambda layer: layer(_hidden(), POSITIONS), (B, 2, 10)),
    "relative_bias": (_bias, lambda layer: layer(_hidden()), (1, 2, S, S)),
}


# The masked-LM head is tied to another layer's table: it refuses to serialise
# (tests/test_layer_harness.py) rather than round-trip untied.
@pytest.mark.parametrize("name", sorted(set(CASES) - {"mlm_head"}))
def test_config_round_trip_same_outputs(name):
    make, call, shape = CASES[name]
    layer = make()
    out = call(layer)
    assert tuple(out.shape) == shape
    clone = layer.__class__.from_config(layer.get_config())
    call(clone)  # build
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(call(clone).numpy(), out.numpy(), rtol=0, atol=1e-6)
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_gradient_step_changes_every_variable(name):
    make, call, _ = CASES[name]
    layer = make()
    call(layer)
    before = [v.numpy().copy() for v in layer.trainable_variables]
    assert before, f"{name} has no trainable variables"
    opt = keras.optimizers.SGD(0.1)
    with tf.GradientTape() as tape:
        out = call(layer)
        loss = tf.reduce_sum(tf.square(out - 0.3))
    grads = tape.gradient(loss, layer.trainable_variables)
    opt.apply_gradients(zip(grads, layer.trainable_variables))
    for v, b in zip(layer.trainable_variables, before):
        assert np.abs(v.numpy() - b).max() > 0, f"{v.path} did not change"


@pytest.mark.parametrize("name", ["attention", "block"])
def test_padded_positions_do_not_change_real_outputs(name):
    make, _, _ = CASES[name]
    layer = make()
    x = _hidden()
    other = tf.where(tf.cast(MASK, tf.bool)[..., None], x, 100.0 * tf.ones_like(x))
    a = layer(x, padding_mask=MASK)
    b = layer(other, padding_mask=MASK)
    real = MASK.numpy().astype(bool)
    np.testing.assert_array_equal(a.numpy()[real], b.numpy()[real])


def test_attention_bias_changes_output_and_softmax_is_float32_under_bf16():
    layer = layers.MultiHeadSelfAttention(num_heads=2, dtype="mixed_bfloat16")
    x = _hidden()
    bias = tf.random.stateless_normal([1, 2, S, S], seed=[3, 4])
    assert layer(x).dtype == tf.bfloat16
    assert not np.allclose(layer(x).numpy(), layer(x, attention_bias=bias).numpy())


def test_embeddings_projection_only_when_sizes_differ():
    same = layers.Embeddings(vocab_size=10, embedding_size=H, hidden_size=H)
    same(IDS)
    assert same.projection is None
    narrow = _embeddings()
    narrow(IDS)
    assert narrow.projection is not None and narrow.projection.kernel.shape == (8, H)


def test_disentangled_embedding_starts_equal_and_routes_gradients():
    table = keras.layers.Embedding(10, 4)
    table.build((None, None))
    gdes = layers.DisentangledEmbedding(table)
    np.testing.assert_array_equal(gdes(IDS).numpy(), table(IDS).numpy())
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(gdes(IDS) ** 2)
    g_table, g_delta = tape.gradient(loss, [table.embeddings, gdes.delta])
    assert g_table is None
    assert np.abs(tf.convert_to_tensor(g_delta).numpy()).sum() > 0


def test_mlm_head_is_tied_to_the_embedding_table():
    head = _mlm_head()
    head(_hidden(), POSITIONS)
    own = {id(v) for v in head.trainable_variables}
    assert id(head.embedding.embeddings) in own
    assert head.embedding.embeddings.shape == (10, 8)
