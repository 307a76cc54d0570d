"""The post-LayerNorm transformer block of BERT and ELECTRA."""

import keras
import tensorflow as tf

from electra_tf.layers.activations import gelu_dense, get_activation
from electra_tf.layers.attention import MultiHeadSelfAttention
from electra_tf.layers.fast_dropout import FastDropout
from electra_tf.layers.fused_layer_norm import FusedLayerNorm


@keras.saving.register_keras_serializable(package="electra_tf")
class TransformerBlock(keras.layers.Layer):
    """Self-attention and a feed-forward network, each followed by residual + LayerNorm.

    ``x = LN(x + Dropout(Attention(x)))``; ``x = LN(x + Dropout(W2 act(W1 x)))``.

    Args:
        num_heads: number of attention heads.
        intermediate_size: width of the feed-forward hidden layer.
        dropout: dropout rate on the two residual branches.
        attention_dropout: dropout rate on the attention probabilities.
        activation: feed-forward activation (a Keras activation name).
        layer_norm_epsilon: epsilon of both LayerNorms.
        initializer_range: stddev of the truncated-normal kernel initializer.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:

    >>> block = TransformerBlock(num_heads=2, intermediate_size=16)
    >>> block(tf.random.normal([3, 5, 8])).shape
    TensorShape([3, 5, 8])
    """

    def __init__(self, num_heads, intermediate_size, dropout=0.1, attention_dropout=0.1, activation="gelu",
                 layer_norm_epsilon=1e-12, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.fused_gelu = activation == "gelu"

    def build(self, input_shape):
        hidden = input_shape[-1]
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        policy = self.dtype_policy
        # === Layers ===
        self.attention = MultiHeadSelfAttention(self.num_heads, dropout=self.attention_dropout,
                                                initializer_range=self.initializer_range, dtype=policy,
                                                name="attention")
        self.attention.build(input_shape)
        self.attention_dropout_layer = FastDropout(self.dropout, dtype=policy)
        self.attention_norm = FusedLayerNorm(epsilon=self.layer_norm_epsilon, dtype=policy,
                                             name="attention_layer_norm")
        self.attention_norm.build(input_shape)
        # With GELU, the activation and the output layer run as one fused function (see call).
        activation = None if self.fused_gelu else get_activation(self.activation)
        self.intermediate_dense = keras.layers.Dense(self.intermediate_size, activation=activation,
                                                     kernel_initializer=init, dtype=policy, name="intermediate")
        self.intermediate_dense.build(input_shape)
        self.output_dense = keras.layers.Dense(hidden, kernel_initializer=init, dtype=policy, name="output")
        self.output_dense.build(tuple(input_shape[:-1]) + (self.intermediate_size,))
        self.output_dropout_layer = FastDropout(self.dropout, dtype=policy)
        self.output_norm = FusedLayerNorm(epsilon=self.layer_norm_epsilon, dtype=policy,
                                          name="output_layer_norm")
        self.output_norm.build(input_shape)
        self.built = True

    def dropout_layers(self):
        """The block's three dropout layers: attention probabilities, attention output, feed-forward output."""
        return (self.attention.dropout_layer, self.attention_dropout_layer, self.output_dropout_layer)

    def draw_seeds(self, training):
        """The stateless seeds of this block's next dropout masks (None for an inactive layer), advancing its state.

        ``block(x, ..., seeds=block.draw_seeds(True))`` applies exactly the
        masks those seeds name, however often it is called: what recomputing
        the block in the backward pass needs.
        """
        return tuple(layer.next_seed() if layer.active(training) else None for layer in self.dropout_layers())

    def call(self, inputs, attention_bias=None, padding_mask=None, training=None, seeds=None):
        """``seeds``: optional result of :meth:`draw_seeds`; by default each dropout layer draws its own."""
        attention_seed, attended_seed, output_seed = seeds if seeds is not None else (None, None, None)
        attended = self.attention(inputs, attention_bias=attention_bias, padding_mask=padding_mask,
                                  training=training, dropout_seed=attention_seed)
        x = self.attention_norm(inputs + self.attention_dropout_layer(attended, training=training,
                                                                      seed=attended_seed))
        # The feed-forward network on [B*S, H]: 2-D MatMul + BiasAdd fuse into one oneDNN call.
        flat = tf.reshape(x, [-1, x.shape[-1]])
        if self.fused_gelu:
            hidden = self.intermediate_dense(flat)
            ffn = gelu_dense(hidden, tf.cast(self.output_dense.kernel, hidden.dtype),
                             tf.cast(self.output_dense.bias, hidden.dtype))
        else:
            ffn = self.output_dense(self.intermediate_dense(flat))
        ffn = tf.reshape(ffn, tf.shape(x))
        return self.output_norm(x + self.output_dropout_layer(ffn, training=training, seed=output_seed))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "initializer_range": self.initializer_range,
        })
        return config
