"""The ``tf.Module``s whose signatures make up the exported SavedModels.

The Keras models are kept as the attributes ``discriminator`` and
``generator``, so a SavedModel's ``variables/variables`` is a checkpoint with
the same object names as a training checkpoint
(:func:`electra_tf.pretrained.load_pretrained` reads it).

Each module also tracks the plain ``tf.Variable`` under every Keras variable
(``serving_variables``). Keras 3 saves a variable as a fresh copy that the
TF1-style loaders (``saved_model_cli run``, TensorFlow Serving, the C++ API)
restore, while the signatures read the original: without this list they fail
with "Could not find variable ..." (keras-team/keras#20095). The price is that
``variables/`` holds every weight twice.

Signatures (all outputs float32 or int32; ``B`` sentences, ``L`` tokens,
``P`` = most ``[MASK]`` tokens in one row, ``K`` = ``top_k``):

======================  =====================================  ===============================================
signature               inputs                                 outputs
======================  =====================================  ===============================================
``encode``              ``input_ids``, ``input_mask`` [B, L]   ``sequence_output`` [B, L, H], ``pooled_output``
(``serving_default``)                                          [B, H]
``detect``              ``input_ids``, ``input_mask``          ``replaced_probability`` [B, L] (0 on padding)
``encode_text``         ``sentences`` tf.string [B]            as ``encode``, plus ``input_ids``, ``input_mask``
``detect_text``         ``sentences``                          as ``detect``, plus ``input_ids``,
                                                               ``input_mask``, ``tokens`` (pieces) [B, L]
``fill_mask``           ``input_ids`` with ``[MASK]`` (4),     ``masked_positions`` [B, P], ``masked_weights``
(``serving_default``)   ``input_mask``                         [B, P] (1 real, 0 padding), ``top_ids``
                                                               [B, P, K], ``top_probabilities`` [B, P, K]
``fill_mask_text``      ``sentences`` with literal ``[MASK]``  as ``fill_mask``, plus ``top_tokens`` (pieces)
                                                               [B, P, K], ``input_ids``, ``input_mask``
======================  =====================================  ===============================================

Padding entries of a position list have ``masked_weights`` 0, ``top_ids`` 0,
``top_probabilities`` 0 and ``top_tokens`` "".
"""

import tensorflow as tf

from electra_tf.data.vocab import MASK_ID

IDS_SPEC = tf.TensorSpec([None, None], tf.int32, name="input_ids")
MASK_SPEC = tf.TensorSpec([None, None], tf.int32, name="input_mask")
SENTENCES_SPEC = tf.TensorSpec([None], tf.string, name="sentences")


def mask_positions(input_ids, input_mask, mask_id=MASK_ID):
    """Where the ``[MASK]`` ids are, row by row.

    Args:
        input_ids, input_mask: int32 ``[B, L]``.
        mask_id: the vocabulary's ``[MASK]`` id.

    Returns:
        ``(positions, weights)``: int32 ``[B, P]`` ascending positions padded
        with 0, and float32 ``[B, P]`` (1 for a ``[MASK]``, 0 for padding),
        where ``P`` is the largest number of ``[MASK]`` tokens in a row.
    """
    is_mask = tf.logical_and(tf.equal(input_ids, mask_id), input_mask > 0)
    where = tf.where(is_mask)  # row-major: rows ascending, positions ascending within a row
    ragged = tf.RaggedTensor.from_value_rowids(tf.cast(where[:, 1], tf.int32), where[:, 0],
                                               nrows=tf.shape(input_ids, out_type=tf.int64)[0])
    positions = ragged.to_tensor(default_value=0)
    weights = tf.sequence_mask(ragged.row_lengths(), tf.shape(positions)[1], dtype=tf.float32)
    return positions, weights


def _plain_variables(model):
    """The ``tf.Variable``s behind a Keras model's variables (see the module docstring)."""
    return [getattr(v, "value", v) for v in model.variables]


class DiscriminatorModule(tf.Module):
    """Serving surface of the discriminator.

    Args:
        discriminator: a :class:`~electra_tf.models.Discriminator`.
        tokenizer: a :class:`~electra_tf.export.text.TextTokenizer`, or None
            for the id signatures only.
    """

    def __init__(self, discriminator, tokenizer=None):
        super().__init__(name="discriminator_export")
        self.discriminator = discriminator
        self.serving_variables = _plain_variables(discriminator)
        self.tokenizer = tokenizer
        if tokenizer is not None:
            self.encode_text = tf.function(self._encode_text, input_signature=[SENTENCES_SPEC])
            self.detect_text = tf.function(self._detect_text, input_signature=[SENTENCES_SPEC])

    def _run(self, input_ids, input_mask):
        return self.discriminator({"input_ids": input_ids, "input_mask": input_mask}, training=False)

    def _encode(self, input_ids, input_mask):
        out = self._run(input_ids, input_mask)
        return {"sequence_output": tf.cast(out["sequence_output"], tf.float32),
                "pooled_output": tf.cast(out["pooled_output"], tf.float32)}

    def _detect(self, input_ids, input_mask):
        logits = tf.cast(self._run(input_ids, input_mask)["logits"], tf.float32)
        return {"replaced_probability": tf.sigmoid(logits) * tf.cast(input_mask, tf.float32)}

    @tf.function(input_signature=[IDS_SPEC, MASK_SPEC])
    def encode(self, input_ids, input_mask):
        return self._encode(input_ids, input_mask)

    @tf.function(input_signature=[IDS_SPEC, MASK_SPEC])
    def detect(self, input_ids, input_mask):
        return self._detect(input_ids, input_mask)

    def _encode_text(self, sentences):
        input_ids, input_mask = self.tokenizer.encode(sentences)
        return {**self._encode(input_ids, input_mask), "input_ids": input_ids, "input_mask": input_mask}

    def _detect_text(self, sentences):
        input_ids, input_mask = self.tokenizer.encode(sentences)
        tokens = tf.where(input_mask > 0, self.tokenizer.pieces(input_ids), "")
        return {**self._detect(input_ids, input_mask), "input_ids": input_ids, "input_mask": input_mask,
                "tokens": tokens}

    def signatures(self):
        """The signature map for ``tf.saved_model.save``."""
        out = {"serving_default": self.encode, "encode": self.encode, "detect": self.detect}
        if self.tokenizer is not None:
            out.update(encode_text=self.encode_text, detect_text=self.detect_text)
        return out


class GeneratorModule(tf.Module):
    """Serving surface of the generator: the most likely tokens at each ``[MASK]``.

    Args:
        generator: a :class:`~electra_tf.models.Generator`.
        tokenizer: a :class:`~electra_tf.export.text.TextTokenizer`, or None
            for the id signature only.
        top_k: candidates returned per masked position (at most the vocabulary size).
        mask_id: the ``[MASK]`` id the id signature looks for; None takes the
            tokenizer's (without one: 4, this project's SentencePiece layout).
    """

    def __init__(self, generator, tokenizer=None, top_k=5, mask_id=None):
        super().__init__(name="generator_export")
        vocab_size = generator.encoder.vocab_size
        if not isinstance(top_k, int) or not 1 <= top_k <= vocab_size:
            raise ValueError(f"top_k must be an integer in [1, {vocab_size}] (the vocabulary size), got {top_k!r}")
        self.generator = generator
        self.serving_variables = _plain_variables(generator)
        self.tokenizer = tokenizer
        self.top_k = top_k
        if mask_id is None:
            mask_id = tokenizer.specials.mask if tokenizer is not None else MASK_ID
        if tokenizer is not None and mask_id != tokenizer.specials.mask:
            raise ValueError(f"mask_id {mask_id} differs from the tokenizer's [MASK] id {tokenizer.specials.mask}")
        self.mask_id = int(mask_id)
        if tokenizer is not None:
            self.fill_mask_text = tf.function(self._fill_mask_text, input_signature=[SENTENCES_SPEC])

    def _fill(self, input_ids, input_mask):
        positions, weights = mask_positions(input_ids, input_mask, self.mask_id)
        logits = self.generator({"input_ids": input_ids, "input_mask": input_mask, "masked_positions": positions},
                                 training=False)["logits"]
        probs, ids = tf.math.top_k(tf.nn.softmax(tf.cast(logits, tf.float32)), k=self.top_k)
        valid = weights[..., None] > 0
        return {"masked_positions": positions, "masked_weights": weights,
                "top_ids": tf.where(valid, ids, 0), "top_probabilities": tf.where(valid, probs, 0.0)}

    @tf.function(input_signature=[IDS_SPEC, MASK_SPEC])
    def fill_mask(self, input_ids, input_mask):
        return self._fill(input_ids, input_mask)

    def _fill_mask_text(self, sentences):
        input_ids, input_mask = self.tokenizer.encode_with_masks(sentences)
        out = self._fill(input_ids, input_mask)
        valid = out["masked_weights"][..., None] > 0
        out["top_tokens"] = tf.where(valid, self.tokenizer.pieces(out["top_ids"]), "")
        return {**out, "input_ids": input_ids, "input_mask": input_mask}

    def signatures(self):
        """The signature map for ``tf.saved_model.save``."""
        out = {"serving_default": self.fill_mask, "fill_mask": self.fill_mask}
        if self.tokenizer is not None:
            out["fill_mask_text"] = self.fill_mask_text
        return out
