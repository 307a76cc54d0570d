"""Multi-head self-attention with an additive position bias and a padding mask."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="electra_tf")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head scaled dot-product self-attention.

    Queries, keys and values come from one fused projection (one matmul instead
    of three). Attention logits, the additive position bias and the softmax are
    computed in float32 whatever the layer's compute dtype, so bf16/fp16 mixed
    precision does not change which keys are masked out.

    Args:
        num_heads: number of attention heads; must divide the input width.
        dropout: dropout rate on the attention probabilities.
        initializer_range: stddev of the truncated-normal kernel initializer.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:

    >>> attn = MultiHeadSelfAttention(num_heads=2)
    >>> x = tf.random.normal([3, 5, 8])
    >>> mask = tf.constant([[1] * 5, [1] * 3 + [0] * 2, [1] * 5])
    >>> attn(x, padding_mask=mask).shape
    TensorShape([3, 5, 8])
    """

    def __init__(self, num_heads, dropout=0.0, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.num_heads = num_heads
        self.dropout = dropout
        self.initializer_range = initializer_range

    def build(self, input_shape):
        hidden = input_shape[-1]
        if hidden % self.num_heads:
            raise ValueError(f"the input width ({hidden}) must be divisible by num_heads ({self.num_heads})")
        self.head_size = hidden // self.num_heads
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        # === Layers ===
        self.qkv_dense = keras.layers.Dense(3 * hidden, kernel_initializer=init, dtype=self.dtype_policy,
                                            name="qkv")
        self.qkv_dense.build(input_shape)
        self.output_dense = keras.layers.Dense(hidden, kernel_initializer=init, dtype=self.dtype_policy,
                                               name="output")
        self.output_dense.build(input_shape)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def call(self, inputs, attention_bias=None, padding_mask=None, training=None):
        """Args: inputs [B, S, H]; attention_bias broadcastable to [B, heads, S, S]
        (float32); padding_mask [B, S], 1 for tokens that may be attended to."""
        shape = tf.shape(inputs)
        batch, length = shape[0], shape[1]
        qkv = self.qkv_dense(inputs)
        qkv = tf.reshape(qkv, [batch, length, 3, self.num_heads, self.head_size])
        qkv = tf.transpose(qkv, [2, 0, 3, 1, 4])  # [3, B, heads, S, head_size]
        query, key, value = qkv[0], qkv[1], qkv[2]
        query = query * tf.cast(self.head_size ** -0.5, query.dtype)
        scores = tf.cast(tf.matmul(query, key, transpose_b=True), tf.float32)  # [B, heads, S, S]
        if attention_bias is not None:
            scores += tf.cast(attention_bias, tf.float32)
        if padding_mask is not None:
            # exp(-1e9 - max) is exactly 0 in float32: padded keys get no weight at all.
            keep = tf.cast(padding_mask, tf.float32)[:, None, None, :]
            scores += (1.0 - keep) * -1e9
        probs = tf.nn.softmax(scores, axis=-1)
        probs = self.dropout_layer(tf.cast(probs, self.compute_dtype), training=training)
        context = tf.matmul(probs, value)  # [B, heads, S, head_size]
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, length, self.num_heads * self.head_size])
        return self.output_dense(context)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "initializer_range": self.initializer_range,
        })
        return config
