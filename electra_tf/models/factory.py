"""Builds the generator and discriminator a config describes (the only place models meet the config)."""

import keras
import tensorflow as tf

from electra_tf import seeds
from electra_tf.config import ElectraConfig
from electra_tf.data.vocab import CLS_ID, MASK_ID, SEP_ID
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
        relative_max_distance=m.relative_max_distance, type_vocab_size=m.type_vocab_size, init=m.init,
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


def admin_profile_batch(cfg: ElectraConfig, batch_size: int = 8) -> dict:
    """The batch Admin's profiling pass reads: ``[CLS]`` + tokens drawn uniformly from the vocabulary + ``[SEP]``.

    Seeded by ``train.seed`` alone, so every worker and every rebuild of a
    config computes the same ``ω`` without reading data. At initialisation the
    embedding rows are independent draws, so these tokens give the sublayer
    variances real text would, up to sampling noise.
    """
    length = min(cfg.data.max_seq_length, 128)
    stream = seeds.sampling_stream(cfg.train.seed, seeds.ADMIN_PROFILE)
    body = tf.random.stateless_uniform([batch_size, length - 2], seed=[stream, 0],
                                       minval=MASK_ID + 1, maxval=cfg.model.vocab_size, dtype=tf.int32)
    ids = tf.concat([tf.fill([batch_size, 1], CLS_ID), body, tf.fill([batch_size, 1], SEP_ID)], axis=1)
    return {"input_ids": ids, "input_mask": tf.ones_like(ids)}


def build_models(cfg: ElectraConfig, dtype=None, profile_admin: bool = True):
    """Returns ``(generator, discriminator)``, built, with the config's embedding sharing.

    ``none``: independent tables. ``shared``: one word-embedding table used by
    both (joint mode only). ``gdes``: the generator owns the table; the
    discriminator reads it through a :class:`DisentangledEmbedding` (stopped
    gradient + its own zero-initialised delta). ``all``: the original ELECTRA's
    sharing: the generator reads the discriminator's word, position and
    token-type tables and their LayerNorm (joint mode only); each model keeps
    its own projection to its width.

    With ``model.init: admin`` both encoders' ``ω`` are set by one profiling
    pass on :func:`admin_profile_batch`; ``profile_admin=False`` skips it
    where the weights, ``ω`` included, are about to be restored.
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
    if cfg.embedding_sharing == "all":
        # The block is the discriminator's (``electra/embeddings`` in the original); the generator reads it.
        discriminator = Discriminator(dtype=dtype, **encoder_kwargs(cfg, "discriminator"))
        generator = Generator(shared_embeddings=discriminator.encoder.embeddings, dtype=dtype,
                              **encoder_kwargs(cfg, "generator"))
    else:
        generator = Generator(word_embedding=shared_table, dtype=dtype, **encoder_kwargs(cfg, "generator"))
        discriminator = Discriminator(word_embedding=disc_table, dtype=dtype,
                                      **encoder_kwargs(cfg, "discriminator"))
    generator.build()
    discriminator.build()
    if cfg.model.init == "admin" and profile_admin:
        batch = admin_profile_batch(cfg)
        generator.encoder.profile_admin(batch)
        discriminator.encoder.profile_admin(batch)
    # A training setting, not architecture: recompute each block's forward pass in the backward pass.
    generator.encoder.recompute_blocks = discriminator.encoder.recompute_blocks = cfg.train.recompute
    return generator, discriminator
