"""The fine-tuned QA model as a SavedModel with a text signature: question and context strings in, answer out.

``answer_text`` (also ``serving_default``) takes ``question`` and ``context``
(``tf.string [B]``) and returns ``answer`` (``tf.string [B]``: the context's
own characters, "" when the model says there is none), ``score`` (the best
span's start + end logit), ``null_odds`` (the ``[CLS]`` span's score minus
that), and ``answer_start`` / ``answer_end`` (UTF-8 byte offsets in the
context; -1 for no answer). Tokenization runs in the graph with the run's
vocabulary (tensorflow-text's SentencePiece op, or its ``FastBertTokenizer``
for a WordPiece ``vocab.txt``, cased as in fine-tuning; ``import
tensorflow_text`` before loading).

The signature reads one window: ``[CLS] question [SEP] context [SEP]`` with
the question cut to ``max_query_length`` pieces and the context to what is left
of ``max_seq_length`` (the run's); a longer context is truncated, not windowed
(use the Python decoder, :mod:`~electra_tf.finetune.qa_features`, for those).
Spans are at most ``max_answer_length`` pieces long. For SQuAD 2.0 models a
question is unanswered when its null odds exceed the threshold chosen on dev
(``best_f1_thresh`` of the best run); version 1 models always answer.

Example:

>>> path = export_qa("runs/squad2_out")                                        # doctest: +SKIP
>>> import tensorflow_text                                                      # doctest: +SKIP
>>> qa = tf.saved_model.load(path).signatures["answer_text"]                    # doctest: +SKIP
>>> qa(question=tf.constant(["what is the number ?"]), context=tf.constant(["it is 7 ."]))["answer"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil

import tensorflow as tf

from electra_tf.data.vocabulary import load_vocabulary

__all__ = ["QAExportModule", "export_qa", "load_finetuned_qa"]

_TEXT = tf.TensorSpec([None], tf.string)


class QAExportModule(tf.Module):
    """Serving surface of a :class:`~electra_tf.finetune.heads.SpanExtractor` (see the module docstring)."""

    def __init__(self, model, vocab_model, max_seq_length, max_query_length=64, max_answer_length=30,
                 null_threshold=None):
        super().__init__(name="qa_export")
        import tensorflow_text as tf_text

        vocab = load_vocabulary(vocab_model)
        self.model = model
        self.serving_variables = [getattr(v, "value", v) for v in model.variables]
        if vocab.kind == "sentencepiece":
            with open(vocab_model, "rb") as f:
                self.tokenizer = tf_text.SentencepieceTokenizer(model=f.read(), out_type=tf.int32)
        else:
            self.tokenizer = vocab.tokenizer()
        self.vocab_model = tf.saved_model.Asset(vocab_model)
        self.specials = vocab.specials
        self.max_seq_length = int(max_seq_length)
        self.max_query_length = int(max_query_length)
        self.max_answer_length = int(max_answer_length)
        self.null_threshold = None if null_threshold is None else float(null_threshold)
        self.answer_text = tf.function(self._answer_text, input_signature=[_TEXT, _TEXT])

    def _answer_text(self, question, context):
        q = self.tokenizer.tokenize(question).with_row_splits_dtype(tf.int64)[:, :self.max_query_length]
        c, c_start, c_end = self.tokenizer.tokenize_with_offsets(context)
        c, c_start, c_end = (x.with_row_splits_dtype(tf.int64) for x in (c, c_start, c_end))
        room = self.max_seq_length - 3 - q.row_lengths()
        keep = tf.ragged.range(c.row_lengths()) < room[:, None]
        c, c_start, c_end = (tf.ragged.boolean_mask(x, keep) for x in (c, c_start, c_end))
        rows = q.nrows()
        cls = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], self.specials.cls), row_splits_dtype=tf.int64)
        sep = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], self.specials.sep), row_splits_dtype=tf.int64)
        first = tf.concat([cls, q, sep], axis=1)
        second = tf.concat([c, sep], axis=1)
        ids = tf.concat([first, second], axis=1)
        types = tf.concat([tf.zeros_like(first), tf.ones_like(second)], axis=1)
        width = tf.reduce_max(tf.concat([ids.row_lengths(), [3]], 0))
        shape = tf.stack([rows, width])
        input_ids = ids.to_tensor(default_value=self.specials.pad, shape=shape)
        outputs = self.model({"input_ids": input_ids, "input_mask": tf.ones_like(ids).to_tensor(0, shape=shape),
                              "token_type_ids": types.to_tensor(0, shape=shape)}, training=False)
        starts, ends = outputs["start_logits"], outputs["end_logits"]
        # Valid spans: inside the context, end >= start, at most max_answer_length pieces.
        offset = first.row_lengths()[:, None]  # [B, 1] position of the first context piece
        positions = tf.range(width, dtype=tf.int64)[None, :]
        in_context = (positions >= offset) & (positions < offset + c.row_lengths()[:, None])  # [B, L]
        gap = positions - tf.transpose(positions)  # [L, L]: end - start
        span_ok = (gap >= 0) & (gap < self.max_answer_length)
        valid = in_context[:, :, None] & in_context[:, None, :] & span_ok[None]
        scores = tf.where(valid, starts[:, :, None] + ends[:, None, :], -1e9)
        flat = tf.argmax(tf.reshape(scores, [rows, -1]), axis=1)
        start, end = flat // width, flat % width
        best = tf.reduce_max(tf.reshape(scores, [rows, -1]), axis=1)
        has_span = best > -1e8
        byte_start = tf.gather(c_start.to_tensor(0), tf.maximum(start - offset[:, 0], 0), batch_dims=1)
        byte_end = tf.gather(c_end.to_tensor(0), tf.maximum(end - offset[:, 0], 0), batch_dims=1)
        text = tf.strings.strip(tf.strings.substr(context, byte_start, byte_end - byte_start))
        null_odds = starts[:, 0] + ends[:, 0] - best
        if "answerable_logits" in outputs:
            null_odds -= outputs["answerable_logits"]
        answered = has_span
        if self.null_threshold is not None:
            answered = answered & (null_odds <= self.null_threshold)
        return {"answer": tf.where(answered, text, ""), "score": tf.where(has_span, best, 0.0),
                "null_odds": tf.where(has_span, null_odds, 0.0),
                "answer_start": tf.where(answered, byte_start, -1), "answer_end": tf.where(answered, byte_end, -1)}


def load_finetuned_qa(output_dir):
    """``(SpanExtractor with the best weights, QATask, best.json)`` from a QA search's ``--output_dir``."""
    from electra_tf.finetune.finetuned import load_finetuned

    model, task, info = load_finetuned(output_dir)
    if not hasattr(task, "version"):
        raise ValueError(f"{output_dir} holds a {task.name} model, not a question answering one")
    return model, task, info


def export_qa(output_dir, export_dir=None):
    """Writes the best QA model of ``output_dir`` as a SavedModel (default ``OUT/export``); returns its path.

    Written to a temporary dir and renamed when complete, so no half-written export is left behind.
    """
    model, task, info = load_finetuned_qa(output_dir)
    export_dir = export_dir or os.path.join(output_dir, "export")
    threshold = info["metrics"].get("best_f1_thresh") if task.version == 2 else None
    module = QAExportModule(model, info["vocab"], info["max_seq_length"], task.max_query_length,
                            task.max_answer_length, threshold)
    tmp = export_dir.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tf.saved_model.save(module, tmp, signatures={"serving_default": module.answer_text,
                                                 "answer_text": module.answer_text})
    if os.path.isdir(export_dir):
        shutil.rmtree(export_dir)
    os.replace(tmp, export_dir)
    return export_dir
