"""The MLM generator: an encoder and a tied masked-LM head."""

import keras

from electra_tf.layers.masked_lm_head import MaskedLMHead
from electra_tf.networks.encoder import Encoder


@keras.saving.register_keras_serializable(package="electra_tf")
class Generator(keras.Model):
    """A small masked language model that proposes replacement tokens.

    Its output layer is tied to its own word embedding, and the vocabulary
    projection is evaluated only at ``masked_positions``.

    Args:
        **encoder_kwargs: the :class:`~electra_tf.networks.Encoder` arguments
            (``vocab_size``, ``hidden_size``, ``num_layers``, ``num_heads``, ...),
            including an optional shared ``word_embedding``.
        shared_embeddings: optional ``Embeddings`` of another model whose tables and
            LayerNorm this model reads (``embedding_sharing: all``).

    Example:

    >>> gen = Generator(vocab_size=10, hidden_size=8, num_layers=1, num_heads=2)
    >>> out = gen({"input_ids": tf.constant([[2, 4, 3]]), "masked_positions": tf.constant([[1]])})
    >>> out["logits"].shape
    TensorShape([1, 1, 10])
    """

    def __init__(self, word_embedding=None, shared_embeddings=None, name="generator", dtype=None, trainable=True,
                 **encoder_kwargs):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        policy = self.dtype_policy
        # === Layers ===
        self.encoder = Encoder(word_embedding=word_embedding, shared_embeddings=shared_embeddings, dtype=policy,
                               name="encoder", **encoder_kwargs)
        self.mlm_head = MaskedLMHead(self.encoder.word_embedding, activation=self.encoder.activation,
                                     layer_norm_epsilon=self.encoder.layer_norm_epsilon,
                                     initializer_range=self.encoder.initializer_range, dtype=policy,
                                     name="mlm_head")
        # === Config ===
        self.encoder_kwargs = dict(encoder_kwargs)

    def build(self, input_shape=None):
        self.encoder.build()
        self.mlm_head.build((None, None, self.encoder.hidden_size), (None, None))
        self.built = True

    def call(self, inputs, training=None):
        """inputs: ``input_ids`` [B, S], ``masked_positions`` [B, P], optional
        ``input_mask``/``token_type_ids``. Returns float32 ``logits`` [B, P, vocab]
        and ``sequence_output``."""
        encoded = self.encoder(inputs, training=training)
        logits = self.mlm_head(encoded["sequence_output"], inputs["masked_positions"])
        return {"logits": logits, "sequence_output": encoded["sequence_output"]}

    def get_config(self):
        """Name, dtype policy and encoder arguments; refused when the word embedding is another model's."""
        if self.encoder.embeddings.shares_word_embedding:
            raise NotImplementedError(f"{type(self).__name__} {self.name!r} reads a word embedding shared with "
                                      "another model; a config round trip would untie it. Rebuild the pair with "
                                      "electra_tf.models.build_models, or serialise each model without sharing")
        return {**super().get_config(), **self.encoder_kwargs}
