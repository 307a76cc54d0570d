"""The transformer encoder shared by the generator and the discriminator."""

import keras
import tensorflow as tf

from electra_tf.config.schema import INITS
from electra_tf.layers.embeddings import Embeddings
from electra_tf.layers.relative_position_bias import RelativePositionBias
from electra_tf.layers.transformer_block import TransformerBlock


@keras.saving.register_keras_serializable(package="electra_tf")
class Encoder(keras.Model):
    """A BERT/ELECTRA transformer encoder with optional T5 relative position bias.

    The relative position bias is computed once per forward pass and added in
    every layer (T5 shares one bias table across layers). The padding mask is
    ``input_mask`` when given, else ``input_ids != 0``.

    Args:
        vocab_size: number of token ids.
        hidden_size: width of the transformer.
        num_layers: number of transformer blocks.
        num_heads: attention heads per block.
        intermediate_size: feed-forward width (default 4x hidden).
        embedding_size: embedding width (default hidden; projected when it differs).
        dropout: residual and embedding dropout rate.
        attention_dropout: dropout rate on attention probabilities.
        activation: feed-forward activation.
        initializer_range: stddev of the truncated-normal initializers.
        layer_norm_epsilon: LayerNorm epsilon.
        max_position_embeddings: longest sequence; size of the absolute table.
        absolute_positions: whether to add absolute position embeddings.
        relative_buckets: T5 relative position buckets (0 disables).
        relative_max_distance: distance from which positions share a bucket.
        type_vocab_size: number of token types (0 disables).
        word_embedding: optional shared word-embedding layer (see ``Embeddings``).
        shared_embeddings: optional ``Embeddings`` of another encoder whose word, position and
            token-type tables and LayerNorm this encoder reads (the original ELECTRA's generator).
        init: ``"normal"`` (truncated normal, BERT's) or ``"admin"``: the same weights, and each
            block's shortcuts scaled by Admin's ``ω``, which :meth:`profile_admin` sets.
        **kwargs: passed to ``keras.Model``.

    Example:

    >>> enc = Encoder(vocab_size=10, hidden_size=8, num_layers=1, num_heads=2)
    >>> out = enc({"input_ids": tf.constant([[2, 5, 3, 0]])})
    >>> out["sequence_output"].shape, out["pooled_output"].shape
    (TensorShape([1, 4, 8]), TensorShape([1, 8]))
    """

    def __init__(self, vocab_size, hidden_size, num_layers, num_heads, intermediate_size=None,
                 embedding_size=None, dropout=0.1, attention_dropout=0.1, activation="gelu",
                 initializer_range=0.02, layer_norm_epsilon=1e-12, max_position_embeddings=512,
                 absolute_positions=False, relative_buckets=32, relative_max_distance=128, type_vocab_size=2,
                 word_embedding=None, init="normal", shared_embeddings=None, **kwargs):
        super().__init__(**kwargs)
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        intermediate_size = intermediate_size or 4 * hidden_size
        embedding_size = embedding_size or hidden_size
        policy = self.dtype_policy
        # === Layers ===
        self.embeddings = Embeddings(
            vocab_size, embedding_size, hidden_size,
            max_position_embeddings=max_position_embeddings if absolute_positions else 0,
            type_vocab_size=type_vocab_size, dropout=dropout, layer_norm_epsilon=layer_norm_epsilon,
            initializer_range=initializer_range, word_embedding=word_embedding, shared_block=shared_embeddings,
            dtype=policy, name="embeddings")
        self.relative_bias = None
        if relative_buckets:
            self.relative_bias = RelativePositionBias(num_heads, relative_buckets, relative_max_distance,
                                                      initializer_range=initializer_range, dtype=policy,
                                                      name="relative_position_bias")
        self.blocks = [
            TransformerBlock(num_heads, intermediate_size, dropout=dropout, attention_dropout=attention_dropout,
                             activation=activation, layer_norm_epsilon=layer_norm_epsilon,
                             initializer_range=initializer_range, admin_residual=init == "admin", dtype=policy,
                             name=f"transformer_block_{i}")
            for i in range(num_layers)
        ]
        # Keras 3 keeps a list of layers out of TensorFlow's object graph, so a
        # tf.train.Checkpoint(discriminator=model) would silently skip the blocks: name each one.
        for i, block in enumerate(self.blocks):
            setattr(self, f"block_{i}", block)
        # === Config ===
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.embedding_size = embedding_size
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.initializer_range = initializer_range
        self.layer_norm_epsilon = layer_norm_epsilon
        self.max_position_embeddings = max_position_embeddings
        self.absolute_positions = absolute_positions
        self.relative_buckets = relative_buckets
        self.relative_max_distance = relative_max_distance
        self.type_vocab_size = type_vocab_size
        self.init = init

    def build(self, input_shape=None):
        shape = (None, None)
        self.embeddings.build(shape)
        if self.relative_bias is not None:
            self.relative_bias.build()
        for block in self.blocks:
            block.build((None, None, self.hidden_size))
        self.built = True

    def _embed(self, inputs, training):
        """The embedded input, the relative bias (or None) and the padding mask every block reads."""
        input_ids = inputs["input_ids"]
        mask = inputs.get("input_mask")
        if mask is None:
            mask = tf.cast(tf.not_equal(input_ids, 0), tf.int32)
        x = self.embeddings(input_ids, inputs.get("token_type_ids"), training=training)
        bias = self.relative_bias(x) if self.relative_bias is not None else None
        return x, bias, mask

    def call(self, inputs, training=None):
        """inputs: dict with ``input_ids`` [B, S] and optionally ``input_mask`` and
        ``token_type_ids``. Returns ``sequence_output`` [B, S, H] and
        ``pooled_output`` [B, H] (the first token's hidden state)."""
        x, bias, mask = self._embed(inputs, training)
        for block in self.blocks:
            if training and self.recompute_blocks:
                x = _recomputed(block, x, bias, mask)
            else:
                x = block(x, attention_bias=bias, padding_mask=mask, training=training)
        return {"sequence_output": x, "pooled_output": x[:, 0]}

    def profile_admin(self, inputs):
        """Admin's initialisation: one inference pass over ``inputs`` that sets every block's ``ω``.

        The sublayers are visited in order with a running ratio that starts at
        1; each shortcut's ``ω`` is the ratio so far, so ``ω_i² = Var[x_0] +
        Σ_{j<i} Var[f_j(x_{j-1})]`` (Liu et al., 2020, "Understanding the
        Difficulty of Training Transformers", section 5). Returns the list of
        ``(ω_attention, ω_ffn)`` per block.
        """
        if self.init != "admin":
            raise ValueError(f"profile_admin needs an encoder built with init='admin', not {self.init!r}")
        x, bias, mask = self._embed(inputs, training=False)
        ratio, omegas = 1.0, []
        for block in self.blocks:
            x, ratio = block.profile_admin(x, ratio, attention_bias=bias, padding_mask=mask)
            omegas.append((float(block.attention_omega.numpy()), float(block.ffn_omega.numpy())))
        return omegas

    #: When True, training keeps only each block's input for the backward pass and
    #: recomputes the block's forward pass there (``tf.recompute_grad``): the
    #: activations of one block instead of all of them, for one more forward pass.
    #: A training setting (``train.recompute``), not part of the architecture or config.
    recompute_blocks = False

    @property
    def word_embedding(self):
        return self.embeddings.word_embedding

    def get_config(self):
        """The constructor arguments; refused when the word embedding is another model's."""
        if self.embeddings.shares_word_embedding:
            raise NotImplementedError(f"Encoder {self.name!r} reads a word embedding shared with another model; a "
                                      "config round trip would untie it. untied_config() gives the config of an "
                                      "encoder of the same architecture owning its table")
        return self.untied_config()

    def untied_config(self):
        """The config of an encoder of this architecture that owns its word embedding."""
        config = super().get_config()
        config.update({
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "embedding_size": self.embedding_size,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "activation": self.activation,
            "initializer_range": self.initializer_range,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "max_position_embeddings": self.max_position_embeddings,
            "absolute_positions": self.absolute_positions,
            "relative_buckets": self.relative_buckets,
            "relative_max_distance": self.relative_max_distance,
            "type_vocab_size": self.type_vocab_size,
            "init": self.init,
        })
        return config


def _recomputed(block, x, bias, mask):
    """``block(x)`` in training mode whose activations are recomputed in the backward pass.

    The dropout seeds are drawn once, outside the recomputed function, so
    the backward pass replays the forward pass's masks exactly. The padding
    mask is a constant of the function; the relative bias, a trainable
    variable's output, is an input so it receives its gradient.
    """
    seeds = block.draw_seeds(training=True)

    def run(inputs, *maybe_bias):
        return block(inputs, attention_bias=maybe_bias[0] if maybe_bias else None, padding_mask=mask,
                     training=True, seeds=seeds)

    return tf.recompute_grad(run)(x, *([] if bias is None else [bias]))
