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
    With ``admin_residual`` each shortcut is scaled by its own non-trainable
    ``ω`` (Admin, Liu et al. 2020): ``x = LN(ω_a·x + Dropout(Attention(x)))``,
    ``x = LN(ω_f·x + Dropout(FFN(x)))``; the ``ω`` start at 1 and are set by
    :meth:`profile_admin` (see ``Encoder.profile_admin``).

    Args:
        num_heads: number of attention heads.
        intermediate_size: width of the feed-forward hidden layer.
        dropout: dropout rate on the two residual branches.
        attention_dropout: dropout rate on the attention probabilities.
        activation: feed-forward activation (a Keras activation name).
        layer_norm_epsilon: epsilon of both LayerNorms.
        initializer_range: stddev of the truncated-normal kernel initializer.
        admin_residual: scale the two shortcuts by Admin's ``ω`` (saved with the weights).
        **kwargs: passed to ``keras.layers.Layer``.

    Example:

    >>> block = TransformerBlock(num_heads=2, intermediate_size=16)
    >>> block(tf.random.normal([3, 5, 8])).shape
    TensorShape([3, 5, 8])
    """

    def __init__(self, num_heads, intermediate_size, dropout=0.1, attention_dropout=0.1, activation="gelu",
                 layer_norm_epsilon=1e-12, initializer_range=0.02, admin_residual=False, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.admin_residual = admin_residual
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
        # === Weights ===
        self.attention_omega = self.ffn_omega = None
        if self.admin_residual:
            # Scalars like admin_torch's buffers: set once by profiling, then fixed (no optimizer owns them).
            self.attention_omega = self.add_weight(name="attention_omega", shape=(), initializer="ones",
                                                   trainable=False)
            self.ffn_omega = self.add_weight(name="ffn_omega", shape=(), initializer="ones", trainable=False)
        self.built = True

    def _shortcut(self, x, omega):
        return x if omega is None else x * tf.cast(omega, x.dtype)

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
        x = self.attention_norm(self._shortcut(inputs, self.attention_omega)
                                + self.attention_dropout_layer(attended, training=training, seed=attended_seed))
        ffn = self._feed_forward(x)
        return self.output_norm(self._shortcut(x, self.ffn_omega)
                                + self.output_dropout_layer(ffn, training=training, seed=output_seed))

    def _feed_forward(self, x):
        # On [B*S, H]: 2-D MatMul + BiasAdd fuse into one oneDNN call.
        flat = tf.reshape(x, [-1, x.shape[-1]])
        if self.fused_gelu:
            hidden = self.intermediate_dense(flat)
            ffn = gelu_dense(hidden, tf.cast(self.output_dense.kernel, hidden.dtype),
                             tf.cast(self.output_dense.bias, hidden.dtype))
        else:
            ffn = self.output_dense(self.intermediate_dense(flat))
        return tf.reshape(ffn, tf.shape(x))

    def profile_admin(self, inputs, ratio, attention_bias=None, padding_mask=None):
        """Admin's profiling pass through this block (inference mode): sets both ``ω``, returns ``(output, ratio)``.

        Each shortcut's ``ω`` is set to the running ``ratio``, then ``ratio``
        becomes ``sqrt(Var[ω·x] + Var[f(x)])`` over the real tokens: the
        standard deviation the sum would have without the LayerNorm. Starting
        from 1 (the embedding LayerNorm's output), ``ω_i² = Var[x_0] +
        Σ_{j<i} Var[f_j]`` for every sublayer i, as Liu et al. (2020) define.
        """
        if not self.admin_residual:
            raise ValueError(f"{self.name}: profile_admin needs admin_residual=True")
        weights = None if padding_mask is None else tf.cast(padding_mask, tf.float32)[..., None]

        def variance(t):
            t = tf.cast(t, tf.float32)
            if weights is None:
                return float(tf.math.reduce_variance(t))
            w = tf.broadcast_to(weights, tf.shape(t))
            mean = tf.reduce_sum(t * w) / tf.reduce_sum(w)
            return float(tf.reduce_sum(tf.square(t - mean) * w) / tf.reduce_sum(w))

        self.attention_omega.assign(ratio)
        attended = self.attention(inputs, attention_bias=attention_bias, padding_mask=padding_mask, training=False)
        shortcut = self._shortcut(inputs, self.attention_omega)
        ratio = (variance(shortcut) + variance(attended)) ** 0.5
        x = self.attention_norm(shortcut + attended)
        self.ffn_omega.assign(ratio)
        ffn = self._feed_forward(x)
        shortcut = self._shortcut(x, self.ffn_omega)
        ratio = (variance(shortcut) + variance(ffn)) ** 0.5
        return self.output_norm(shortcut + ffn), ratio

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
            "admin_residual": self.admin_residual,
        })
        return config
