"""Data: text sources, SentencePiece vocabularies, TFRecord data dirs and masking.

* :mod:`~electra_tf.data.corpus` — text files, JSONL, TFDS and the built-in corpus
  (:mod:`~electra_tf.data.docstrings`) as documents.
* :mod:`~electra_tf.data.vocab` — SentencePiece training with fixed special ids.
* :mod:`~electra_tf.data.wordpiece` — WordPiece ``vocab.txt`` (special ids read from the file);
  :mod:`~electra_tf.data.vocabulary` — one interface over both kinds.
* :mod:`~electra_tf.data.original` — google-research/electra's pretraining TFRecords as a data dir.
* :mod:`~electra_tf.data.packing` and :mod:`~electra_tf.data.writer` — sequences
  packed within documents, written as sharded TFRecords with a manifest.
* :mod:`~electra_tf.data.manifest` — reading and checking a data dir.
* :mod:`~electra_tf.data.tfrecords` — the masked ``tf.data`` pipeline.
* :mod:`~electra_tf.data.masking` — the one masking function.
* :mod:`~electra_tf.data.builtin` — the data a run uses when given none.

Nothing is imported here, so that tokenizer worker processes start without TensorFlow.
"""
