"""Multi-head self-attention with an additive position bias and a padding mask."""

import keras
import tensorflow as tf

from electra_tf.layers.activations import recompute_after
from electra_tf.layers.fast_dropout import FastDropout


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
        self.dropout_layer = FastDropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def call(self, inputs, attention_bias=None, padding_mask=None, training=None, dropout_seed=None):
        """Args: inputs [B, S, H]; attention_bias broadcastable to [B, heads, S, S]
        (float32); padding_mask [B, S], 1 for tokens that may be attended to;
        dropout_seed: optional int32 [2] seed of the attention-dropout mask
        (default: the dropout layer's next seed)."""
        shape = tf.shape(inputs)
        batch, length = shape[0], shape[1]
        hidden = self.num_heads * self.head_size
        # The projections run on [B*S, H]: a 2-D MatMul + BiasAdd is one fused oneDNN call.
        qkv = self.qkv_dense(tf.reshape(inputs, [-1, hidden]))
        # One transpose to [B, 3*heads, S, head_size], then a split: its gradient is a
        # concat (slicing a stacked axis instead costs a full-size zero tensor per slice).
        qkv = tf.reshape(qkv, [batch, length, 3 * self.num_heads, self.head_size])
        query, key, value = tf.split(tf.transpose(qkv, [0, 2, 1, 3]), 3, axis=1)  # [B, heads, S, head_size]
        query = query * tf.cast(self.head_size ** -0.5, query.dtype)
        additive = None
        if padding_mask is not None:
            # exp(-1e9 - max) is exactly 0 in float32: padded keys get no weight at all.
            additive = (1.0 - tf.cast(padding_mask, tf.float32)[:, None, None, :]) * -1e9
        keep = self.dropout_layer.draw_mask(tf.stack([batch, self.num_heads, length, length]), training,
                                            seed=dropout_seed)
        bias = None if attention_bias is None else tf.cast(attention_bias, tf.float32)
        context = attend(query, key, value, bias, additive, keep, 1.0 / (1.0 - self.dropout) if keep is not None
                         else 1.0)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [-1, hidden])
        return tf.reshape(self.output_dense(context), [batch, length, hidden])

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


def _sum_to(grad, target):
    """Sums ``grad`` over the axes along which ``target`` was broadcast to its shape."""
    _, axes = tf.raw_ops.BroadcastGradientArgs(s0=tf.shape(grad), s1=tf.shape(target))
    return tf.reshape(tf.reduce_sum(grad, axis=axes), tf.shape(target))


def attend(query, key, value, bias=None, additive=None, keep=None, keep_scale=1.0):
    """``dropout(softmax(q k^T + bias + additive)) v`` with a hand-written gradient.

    Scores, softmax and its gradient are float32; the two matmuls run in the
    inputs' dtype. Fewer passes over the [B, heads, S, S] tensors than
    differentiating the formula: the dropout scale is applied to the
    (smaller) context instead of the probabilities, the backward pass
    recomputes the dropped-out probabilities from the saved probabilities and
    the boolean mask instead of keeping them (one [B, heads, S, S] tensor less
    per layer until the backward pass reaches it), and reuses them in the
    softmax gradient.

    Args:
        query, key, value: [B, heads, S, head_size] (query already scaled).
        bias: optional float32 bias broadcastable to [B, heads, S, S]; it gets a gradient.
        additive: optional float32 constant added to the scores (the padding mask); no gradient.
        keep: optional bool [B, heads, S, S] dropout mask; kept probabilities are scaled by ``keep_scale``.
        keep_scale: ``1 / (1 - rate)``.

    Returns:
        [B, heads, S, head_size] context in ``value``'s dtype.
    """

    def forward(q, k, v, *maybe_bias):
        scores = tf.cast(tf.matmul(q, k, transpose_b=True), tf.float32)  # [B, heads, S, S]
        if maybe_bias:
            scores += maybe_bias[0]
        if additive is not None:
            scores += additive
        probs = tf.nn.softmax(scores, axis=-1)

        def kept(p):  # the probabilities after dropout, before its scale
            return p if keep is None else tf.where(keep, p, 0.0)

        def scaled(t):
            return t if keep is None else t * tf.cast(keep_scale, t.dtype)

        def grad(d_context):
            dropped = kept(recompute_after(probs, d_context))
            d_context = scaled(d_context)
            d_value = tf.matmul(tf.cast(dropped, v.dtype), d_context, transpose_a=True)
            d_dropped = tf.cast(tf.matmul(d_context, v, transpose_b=True), tf.float32)
            # softmax gradient probs * (g - sum(g * probs)) with g = where(keep, d_dropped, 0):
            # g * probs = d_dropped * dropped.
            weighted = d_dropped * dropped
            d_scores = weighted - probs * tf.reduce_sum(weighted, axis=-1, keepdims=True)
            d_scores_low = tf.cast(d_scores, q.dtype)
            grads = [tf.matmul(d_scores_low, k), tf.matmul(d_scores_low, q, transpose_a=True), d_value]
            if maybe_bias:
                grads.append(_sum_to(d_scores, maybe_bias[0]))
            return grads

        return scaled(tf.matmul(tf.cast(kept(probs), v.dtype), v)), grad

    return tf.custom_gradient(forward)(query, key, value, *([] if bias is None else [bias]))
