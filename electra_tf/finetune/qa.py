"""Extractive question answering: SQuAD 1.1, SQuAD 2.0 and any file in the SQuAD JSON format.

A :class:`~electra_tf.finetune.heads.SpanExtractor` on the pretrained
discriminator scores every piece as an answer's start and end; the loss is the
mean of the start and end cross entropies over each window's positions.
Evaluation decodes the best span of every question across its windows
(:mod:`~electra_tf.finetune.qa_features`) and scores it with the official
definitions (:mod:`~electra_tf.finetune.squad`).

Unanswerable questions (SQuAD 2.0) are decided by the null span: a question
is answered "" when its null odds (the ``[CLS]`` span's score minus the best
span's) exceed a threshold, and the threshold is the one that maximises F1
on dev (``best_f1_thresh``, as the official script finds it). That is the
default: it needs no second head or loss, it is what BERT and the official
evaluation script assume, and the threshold search on dev calibrates it.
``answerable_head=True`` (``--answerable_head``) adds ELECTRA's answerability
classifier: a third output of the span head read at ``[CLS]``, trained with
sigmoid cross entropy on whether the window holds the answer, whose highest
logit over a question's windows is subtracted from the null odds; the same
dev threshold search then applies.

``results.json`` holds the scores as fractions like every task here; v1:
``exact_match`` and ``f1``; v2: ``exact``, ``f1`` (null odds > 0 answered
""), ``HasAns_*``, ``NoAns_*``, ``best_exact``, ``best_f1`` and their
thresholds. The selecting metric is ``f1`` (v1) or ``best_f1`` (v2).
``OUT/predictions.json`` is the best run's ``{question id: answer}`` in the
official format (v2 with the dev-chosen threshold applied), beside
``null_odds.json`` (v2; the official ``--na-prob-file``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Mapping, Optional, Tuple

import tensorflow as tf

from electra_tf.data.vocabulary import load_vocabulary
from electra_tf.finetune.heads import SpanExtractor
from electra_tf.finetune.qa_features import QAWindowing, decode_predictions, encode_qa
from electra_tf.finetune.runner import FinetuneRun, load_encoder
from electra_tf.finetune.squad import parse_squad, read_squad, squad_scores

__all__ = ["QA_NAMES", "QATask", "qa_task", "read_qa", "encode_qa_task", "QARun"]

log = logging.getLogger(__name__)

QA_NAMES = ("squad1", "squad2", "qa_custom")


@dataclasses.dataclass(frozen=True)
class QATask:
    """An extractive QA task.

    Attributes:
        name: ``squad1``, ``squad2`` or ``qa_custom``.
        version: 1 or 2 (scoring and whether questions may be unanswerable); 0 until ``qa_custom``'s files are
            read (:meth:`resolved`: 2 when any question is marked ``is_impossible``).
        train_file, dev_files: file names inside the data dir.
        tfds_name: the TFDS dataset read without a data dir (None: files only).
        doc_stride, max_query_length, max_answer_length, n_best_size: see
            :class:`~electra_tf.finetune.qa_features.QAWindowing`.
    """

    name: str
    version: int
    train_file: str
    dev_files: Mapping[str, str]
    tfds_name: Optional[str] = None
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best_size: int = 20
    answerable_head: bool = False

    @property
    def main_metric(self) -> str:
        return "best_f1" if self.version == 2 else "f1"

    @property
    def eval_splits(self) -> Tuple[str, ...]:
        return tuple(self.dev_files)

    def metric_key(self, metric: str, split: str) -> str:
        return metric if split == "dev" else f"{metric}_{split.replace('dev_', '', 1)}"

    def windowing(self, max_seq_length: int) -> QAWindowing:
        return QAWindowing(max_seq_length, self.doc_stride, self.max_query_length, self.max_answer_length,
                           self.n_best_size)

    def resolved(self, examples) -> "QATask":
        if self.version:
            return self
        impossible = any(ex.is_impossible for rows in examples.values() for ex in rows)
        return dataclasses.replace(self, version=2 if impossible else 1)


def qa_task(name: str, train_file: Optional[str] = None, dev_file: Optional[str] = None, doc_stride: int = 128,
            max_query_length: int = 64, max_answer_length: int = 30, n_best_size: int = 20,
            from_tfds: bool = False, answerable_head: bool = False) -> QATask:
    """``squad1`` (train-v1.1.json, dev-v1.1.json), ``squad2`` (the v2.0 files) or ``qa_custom`` (train.json,
    dev.json; the version from the files)."""
    defaults = {"squad1": (1, "train-v1.1.json", "dev-v1.1.json", "squad/v1.1"),
                "squad2": (2, "train-v2.0.json", "dev-v2.0.json", "squad/v2.0"),
                "qa_custom": (0, "train.json", "dev.json", None)}
    if name not in defaults:
        raise ValueError(f"unknown QA task {name!r}; accepted: {', '.join(QA_NAMES)}")
    version, train, dev, tfds_name = defaults[name]
    if from_tfds and tfds_name is None:
        raise ValueError("--task qa_custom needs --data_dir with its SQuAD-format JSON files")
    task = QATask(name, version, train_file or train, {"dev": dev_file or dev}, tfds_name, doc_stride,
                  max_query_length, max_answer_length, n_best_size, answerable_head)
    task.windowing(max(384, max_query_length + 4))  # checks the numbers
    return task


def _read_tfds(task: QATask, data_dir: Optional[str]):
    import tensorflow_datasets as tfds

    out = {}
    for split, tfds_split in (("train", "train"), ("dev", "validation")):
        try:
            ds = tfds.load(task.tfds_name, split=tfds_split, data_dir=data_dir)
        except Exception as exc:  # noqa: BLE001 - TFDS fails in many ways (no network, missing files)
            reason = (str(exc).splitlines() or [""])[0][:300]
            raise FileNotFoundError(f"cannot load TFDS {task.tfds_name}[{tfds_split}] ({type(exc).__name__}: "
                                    f"{reason}); prepare it in --tfds_data_dir, or give --data_dir with the "
                                    f"official JSON files") from exc
        paragraphs = []
        for row in tfds.as_numpy(ds):
            answers = [{"text": t.decode("utf-8"), "answer_start": int(s)}
                       for t, s in zip(row["answers"]["text"], row["answers"]["answer_start"])]
            qa = {"id": row["id"].decode("utf-8"), "question": row["question"].decode("utf-8"), "answers": answers,
                  "is_impossible": bool(row.get("is_impossible", False))}
            paragraphs.append({"context": row["context"].decode("utf-8"), "qas": [qa]})
        source = f"TFDS {task.tfds_name}[{tfds_split}]"
        out[split] = parse_squad({"data": [{"title": "", "paragraphs": paragraphs}]}, source, task.version)
        log.info("%s %s: %d questions from %s", task.name, split, len(out[split]), source)
    return out


def read_qa(task: QATask, data_dir: Optional[str] = None, tfds_data_dir: Optional[str] = None):
    """``{split: [QAExample]}``: the JSON files of ``data_dir``, else the task's TFDS dataset."""
    if not data_dir:
        if not task.tfds_name:
            raise ValueError(f"--task {task.name} needs --data_dir with its SQuAD-format JSON files")
        return _read_tfds(task, tfds_data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"--data_dir {data_dir} is not a directory (task {task.name} needs one holding "
                                f"{task.train_file} and {', '.join(task.dev_files.values())})")
    out = {}
    for split, name in {"train": task.train_file, **task.dev_files}.items():
        out[split] = read_squad(os.path.join(data_dir, name), task.version or 2)
        log.info("%s %s: %d questions from %s", task.name, split, len(out[split]), os.path.join(data_dir, name))
    return out


def encode_qa_task(task, examples, vocab_path, max_seq_length, vocab_size=None):
    """``{split: QASplit}``: training windows labelled with their answer, eval windows for decoding.

    ``vocab_path`` is the pretraining vocabulary, a SentencePiece model or a WordPiece ``vocab.txt``.
    """
    vocab = load_vocabulary(vocab_path, expected_vocab_size=vocab_size)
    if vocab.kind == "wordpiece":
        log.info("%s", vocab.describe_casing())
    windowing = task.windowing(max_seq_length)
    return {split: encode_qa(vocab, rows, windowing, training=split == "train") for split, rows in examples.items()}


def _write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
    os.replace(tmp, path)


class QARun(FinetuneRun):
    """A :class:`~electra_tf.finetune.runner.FinetuneRun` of a :class:`SpanExtractor`; at every new best dev
    evaluation it writes ``predictions.json`` (and ``null_odds.json`` for v2) into the run dir."""

    def _build_model(self):
        encoder = load_encoder(self.pretrained, self.pretrained_cfg, self.config.dropout)
        model = SpanExtractor(encoder, dropout=self.config.dropout, answerable_head=self.task.answerable_head,
                              name="span_extractor")
        model.build()
        return model

    def _per_example_loss(self, outputs, batch):
        labels = tf.cast(batch["label"], tf.int32)
        start = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels[:, 0], logits=outputs["start_logits"])
        end = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels[:, 1], logits=outputs["end_logits"])
        loss = (start + end) / 2.0
        if self.task.answerable_head:  # the window holds the answer iff its label is not the [CLS] span
            answerable = tf.cast(labels[:, 0] > 0, tf.float32)
            loss += tf.nn.sigmoid_cross_entropy_with_logits(labels=answerable, logits=outputs["answerable_logits"])
        return loss

    def _eval_outputs(self, outputs, batch):
        keys = ("start_logits", "end_logits") + (("answerable_logits",) if self.task.answerable_head else ())
        return {k: outputs[k] for k in keys}

    def _split_metrics(self, split, batches):
        data = self.data[split]
        keep = [batch["weight"] > 0 for batch in batches]
        starts = [s for batch, k in zip(batches, keep) for s, ok in zip(batch["start_logits"], k) if ok]
        ends = [e for batch, k in zip(batches, keep) for e, ok in zip(batch["end_logits"], k) if ok]
        answerable = None
        if self.task.answerable_head:
            answerable = [a for batch, k in zip(batches, keep) for a, ok in zip(batch["answerable_logits"], k) if ok]
        texts, odds, _ = decode_predictions(data, starts, ends, self.task.max_answer_length, self.task.n_best_size,
                                            answerable_logits=answerable)
        version = self.task.version
        if version == 1:
            scores = squad_scores(data.examples, texts, 1)
            predictions, null_odds = texts, None
        else:
            scores = squad_scores(data.examples, texts, 2, null_odds=odds, threshold=0.0)
            threshold = scores["best_f1_thresh"]
            predictions = {q: ("" if odds[q] > threshold else t) for q, t in texts.items()}
            null_odds = odds
        if split == "dev":
            self._last_predictions = (predictions, null_odds)
        return {k: (v if k.endswith("_thresh") else v / 100.0) for k, v in scores.items()
                if not k.endswith("total")}

    def _on_best(self, step):
        predictions, null_odds = self._last_predictions
        _write_json(os.path.join(self.run_dir, "predictions.json"), predictions)
        if null_odds is not None:
            _write_json(os.path.join(self.run_dir, "null_odds.json"), null_odds)
