"""Per-token models on the pretrained encoder's sequence output: a token tagger and a span extractor."""

import keras

__all__ = ["TokenTagger", "SpanExtractor"]

_FEATURES = ("input_ids", "input_mask", "token_type_ids")


class _SequenceModel(keras.Model):
    """An encoder and a dense head applied to every position of its top layer (after dropout)."""

    def __init__(self, encoder, num_outputs, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        # === Layers ===
        self.encoder = encoder
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.head = keras.layers.Dense(
            num_outputs, kernel_initializer=keras.initializers.TruncatedNormal(stddev=encoder.initializer_range),
            dtype=self.dtype_policy, name="head")
        # === Config ===
        self.num_outputs = num_outputs
        self.dropout = dropout

    def build(self, input_shape=None):
        if not self.encoder.built:
            self.encoder.build()
        self.head.build((None, None, self.encoder.hidden_size))
        self.built = True

    def _head(self, inputs, training):
        features = {k: inputs[k] for k in _FEATURES if k in inputs}
        sequence = self.encoder(features, training=training)["sequence_output"]
        return keras.ops.cast(self.head(self.dropout_layer(sequence, training=training)), "float32")


class TokenTagger(_SequenceModel):
    """Tag logits for every token: the original ELECTRA's tagging head (dropout, dense) on the sequence output.

    Args:
        encoder: an :class:`~electra_tf.networks.Encoder` (the pretrained discriminator's ``encoder``).
        num_labels: number of tags.
        dropout: dropout rate before the dense layer.
        **kwargs: passed to ``keras.Model``.

    Example:

    >>> enc = Encoder(vocab_size=10, hidden_size=8, num_layers=1, num_heads=2)
    >>> TokenTagger(enc, num_labels=3)({"input_ids": tf.constant([[2, 5, 3, 0]])})["logits"].shape
    TensorShape([1, 4, 3])
    """

    def __init__(self, encoder, num_labels, dropout=0.1, **kwargs):
        super().__init__(encoder, num_labels, dropout=dropout, **kwargs)
        self.num_labels = num_labels

    def call(self, inputs, training=None):
        """Returns float32 ``logits`` [B, S, num_labels]."""
        return {"logits": self._head(inputs, training)}


class SpanExtractor(_SequenceModel):
    """Start and end logits for every token (extractive question answering), as BERT's and ELECTRA's SQuAD
    models score spans: one dense layer with two outputs on the sequence output.

    Padding positions get a logit of -10000, so a softmax over the sequence ignores them.
    With ``answerable_head`` the dense layer has a third output, read at the
    ``[CLS]`` position only: ``answerable_logits`` [B], the logit that the
    window holds an answer (ELECTRA's answerability classifier on ``[CLS]``).

    Example:

    >>> enc = Encoder(vocab_size=10, hidden_size=8, num_layers=1, num_heads=2)
    >>> out = SpanExtractor(enc)({"input_ids": tf.constant([[2, 5, 3, 0]])})
    >>> out["start_logits"].shape, out["end_logits"].shape
    (TensorShape([1, 4]), TensorShape([1, 4]))
    """

    def __init__(self, encoder, dropout=0.1, answerable_head=False, **kwargs):
        kwargs.pop("num_outputs", None)
        super().__init__(encoder, 3 if answerable_head else 2, dropout=dropout, **kwargs)
        self.answerable_head = answerable_head

    def call(self, inputs, training=None):
        """Returns float32 ``start_logits`` and ``end_logits`` [B, S] (and ``answerable_logits`` [B])."""
        logits = self._head(inputs, training)
        mask = inputs.get("input_mask")
        if mask is None:
            mask = keras.ops.not_equal(inputs["input_ids"], 0)
        penalty = (1.0 - keras.ops.cast(mask, "float32")) * -10000.0
        out = {"start_logits": logits[:, :, 0] + penalty, "end_logits": logits[:, :, 1] + penalty}
        if self.answerable_head:
            out["answerable_logits"] = logits[:, 0, 2]
        return out
