"""Every public layer and model through the shared harness (tests/layer_harness.py); tied layers refuse to serialise."""

import keras
import pytest
import tensorflow as tf
from layer_harness import run_layer_test

from electra_tf import layers
from electra_tf.models import Discriminator, Generator
from electra_tf.networks import Encoder

B, S, H = 2, 6, 16
HIDDEN = tf.random.stateless_normal([B, S, H], seed=[1, 2])
IDS = tf.constant([[2, 5, 6, 7, 3, 0], [2, 8, 9, 3, 0, 0]], tf.int32)
MASK = tf.cast(IDS != 0, tf.int32)
POSITIONS = tf.constant([[1, 2], [1, 0]], tf.int32)
ENCODER = dict(vocab_size=12, hidden_size=H, num_layers=1, num_heads=2, intermediate_size=32, dropout=0.0,
               attention_dropout=0.0, max_position_embeddings=16, relative_buckets=8, relative_max_distance=16)

# name: (class, constructor arguments, positional inputs, keyword inputs, output shape, trainable weights)
CASES = {
    # the fused qkv projection and the output projection, kernel and bias each.
    "attention": (layers.MultiHeadSelfAttention, dict(num_heads=2), (HIDDEN,), dict(padding_mask=MASK),
                  (B, S, H), 4),
    # attention (4) + 2 LayerNorms (4) + 2 feed-forward Dense (4).
    "transformer_block": (layers.TransformerBlock, dict(num_heads=2, intermediate_size=32, dropout=0.0,
                                                        attention_dropout=0.0),
                          (HIDDEN,), dict(padding_mask=MASK), (B, S, H), 12),
    # the same 12, and Admin's two shortcut scales, which are not trainable.
    "transformer_block_admin": (layers.TransformerBlock, dict(num_heads=2, intermediate_size=32, dropout=0.0,
                                                              attention_dropout=0.0, admin_residual=True),
                                (HIDDEN,), dict(padding_mask=MASK), (B, S, H), 12),
    # word, position and type tables, LayerNorm (2), projection (2).
    "embeddings": (layers.Embeddings, dict(vocab_size=12, embedding_size=8, hidden_size=H, max_position_embeddings=S,
                                           dropout=0.0), (IDS,), {}, (B, S, H), 7),
    "relative_position_bias": (layers.RelativePositionBias, dict(num_heads=2, num_buckets=8, max_distance=16),
                               (HIDDEN,), {}, (1, 2, S, S), 1),
    # the transform and the logit, kernel and bias each.
    "replaced_token_head": (layers.ReplacedTokenHead, dict(hidden_size=H), (HIDDEN,), {}, (B, S), 4),
    # word and type tables, LayerNorm (2), relative bias (1), one block (12); first output: pooled_output.
    "encoder": (Encoder, ENCODER, ({"input_ids": IDS, "input_mask": MASK},), {}, (B, H), 17),
    "encoder_admin": (Encoder, {**ENCODER, "init": "admin"}, ({"input_ids": IDS, "input_mask": MASK},), {}, (B, H),
                      17),
    # encoder (17) + replaced-token head (4).
    "discriminator": (Discriminator, ENCODER, ({"input_ids": IDS, "input_mask": MASK},), {}, (B, S), 21),
    # encoder (17) + masked-LM head: transform (2), LayerNorm (2), output bias (1); the output matrix is the table.
    "generator": (Generator, ENCODER, ({"input_ids": IDS, "input_mask": MASK, "masked_positions": POSITIONS},), {},
                  (B, 2, 12), 22),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer(name):
    cls, kwargs, inputs, call_kwargs, shape, weights = CASES[name]
    run_layer_test(cls, kwargs, inputs, shape, weights, call_kwargs=call_kwargs)


def _table():
    table = keras.layers.Embedding(12, 8, name="shared_table")
    table.build((None, None))
    return table


# Tied layers: every check but the round trips they refuse. name: (class, table argument, inputs, shape, weights).
TIED = {
    # transform (2), LayerNorm (2), output bias (1), and the table it reads (1).
    "masked_lm_head": (layers.MaskedLMHead, "embedding", (HIDDEN[..., :8], POSITIONS), (B, 2, 12), 6),
    # its own zero-initialised delta (1) and the shared table (1), which gets no gradient through it.
    "disentangled_embedding": (layers.DisentangledEmbedding, "shared", (IDS,), (B, S, 8), 2),
}


@pytest.mark.parametrize("name", sorted(TIED))
def test_tied_layer(name):
    cls, arg, inputs, shape, weights = TIED[name]
    run_layer_test(cls, {arg: _table()}, inputs, shape, weights, serializable=False)


@pytest.mark.parametrize("make", [
    lambda: layers.MaskedLMHead(_table()),
    lambda: layers.DisentangledEmbedding(_table()),
    lambda: layers.Embeddings(vocab_size=12, embedding_size=8, hidden_size=H, word_embedding=_table()),
    lambda: Encoder(word_embedding=_table(), **{**ENCODER, "hidden_size": 8, "intermediate_size": 16}),
    lambda: Generator(word_embedding=_table(), **{**ENCODER, "hidden_size": 8, "intermediate_size": 16}),
], ids=["masked_lm_head", "disentangled_embedding", "embeddings", "encoder", "generator"])
def test_a_layer_tied_to_another_layers_weights_refuses_to_serialise(make):
    layer = make()
    with pytest.raises(NotImplementedError, match="tied|shared|another"):
        layer.get_config()
