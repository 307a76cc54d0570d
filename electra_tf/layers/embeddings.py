"""Token, position and token-type embeddings with LayerNorm, dropout and projection."""

import keras
import tensorflow as tf

from electra_tf.layers.fast_dropout import FastDropout
from electra_tf.layers.fused_layer_norm import FusedLayerNorm


@keras.saving.register_keras_serializable(package="electra_tf")
class Embeddings(keras.layers.Layer):
    """The input embeddings of a BERT/ELECTRA encoder.

    ``LN(word[ids] + position[0..S) + type[token_type_ids])``, dropout, then a
    dense projection to ``hidden_size`` when the embeddings are narrower
    (ELECTRA-Small uses 128-wide embeddings under a 256-wide encoder).

    The word embedding may be passed in (``word_embedding``) to share it with
    another model: a ``keras.layers.Embedding`` for plain sharing, or a
    :class:`DisentangledEmbedding` for gradient-disentangled sharing. It is then
    not part of this layer's config.

    ``shared_block`` shares more, as the original ELECTRA does between its
    generator and discriminator: this layer then reads another
    :class:`Embeddings`' word, position and token-type tables and their
    LayerNorm (the same objects, under the same attribute names), and keeps
    only its own dropout and projection (``embeddings_project`` in the
    original, one per model since the widths differ).

    Args:
        vocab_size: number of token ids.
        embedding_size: width of the embedding tables.
        hidden_size: width of the output; a projection is added when it differs.
        max_position_embeddings: size of the absolute position table; 0 or
            None disables absolute positions (relative bias only).
        type_vocab_size: number of token types; 0 disables them.
        dropout: dropout rate after the LayerNorm.
        layer_norm_epsilon: LayerNorm epsilon.
        initializer_range: stddev of the truncated-normal initializers.
        word_embedding: optional layer mapping ids to ``embedding_size`` vectors.
        shared_block: optional :class:`Embeddings` whose tables and LayerNorm this layer reads.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:

    >>> emb = Embeddings(vocab_size=10, embedding_size=4, hidden_size=8)
    >>> emb(tf.constant([[2, 5, 3, 0]])).shape
    TensorShape([1, 4, 8])
    """

    def __init__(self, vocab_size, embedding_size, hidden_size, max_position_embeddings=0, type_vocab_size=2,
                 dropout=0.1, layer_norm_epsilon=1e-12, initializer_range=0.02, word_embedding=None, shared_block=None,
                 **kwargs):
        super().__init__(**kwargs)
        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        policy = self.dtype_policy
        if shared_block is not None:
            _check_shareable(shared_block, vocab_size, embedding_size, max_position_embeddings, type_vocab_size,
                             word_embedding)
            word_embedding = shared_block.word_embedding
        # === Layers ===
        if shared_block is not None:  # the other layer's objects, so each weight exists (and is tracked) once
            self.word_embedding = shared_block.word_embedding
            self.position_embedding = shared_block.position_embedding
            self.type_embedding = shared_block.type_embedding
            self.layer_norm = shared_block.layer_norm
        else:
            self.word_embedding = word_embedding or keras.layers.Embedding(
                vocab_size, embedding_size, embeddings_initializer=init, dtype=policy, name="word_embeddings")
            self.position_embedding = None
            if max_position_embeddings:
                self.position_embedding = keras.layers.Embedding(
                    max_position_embeddings, embedding_size, embeddings_initializer=init, dtype=policy,
                    name="position_embeddings")
            self.type_embedding = None
            if type_vocab_size:
                self.type_embedding = keras.layers.Embedding(
                    type_vocab_size, embedding_size, embeddings_initializer=init, dtype=policy,
                    name="token_type_embeddings")
            self.layer_norm = FusedLayerNorm(epsilon=layer_norm_epsilon, dtype=policy,
                                             name="embeddings_layer_norm")
        self.dropout_layer = FastDropout(dropout, dtype=policy)
        self.projection = None
        if embedding_size != hidden_size:
            self.projection = keras.layers.Dense(hidden_size, kernel_initializer=init, dtype=policy,
                                                 name="embeddings_projection")
        # === Config ===
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.shares_word_embedding = word_embedding is not None
        self.shares_block = shared_block is not None

    def build(self, input_shape):
        for layer in (self.word_embedding, self.position_embedding, self.type_embedding):
            if layer is not None and not layer.built:
                layer.build(input_shape)
        emb_shape = tuple(input_shape) + (self.embedding_size,)
        if not self.layer_norm.built:
            self.layer_norm.build(emb_shape)
        if self.projection is not None:
            self.projection.build(emb_shape)
        self.built = True

    def call(self, input_ids, token_type_ids=None, training=None):
        x = self.word_embedding(input_ids)
        if self.position_embedding is not None:
            x = x + self.position_embedding(tf.range(tf.shape(input_ids)[1]))[None]
        if self.type_embedding is not None:
            if token_type_ids is None:
                token_type_ids = tf.zeros_like(input_ids)
            x = x + self.type_embedding(token_type_ids)
        x = self.dropout_layer(self.layer_norm(x), training=training)
        if self.projection is not None:
            x = self.projection(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.hidden_size,)

    def get_config(self):
        if self.shares_word_embedding:
            raise NotImplementedError(f"Embeddings {self.name!r} reads another layer's embedding tables; a "
                                      "config round trip would untie it (rebuild the sharing in code)")
        config = super().get_config()
        config.update({
            "vocab_size": self.vocab_size,
            "embedding_size": self.embedding_size,
            "hidden_size": self.hidden_size,
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "initializer_range": self.initializer_range,
        })
        return config


def _check_shareable(block, vocab_size, embedding_size, max_position_embeddings, type_vocab_size, word_embedding):
    """Raises ValueError unless ``block`` has the tables this layer would have built."""
    if word_embedding is not None:
        raise ValueError("pass word_embedding or shared_block, not both (shared_block brings its word embedding)")
    if not isinstance(block, Embeddings):
        raise ValueError(f"shared_block must be an Embeddings layer, got {type(block).__name__}")
    mine = (vocab_size, embedding_size, max_position_embeddings or 0, type_vocab_size or 0)
    theirs = (block.vocab_size, block.embedding_size, block.max_position_embeddings or 0, block.type_vocab_size or 0)
    if mine != theirs:
        raise ValueError("shared_block has other tables: (vocab, width, positions, token types) "
                         f"{theirs} where this layer needs {mine}")
