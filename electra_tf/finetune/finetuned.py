"""Loading the best fine-tuned classifier that a search kept in ``OUT/best/``.

Example:

>>> model, task, info = load_finetuned("runs/sst2")                      # doctest: +SKIP
>>> sp = load_sentencepiece(info["vocab"])                                # doctest: +SKIP
>>> ids, types = encode_pair(sp.encode("a fine film"), None, info["max_seq_length"])   # doctest: +SKIP
>>> model({"input_ids": tf.constant([ids]), "token_type_ids": tf.constant([types])})["logits"]   # doctest: +SKIP
"""

import json
import os

import tensorflow as tf

from electra_tf.finetune.glue import Task
from electra_tf.finetune.heads import SpanExtractor, TokenTagger
from electra_tf.finetune.qa import QATask
from electra_tf.finetune.runner import build_classifier, load_encoder
from electra_tf.finetune.tagging import TaggingTask
from electra_tf.pretrained import find_config

__all__ = ["load_finetuned"]


def load_finetuned(path):
    """``(model, task, info)`` from a search's output dir (or its ``best/`` dir).

    The model is a ``SequenceClassifier`` (GLUE and custom tasks), a
    ``TokenTagger`` (chunking, tagging_custom) or a ``SpanExtractor`` (QA).

    ``info`` is ``best.json``: the run, its config and dev metrics, the
    checkpoint, the vocabulary and ``max_seq_length`` used. The pretrained
    model the run started from must still exist (its config rebuilds the encoder).

    Raises:
        FileNotFoundError: no ``best.json`` at ``path`` or ``path/best``.
    """
    for directory in (os.path.join(path, "best"), path):
        if os.path.isfile(os.path.join(directory, "best.json")):
            break
    else:
        raise FileNotFoundError(f"no best.json in {path} or {os.path.join(path, 'best')}: expected the "
                                "--output_dir of scripts/finetune.py")
    with open(os.path.join(directory, "best.json"), "r", encoding="utf-8") as f:
        info = json.load(f)
    identity = info["identity"]
    task_fields = dict(identity["task"])
    for key in ("label_names", "metrics", "tfds_text"):
        if task_fields.get(key) is not None:
            task_fields[key] = tuple(task_fields[key])
    pretrained = identity["pretrained"]
    dropout = info["config"]["dropout"]
    if "version" in task_fields:  # question answering
        task = QATask(**task_fields)
        model = SpanExtractor(load_encoder(pretrained, find_config(pretrained), dropout), dropout=dropout,
                              answerable_head=task.answerable_head, name="span_extractor")
        model.build()
    elif "token_column" in task_fields:  # token tagging
        task = TaggingTask(**task_fields)
        model = TokenTagger(load_encoder(pretrained, find_config(pretrained), dropout), task.num_labels,
                            dropout=dropout, name="tagger")
        model.build()
    else:
        task = Task(**task_fields)
        model = build_classifier(pretrained, find_config(pretrained), task.num_labels, dropout)
    checkpoint = tf.train.latest_checkpoint(directory)
    status = tf.train.Checkpoint(classifier=model, weights=list(model.weights)).read(checkpoint)
    status.assert_existing_objects_matched()
    info["checkpoint"] = checkpoint
    return model, task, info
