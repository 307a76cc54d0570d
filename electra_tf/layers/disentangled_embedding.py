"""Gradient-disentangled embedding sharing (DeBERTaV3's GDES)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="electra_tf")
class DisentangledEmbedding(keras.layers.Layer):
    """A word embedding that reads a shared table without training it.

    ``output = stop_gradient(shared[ids]) + delta[ids]``: the shared table
    (owned and trained by another model, here the generator) receives no
    gradient through this layer, while ``delta`` starts at zero and receives
    this model's gradient. At initialisation the output equals the shared
    embedding exactly. This makes embedding sharing compatible with separate
    optimizers: each variable has exactly one owner.

    Args:
        shared: the ``keras.layers.Embedding`` whose table is shared.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:

    >>> table = keras.layers.Embedding(10, 4)
    >>> emb = DisentangledEmbedding(table)
    >>> emb(tf.constant([[1, 2]])).shape
    TensorShape([1, 2, 4])
    """

    def __init__(self, shared, **kwargs):
        super().__init__(**kwargs)
        # === Layers ===
        self.shared = shared
        # === Config ===
        self.input_dim = shared.input_dim
        self.output_dim = shared.output_dim

    def build(self, input_shape=None):
        if not self.shared.built:
            self.shared.build(input_shape)
        self.delta = self.add_weight(name="delta_embeddings", shape=(self.input_dim, self.output_dim),
                                     initializer="zeros")
        self.built = True

    def call(self, input_ids):
        table = tf.stop_gradient(tf.convert_to_tensor(self.shared.embeddings))
        out = tf.gather(table, input_ids) + tf.gather(tf.convert_to_tensor(self.delta), input_ids)
        return tf.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        # The shared table is an object, not configuration: a model using this
        # layer is rebuilt by the code that created the sharing.
        raise NotImplementedError("DisentangledEmbedding wraps another model's layer and is not serialisable "
                                  "on its own; rebuild it with electra_tf.models.build_models")
