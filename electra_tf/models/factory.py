"""Builds the generator and discriminator a config describes (the only place models meet the config)."""

import keras

from electra_tf.config import ElectraConfig
from electra_tf.layers.disentangled_embedding import DisentangledEmbedding
from electra_tf.models.discriminator import Discriminator
from electra_tf.models.generator import Generator


def encoder_kwargs(cfg: ElectraConfig, which: str) -> dict:
    """Plain constructor arguments of the ``"generator"`` or ``"discriminator"`` encoder."""
    m = cfg.model
    if not isinstance(m.vocab_size, int):
        raise ValueError("model.vocab_size is 'auto': resolve it from the data manifest before building models")
    kwargs = dict(
        vocab_size=m.vocab_size, embedding_size=m.embedding_size, dropout=m.dropout,
        attention_dropout=m.attention_dropout, activation=m.activation, initializer_range=m.initializer_range,
        layer_norm_epsilon=m.layer_norm_epsilon, max_position_embeddings=m.max_position_embeddings,
        absolute_positions=m.absolute_positions, relative_buckets=m.relative_buckets,
        relative_max_distance=m.relative_max_distance, type_vocab_size=m.type_vocab_size,
    )
    if which == "discriminator":
        kwargs.update(hidden_size=m.hidden_size, num_layers=m.num_layers, num_heads=m.num_heads,
                      intermediate_size=m.intermediate_size)
    elif which == "generator":
        g = cfg.generator_dims()
        kwargs.update(hidden_size=g.hidden_size, num_layers=g.num_layers, num_heads=g.num_heads,
                      intermediate_size=g.intermediate_size)
    else:
        raise ValueError(f"which must be 'generator' or 'discriminator', got {which!r}")
    return kwargs


def build_models(cfg: ElectraConfig, dtype=None):
    """Returns ``(generator, discriminator)``, built, with the config's embedding sharing.

    ``none``: independent tables. ``shared``: one word-embedding table used by
    both (joint mode only). ``gdes``: the generator owns the table; the
    discriminator reads it through a :class:`DisentangledEmbedding` (stopped
    gradient + its own zero-initialised delta).
    """
    shared_table = None
    if cfg.embedding_sharing in ("shared", "gdes"):
        m = cfg.model
        shared_table = keras.layers.Embedding(
            m.vocab_size, m.embedding_size, embeddings_initializer=keras.initializers.TruncatedNormal(
                stddev=m.initializer_range), dtype=dtype, name="word_embeddings")
        shared_table.build((None, None))
    disc_table = shared_table
    if cfg.embedding_sharing == "gdes":
        disc_table = DisentangledEmbedding(shared_table, dtype=dtype, name="gdes_word_embeddings")
        disc_table.build((None, None))
    generator = Generator(word_embedding=shared_table, dtype=dtype, **encoder_kwargs(cfg, "generator"))
    discriminator = Discriminator(word_embedding=disc_table, dtype=dtype, **encoder_kwargs(cfg, "discriminator"))
    generator.build()
    discriminator.build()
    # A training setting, not architecture: recompute each block's forward pass in the backward pass.
    generator.encoder.recompute_blocks = discriminator.encoder.recompute_blocks = cfg.train.recompute
    return generator, discriminator
