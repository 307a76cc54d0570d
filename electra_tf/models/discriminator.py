"""The discriminator: an encoder and a replaced-token-detection head."""

import keras

from electra_tf.layers.replaced_token_head import ReplacedTokenHead
from electra_tf.networks.encoder import Encoder


@keras.saving.register_keras_serializable(package="electra_tf")
class Discriminator(keras.Model):
    """The main model: predicts for every position whether its token was replaced.

    After pretraining, ``encoder`` is what downstream tasks fine-tune.

    Args:
        **encoder_kwargs: the :class:`~electra_tf.networks.Encoder` arguments,
            including an optional shared ``word_embedding``.
        shared_embeddings: optional ``Embeddings`` of another model whose tables and
            LayerNorm this model reads (``embedding_sharing: all``).

    Example:

    >>> disc = Discriminator(vocab_size=10, hidden_size=8, num_layers=1, num_heads=2)
    >>> disc({"input_ids": tf.constant([[2, 4, 3, 0]])})["logits"].shape
    TensorShape([1, 4])
    """

    def __init__(self, word_embedding=None, shared_embeddings=None, name="discriminator", dtype=None, trainable=True,
                 **encoder_kwargs):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        policy = self.dtype_policy
        # === Layers ===
        self.encoder = Encoder(word_embedding=word_embedding, shared_embeddings=shared_embeddings, dtype=policy,
                               name="encoder", **encoder_kwargs)
        self.rtd_head = ReplacedTokenHead(self.encoder.hidden_size, activation=self.encoder.activation,
                                          initializer_range=self.encoder.initializer_range, dtype=policy,
                                          name="rtd_head")
        # === Config ===
        self.encoder_kwargs = dict(encoder_kwargs)

    def build(self, input_shape=None):
        self.encoder.build()
        self.rtd_head.build((None, None, self.encoder.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        """inputs: ``input_ids`` [B, S], optional ``input_mask``/``token_type_ids``.
        Returns float32 ``logits`` [B, S] (replaced if > 0), ``sequence_output``
        and ``pooled_output``."""
        encoded = self.encoder(inputs, training=training)
        return {"logits": self.rtd_head(encoded["sequence_output"]), **encoded}

    def get_config(self):
        """Name, dtype policy and encoder arguments; refused when the word embedding is another model's."""
        if self.encoder.embeddings.shares_word_embedding:
            raise NotImplementedError(f"{type(self).__name__} {self.name!r} reads a word embedding shared with "
                                      "another model; a config round trip would untie it. Rebuild the pair with "
                                      "electra_tf.models.build_models, or serialise each model without sharing")
        return {**super().get_config(), **self.encoder_kwargs}
