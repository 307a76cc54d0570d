"""In-graph tokenization for the text signatures (tensorflow-text's SentencePiece or WordPiece op).

A sentence becomes model input exactly as the pretraining data was packed:
``[CLS] pieces [SEP]``, the pieces cut to ``max_seq_length - 2``, and a batch
padded with ``[PAD]`` to its longest row (so outputs are ``[B, L]`` with
``L <= max_seq_length``; the model's outputs at real positions do not depend
on the padding). The special ids are the vocabulary's own: 0-4 for this
project's SentencePiece models, wherever a WordPiece ``vocab.txt`` lists them.

Text for the generator may contain the literal string ``[MASK]``. Neither
tokenizer produces the ``[MASK]`` id from text, so the sentence is split
on ``[MASK]``, each part is tokenized on its own, and one ``[MASK]`` id is put
between consecutive parts: every ``[MASK]`` stands for exactly one piece. A part
after a ``[MASK]`` is tokenized as if it began a word, which is right when the
mask stands for a whole word (``"The [MASK] sat."``) and approximate inside a
word (``"un[MASK]able"``).

A SentencePiece model is tokenized by ``SentencepieceTokenizer``, whose op
takes the serialized model as an attribute; a WordPiece ``vocab.txt`` by
``FastBertTokenizer`` (BERT's basic tokenization and WordPiece, lower-casing
as the data builder decided for the vocabulary, see
:mod:`electra_tf.data.wordpiece`), whose model is a constant in the graph.
Either way the vocabulary lives in the graph; the file is also attached to the
SavedModel as an asset (``assets/vocab.model`` or ``assets/vocab.txt``) for
clients that tokenize themselves.

Example:

>>> tok = TextTokenizer("tfrecords/builtin-4mb-v4096-s64/vocab.model", max_seq_length=64)
>>> ids, mask = tok.encode(tf.constant(["The cat sat."]))
>>> int(ids[0, 0]), int(ids[0, -1])
(2, 3)
>>> int(TextTokenizer("models/electra_small/vocab.txt", 64).encode(tf.constant(["The cat."]))[0][0, 0])
101
"""

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.data.vocabulary import load_vocabulary

MASK_TEXT = "[MASK]"


class TextTokenizer(tf.Module):
    """Tokenization (SentencePiece or WordPiece), packing and padding inside a ``tf.function``.

    Args:
        vocab_model: path of the vocabulary the models were trained with: a
            SentencePiece ``.model`` or a WordPiece ``vocab.txt``.
        max_seq_length: longest packed sequence, ``[CLS]`` and ``[SEP]`` included (>= 3).
        lower_case: WordPiece only: None decides from the vocabulary, as the data builder does.
        name: module name.

    Raises:
        electra_tf.data.vocab.VocabError: the file is missing, or not a vocabulary
            with the special tokens (SentencePiece: at ids 0-4).
        ValueError: ``max_seq_length`` is below 3.
    """

    def __init__(self, vocab_model, max_seq_length, lower_case=None, name="text_tokenizer"):
        super().__init__(name=name)
        if not isinstance(max_seq_length, int) or max_seq_length < 3:
            raise ValueError(f"max_seq_length must be an integer >= 3 ([CLS] token [SEP]), got {max_seq_length!r}")
        vocab = load_vocabulary(vocab_model, lower_case=lower_case)
        # === Resources ===
        if vocab.kind == "sentencepiece":
            with open(vocab_model, "rb") as f:
                self.sentencepiece = tf_text.SentencepieceTokenizer(model=f.read(), out_type=tf.int32)
        else:
            self.wordpiece = vocab.tokenizer()
            self.tokens = tf.constant(vocab.tokens, tf.string)
        self.vocab_model = tf.saved_model.Asset(vocab_model)
        # === Config ===
        self.kind = vocab.kind
        self.specials = vocab.specials
        self.lower_case = vocab.lower_case
        self.vocab_size = vocab.size
        self.max_seq_length = max_seq_length

    def tokenize(self, sentences):
        """int32 ``RaggedTensor`` ``[B, (T)]`` of piece ids, without special tokens."""
        if self.kind == "sentencepiece":
            return self.sentencepiece.tokenize(sentences)
        return self.wordpiece.tokenize(sentences)

    def pack(self, tokens):
        """``[CLS] tokens [SEP]``, truncated and padded.

        Args:
            tokens: int32 ``RaggedTensor`` ``[B, (T)]`` of piece ids.

        Returns:
            ``(input_ids, input_mask)``, int32 ``[B, L]``.
        """
        tokens = tokens.with_row_splits_dtype(tf.int64)[:, : self.max_seq_length - 2]
        rows = tokens.nrows()
        cls = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], self.specials.cls), row_splits_dtype=tf.int64)
        sep = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], self.specials.sep), row_splits_dtype=tf.int64)
        ids = tf.concat([cls, tokens, sep], axis=1)
        # At least [CLS] [SEP] wide, also for a batch of no sentences: [0, 2], not [0, 0], so every signature
        # (encode_text's [CLS] output included) returns empty results instead of failing.
        shape = tf.stack([rows, tf.maximum(tf.reduce_max(tf.concat([ids.row_lengths(), [2]], 0)), 2)])
        return (ids.to_tensor(default_value=self.specials.pad, shape=shape),
                tf.ones_like(ids).to_tensor(default_value=0, shape=shape))

    def encode(self, sentences):
        """Sentences (``tf.string [B]``) to ``(input_ids, input_mask)``, int32 ``[B, L]``."""
        return self.pack(self.tokenize(sentences))

    def encode_with_masks(self, sentences):
        """Like :meth:`encode`, with every literal ``[MASK]`` in the text turned into the ``[MASK]`` id."""
        parts = tf.strings.split(sentences, sep=MASK_TEXT)  # [B, (parts)]
        tokens = self.tokenize(parts.flat_values).with_row_splits_dtype(tf.int64)  # [N, (T)]
        # Every part except the last of its sentence is followed by one [MASK].
        part_index = tf.range(tf.shape(parts.flat_values, out_type=tf.int64)[0]) + 1
        is_last = tf.reduce_any(tf.equal(part_index[:, None], parts.row_limits()[None, :]), axis=1)
        mask_lengths = 1 - tf.cast(is_last, tf.int64)
        mask_ids = tf.fill([tf.reduce_sum(mask_lengths)], self.specials.mask)
        masks = tf.RaggedTensor.from_row_lengths(mask_ids, mask_lengths)
        pieces = tf.concat([tokens, masks], axis=1)
        per_sentence = tf.RaggedTensor.from_row_splits(pieces, parts.row_splits).merge_dims(1, 2)
        return self.pack(per_sentence)

    def pieces(self, ids):
        """The pieces (``tf.string``) of int32 ids of any shape."""
        if self.kind == "sentencepiece":
            return self.sentencepiece.id_to_string(ids)
        return tf.gather(self.tokens, ids)
