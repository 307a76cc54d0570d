"""A sequence classifier (or regressor): the pretrained encoder and a small head on its first token."""

import keras

__all__ = ["ClassificationHead", "SequenceClassifier"]


@keras.saving.register_keras_serializable(package="electra_tf")
class ClassificationHead(keras.layers.Layer):
    """ELECTRA's classification head: dropout, dense + activation, dropout, dense to the labels.

    This is the head of the Hugging Face ``ElectraForSequenceClassification``
    (the original ELECTRA code has only the last dropout and dense; the extra
    hidden layer stands in for BERT's pooler, which ELECTRA does not pretrain).
    Outputs are float32 under any dtype policy.

    Args:
        hidden_size: width of the hidden dense layer.
        num_labels: number of outputs (1 for regression).
        dropout: dropout rate before each dense layer.
        activation: the hidden layer's activation.
        initializer_range: stddev of the truncated-normal kernel initializers.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:

    >>> head = ClassificationHead(hidden_size=8, num_labels=3)
    >>> head(tf.zeros([2, 8])).shape
    TensorShape([2, 3])
    """

    def __init__(self, hidden_size, num_labels, dropout=0.1, activation="gelu", initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        # === Layers ===
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(hidden_size, activation=activation, kernel_initializer=init,
                                        dtype=self.dtype_policy, name="dense")
        self.out_proj = keras.layers.Dense(num_labels, kernel_initializer=init, dtype=self.dtype_policy,
                                           name="out_proj")
        # === Config ===
        self.hidden_size = hidden_size
        self.num_labels = num_labels
        self.dropout = dropout
        self.activation = activation
        self.initializer_range = initializer_range

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.out_proj.build(tuple(input_shape[:-1]) + (self.hidden_size,))
        self.built = True

    def call(self, pooled, training=None):
        x = self.dropout_layer(pooled, training=training)
        x = self.dense(x)
        x = self.dropout_layer(x, training=training)
        return keras.ops.cast(self.out_proj(x), "float32")

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_size": self.hidden_size, "num_labels": self.num_labels, "dropout": self.dropout,
                       "activation": self.activation, "initializer_range": self.initializer_range})
        return config


POOLINGS = ("mean", "cls")


@keras.saving.register_keras_serializable(package="electra_tf")
class SequenceClassifier(keras.Model):
    """A pretrained encoder with a :class:`ClassificationHead` on a pooled summary of its output.

    Args:
        encoder: an :class:`~electra_tf.networks.Encoder` (the pretrained
            discriminator's ``encoder``).
        num_labels: number of classes; 1 for regression.
        dropout: the head's dropout rate.
        pooling: ``"mean"`` (the mean of the real tokens' top-layer states) or
            ``"cls"`` (the first token's state, as BERT and the original
            ELECTRA). The replaced-token objective never trains the ``[CLS]``
            state (its label is always "original"), so it starts fine-tuning
            with nothing to say about the sentence; see docs/research.md.
        **kwargs: passed to ``keras.Model``.

    Example:

    >>> enc = Encoder(vocab_size=10, hidden_size=8, num_layers=1, num_heads=2)
    >>> clf = SequenceClassifier(enc, num_labels=2)
    >>> clf({"input_ids": tf.constant([[2, 5, 3, 0]])})["logits"].shape
    TensorShape([1, 2])
    """

    def __init__(self, encoder, num_labels, dropout=0.1, pooling="cls", **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        # === Layers ===
        self.encoder = encoder
        self.head = ClassificationHead(encoder.hidden_size, num_labels, dropout=dropout,
                                       activation=encoder.activation, initializer_range=encoder.initializer_range,
                                       dtype=self.dtype_policy, name="classifier_head")
        # === Config ===
        self.num_labels = num_labels
        self.dropout = dropout
        self.pooling = pooling

    def build(self, input_shape=None):
        if not self.encoder.built:
            self.encoder.build()
        self.head.build((None, self.encoder.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        """inputs: ``input_ids`` [B, S] and optionally ``input_mask``, ``token_type_ids``.
        Returns float32 ``logits`` [B, num_labels] (regression: the value in column 0)."""
        features = {k: inputs[k] for k in ("input_ids", "input_mask", "token_type_ids") if k in inputs}
        outputs = self.encoder(features, training=training)
        if self.pooling == "cls":
            pooled = outputs["pooled_output"]
        else:
            sequence = outputs["sequence_output"]
            mask = features.get("input_mask")
            if mask is None:
                mask = keras.ops.not_equal(features["input_ids"], 0)
            mask = keras.ops.cast(mask, sequence.dtype)[:, :, None]
            pooled = keras.ops.sum(sequence * mask, axis=1) / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1.0)
        return {"logits": self.head(pooled, training=training)}

    def get_config(self):
        config = super().get_config()
        config.update({"encoder": keras.saving.serialize_keras_object(self.encoder),
                       "num_labels": self.num_labels, "dropout": self.dropout, "pooling": self.pooling})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
