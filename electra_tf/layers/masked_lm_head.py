"""The generator's masked-LM head, tied to its word embedding."""

import keras
import tensorflow as tf

from electra_tf.layers.activations import get_activation
from electra_tf.layers.fused_layer_norm import FusedLayerNorm


@keras.saving.register_keras_serializable(package="electra_tf")
class MaskedLMHead(keras.layers.Layer):
    """Predicts token ids at given positions with output weights tied to the input embedding.

    The hidden states are gathered at ``positions`` *before* the vocabulary
    projection, so its cost scales with the number of masked tokens, not with
    the sequence length. ``dense -> activation -> LayerNorm -> @ E^T + bias``;
    logits are float32.

    Args:
        embedding: the ``keras.layers.Embedding`` whose table is the output layer.
        activation: activation of the transform.
        layer_norm_epsilon: LayerNorm epsilon.
        initializer_range: stddev of the truncated-normal initializer.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:

    >>> table = keras.layers.Embedding(10, 4)
    >>> head = MaskedLMHead(table)
    >>> head(tf.random.normal([2, 6, 8]), tf.constant([[1, 2], [0, 5]])).shape
    TensorShape([2, 2, 10])
    """

    def __init__(self, embedding, activation="gelu", layer_norm_epsilon=1e-12, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        # === Layers ===
        self.embedding = embedding
        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        self.transform = keras.layers.Dense(embedding.output_dim, activation=get_activation(activation),
                                            kernel_initializer=init, dtype=self.dtype_policy, name="transform")
        self.layer_norm = FusedLayerNorm(epsilon=layer_norm_epsilon, dtype=self.dtype_policy,
                                         name="transform_layer_norm")
        # === Config ===
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range

    def build(self, sequence_output_shape, positions_shape=None):
        self.transform.build(sequence_output_shape)
        self.layer_norm.build(tuple(sequence_output_shape[:-1]) + (self.embedding.output_dim,))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.embedding.input_dim,),
                                           initializer="zeros")
        self.built = True

    def call(self, sequence_output, positions):
        """sequence_output [B, S, H], positions [B, P] int -> float32 logits [B, P, vocab]."""
        shape = tf.shape(positions)
        gathered = tf.gather(sequence_output, positions, batch_dims=1)  # [B, P, H]
        h = self.layer_norm(self.transform(gathered))
        # A 2-D matmul: a batched one would broadcast the table and reduce a
        # [B, vocab, E] gradient for it.
        flat = tf.reshape(h, [-1, self.embedding.output_dim])
        table = tf.cast(self.embedding.embeddings, h.dtype)
        logits = tf.nn.bias_add(tf.cast(tf.matmul(flat, table, transpose_b=True), tf.float32),
                                tf.cast(self.output_bias, tf.float32))
        return tf.reshape(logits, [shape[0], shape[1], self.embedding.input_dim])

    def compute_output_shape(self, sequence_output_shape, positions_shape):
        return tuple(positions_shape) + (self.embedding.input_dim,)

    def get_config(self):
        # As Model Garden's MaskedLM: the output weights are another layer's table, which a config cannot
        # hold without untying it; the model that owns both (Generator) is what serialises.
        raise NotImplementedError(f"MaskedLMHead {self.name!r} is tied to the embedding "
                                  f"{self.embedding.name!r} and cannot be serialised on its own; serialise the "
                                  "Generator that owns both")
