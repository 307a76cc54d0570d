"""The discriminator's replaced-token-detection head."""

import keras
import tensorflow as tf

from electra_tf.layers.activations import get_activation


@keras.saving.register_keras_serializable(package="electra_tf")
class ReplacedTokenHead(keras.layers.Layer):
    """One logit per position: was this token replaced by the generator?

    ``dense(hidden) -> activation -> dense(1)``, returned as float32 ``[B, S]``.

    Args:
        hidden_size: width of the hidden dense layer.
        activation: its activation.
        initializer_range: stddev of the truncated-normal initializer.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:

    >>> head = ReplacedTokenHead(hidden_size=8)
    >>> head(tf.random.normal([2, 5, 8])).shape
    TensorShape([2, 5])
    """

    def __init__(self, hidden_size, activation="gelu", initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        # === Layers ===
        self.dense = keras.layers.Dense(hidden_size, activation=get_activation(activation),
                                        kernel_initializer=init, dtype=self.dtype_policy, name="dense")
        self.logit = keras.layers.Dense(1, kernel_initializer=init, dtype=self.dtype_policy, name="logit")
        # === Config ===
        self.hidden_size = hidden_size
        self.activation = activation
        self.initializer_range = initializer_range

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.logit.build(tuple(input_shape[:-1]) + (self.hidden_size,))
        self.built = True

    def call(self, sequence_output):
        return tf.cast(tf.squeeze(self.logit(self.dense(sequence_output)), -1), tf.float32)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def get_config(self):
        config = super().get_config()
        config.update({
            "hidden_size": self.hidden_size,
            "activation": self.activation,
            "initializer_range": self.initializer_range,
        })
        return config
