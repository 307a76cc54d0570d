"""Token tagging: CoNLL-2000 chunking and any CoNLL-style file with a tag column.

Each sentence becomes ``[CLS] pieces of word 1 ... pieces of word n [SEP]``;
the label of a word sits on its first piece and every other position has no
label (-1), as in the original ELECTRA. Words come split by the file and each
is tokenized alone, with the pretraining vocabulary: a SentencePiece model, or
a WordPiece ``vocab.txt`` (cased as the vocabulary decides, see
:mod:`~electra_tf.data.wordpiece`; a word BERT's basic tokenizer splits, such
as ``U.S.``, is still one word with several pieces). A word's tag is predicted at its
first piece; words cut off by ``max_seq_length`` are predicted ``O``, so the
span F1 (:func:`~electra_tf.finetune.conll.chunk_scores`, the CoNLL script's)
is always over every word of the dev file.

Example:

>>> task = tagging_task("chunking")
>>> task.train_file, task.dev_files["dev"], task.main_metric
('train.txt', 'test.txt', 'f1')
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from electra_tf.data.packing import specials_of
from electra_tf.data.vocabulary import load_vocabulary
from electra_tf.finetune.conll import chunk_scores, read_conll
from electra_tf.finetune.features import EncodedSplit
from electra_tf.finetune.heads import TokenTagger
from electra_tf.finetune.runner import FinetuneRun, load_encoder

__all__ = ["TAGGING_NAMES", "TaggingTask", "TAGGING_TASKS", "tagging_task", "read_tagging", "TaggedSplit",
           "encode_tagging", "encode_tagging_task", "predicted_tags", "TaggingRun"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TaggingTask:
    """A token tagging task on CoNLL-style files.

    Attributes:
        name: ``chunking`` or ``tagging_custom``.
        token_column: 0-based field of the word.
        tag_column: 0-based field of the tag (-1: the last).
        train_file: the training file inside the data dir.
        dev_files: evaluation split -> file (the split ``dev`` selects).
        label_names: the tags, set from the files when they are read (:meth:`resolved`).
    """

    name: str
    token_column: int = 0
    tag_column: int = -1
    train_file: str = "train.txt"
    dev_files: Mapping[str, str] = dataclasses.field(default_factory=lambda: {"dev": "dev.txt"})
    label_names: Tuple[str, ...] = ()
    metrics: Tuple[str, ...] = ("f1", "precision", "recall", "accuracy")
    main_metric: str = "f1"

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def eval_splits(self) -> Tuple[str, ...]:
        return tuple(self.dev_files)

    def metric_key(self, metric: str, split: str) -> str:
        return metric if split == "dev" else f"{metric}_{split.replace('dev_', '', 1)}"

    def resolved(self, examples: Dict[str, list]) -> "TaggingTask":
        """The task with ``label_names``: every tag of every split, sorted (``O`` first when present)."""
        tags = {t for rows in examples.values() for s in rows for t in s.tags}
        return dataclasses.replace(self, label_names=tuple(sorted(tags, key=lambda t: (t != "O", t))))


TAGGING_NAMES = ("chunking", "tagging_custom")

#: CoNLL-2000 ships train.txt and test.txt (``word POS chunk``); the test file is the dev split, as in the
#: original ELECTRA's chunking results.
TAGGING_TASKS = {"chunking": TaggingTask("chunking", token_column=0, tag_column=2, train_file="train.txt",
                                         dev_files={"dev": "test.txt"})}


def tagging_task(name: str, token_column: int = 0, tag_column: int = -1, train_file: Optional[str] = None,
                 dev_file: Optional[str] = None) -> TaggingTask:
    """``chunking`` (CoNLL-2000 layout; the file names may be changed) or ``tagging_custom``."""
    if name == "chunking":
        task = TAGGING_TASKS["chunking"]
    elif name == "tagging_custom":
        task = TaggingTask("tagging_custom", token_column=token_column, tag_column=tag_column)
    else:
        raise ValueError(f"unknown tagging task {name!r}; accepted: chunking, tagging_custom")
    changes = {}
    if train_file:
        changes["train_file"] = train_file
    if dev_file:
        changes["dev_files"] = {"dev": dev_file}
    return dataclasses.replace(task, **changes)


def read_tagging(task: TaggingTask, data_dir: str):
    """``{split: [Sentence]}`` for ``train`` and the task's eval splits, from the files in ``data_dir``."""
    if not data_dir or not os.path.isdir(data_dir):
        raise FileNotFoundError(f"--data_dir {data_dir} is not a directory (task {task.name} needs one holding "
                                f"{task.train_file} and {', '.join(task.dev_files.values())})")
    out = {}
    for split, name in {"train": task.train_file, **task.dev_files}.items():
        path = os.path.join(data_dir, name)
        out[split] = read_conll(path, task.token_column, task.tag_column)
        log.info("%s %s: %d sentences from %s", task.name, split, len(out[split]), path)
    return out


@dataclasses.dataclass
class TaggedSplit(EncodedSplit):
    """An :class:`EncodedSplit` of sentences; ``gold`` keeps every word's tag (truncated words included)."""

    gold: List[Tuple[str, ...]] = dataclasses.field(default_factory=list)


def encode_tagging(sp, task: TaggingTask, sentences, max_seq_length: int) -> TaggedSplit:
    """Tokenizes every word with ``sp``; the tag id goes on the word's first piece, -1 everywhere else.

    ``sp`` is a vocabulary of :mod:`electra_tf.data.vocabulary` (its special
    ids are used) or a bare ``SentencePieceProcessor`` (ids 0-4). A word that
    tokenizes to nothing becomes ``[UNK]``.
    """
    if max_seq_length < 3:
        raise ValueError(f"max_seq_length must leave room for [CLS], [SEP] and one piece, got {max_seq_length}")
    words = sorted({w for s in sentences for w in s.words})
    pieces = dict(zip(words, sp.encode(words)))
    specials = specials_of(sp)
    tag_ids = {t: i for i, t in enumerate(task.label_names)}
    ids, types, labels, truncated = [], [], [], 0
    for sentence in sentences:
        row, row_labels = [specials.cls], [-1]
        for word, tag in zip(sentence.words, sentence.tags):
            word_pieces = pieces[word] or [specials.unk]
            if len(row) + len(word_pieces) > max_seq_length - 1:
                truncated += 1
                break
            row += word_pieces
            row_labels += [tag_ids[tag]] + [-1] * (len(word_pieces) - 1)
        ids.append(row + [specials.sep])
        labels.append(row_labels + [-1])
        types.append([0] * len(ids[-1]))
    if truncated:
        log.info("%d of %d sentences cut at %d pieces (their last words are predicted O)", truncated,
                 len(sentences), max_seq_length)
    return TaggedSplit(ids, types, labels, truncated, specials, gold=[s.tags for s in sentences])


def encode_tagging_task(task, examples, vocab_path, max_seq_length, vocab_size=None):
    """``{split: TaggedSplit}``, every split tokenized once with the vocabulary at ``vocab_path`` (either kind)."""
    vocab = load_vocabulary(vocab_path, expected_vocab_size=vocab_size)
    if vocab.kind == "wordpiece":
        log.info("%s", vocab.describe_casing())
    return {split: encode_tagging(vocab, task, rows, max_seq_length) for split, rows in examples.items()}


def predicted_tags(task: TaggingTask, split: TaggedSplit, batches) -> List[List[str]]:
    """Every sentence's predicted tags from the eval ``batches`` (logits [B, S, L], label [B, S], weight [B])."""
    out = []
    for batch in batches:
        for logits, labels, weight in zip(batch["logits"], batch["label"], batch["weight"]):
            if weight <= 0:
                continue
            ids = np.argmax(logits[labels >= 0], axis=-1)
            out.append([task.label_names[i] for i in ids])
    for i, gold in enumerate(split.gold):
        out[i] += ["O"] * (len(gold) - len(out[i]))
    return out


class TaggingRun(FinetuneRun):
    """A :class:`~electra_tf.finetune.runner.FinetuneRun` of a :class:`TokenTagger`: cross entropy over the
    labelled (first) pieces, averaged per sentence; the CoNLL script's chunk scores on dev."""

    def _build_model(self):
        encoder = load_encoder(self.pretrained, self.pretrained_cfg, self.config.dropout)
        model = TokenTagger(encoder, self.task.num_labels, dropout=self.config.dropout, name="tagger")
        model.build()
        return model

    def _per_example_loss(self, outputs, batch):
        labels = batch["label"]
        mask = tf.cast(labels >= 0, tf.float32)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.maximum(labels, 0),
                                                                logits=outputs["logits"])
        return tf.reduce_sum(losses * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    def _eval_outputs(self, outputs, batch):
        return {"logits": outputs["logits"], "label": batch["label"]}

    def _split_metrics(self, split, batches):
        data = self.data[split]
        return chunk_scores(data.gold, predicted_tags(self.task, data, batches))
