"""What every converter shares: output dirs written whole or not at all, model dirs, vocabularies, refusals.

A conversion writes into a temporary sibling of its output
(:func:`start_output`) and renames it into place at the end
(:func:`finish_output`): a failed conversion leaves nothing at the output
path. An import ends in :func:`write_model_dir` (what ``scripts/pretrain.py``
leaves plus ``vocab.txt`` and ``conversion.json``); an export starts from
:func:`load_for_export`, which refuses, by name, each setting the target
format cannot express.
"""

import json
import logging
import os
import shutil
import tempfile
from typing import Dict, List, Tuple

import keras
import numpy as np
import tensorflow as tf
import yaml

from electra_tf.data.wordpiece import read_tokens as read_vocab  # one vocab.txt reader for data and converters

log = logging.getLogger(__name__)

VOCAB_FILE = "vocab.txt"
RECORD_FILE = "conversion.json"


class ConversionError(ValueError):
    """An input cannot be converted, or the output cannot be written; the message names the problem."""


# --------------------------------------------------------------------------- output dirs


def start_output(output, overwrite, flag="--output"):
    """A fresh temporary dir beside ``output`` (refusing an existing ``output`` without ``overwrite``)."""
    if not output:
        raise ConversionError(f"{flag} must name a directory")
    if os.path.exists(output) and not overwrite:
        raise ConversionError(f"{flag} {output} already exists; pass --overwrite to replace it, or another path")
    if os.path.exists(output) and not os.path.isdir(output):
        raise ConversionError(f"{flag} {output} is a file, not a directory")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise ConversionError(f"{flag} {output}: its parent directory {parent} does not exist")
    return tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(output))}.partial-", dir=parent)


def finish_output(staging, output):
    """Renames the finished ``staging`` dir to ``output``, replacing an old one only once the new one is complete."""
    old = None
    if os.path.exists(output):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(output))}.old-",
                               dir=os.path.dirname(os.path.abspath(output)))
        os.rename(output, os.path.join(old, "dir"))
    os.rename(staging, output)
    if old:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- vocabularies


def check_vocab(vocab_file, rows, table):
    """Refuses a ``vocab.txt`` whose size is not the word table's ``rows``; returns its tokens."""
    tokens = read_vocab(vocab_file)
    if len(tokens) != rows:
        raise ConversionError(f"{vocab_file} has {len(tokens)} tokens but the checkpoint's table {table} has {rows} "
                              "rows: the vocabulary is not the one this model was trained with")
    return tokens


# --------------------------------------------------------------------------- model dirs


def fresh_models(cfg):
    """``(generator, discriminator)`` of ``cfg``, initialised from ``train.seed``."""
    from electra_tf.models import build_models

    keras.utils.set_random_seed(cfg.train.seed)
    return build_models(cfg)


def assign(weights, mapping, models=("discriminator", "generator")):
    """Assigns arrays to the variables of ``mapping`` (``{model: [(name, variable, qkv part)]}``).

    ``weights`` is ``{name: array}`` for all models, or ``{model: {name: array}}``
    where each model has its own copy of a name (two embedding blocks). The
    fused QKV kernel is assembled from its three parts. Returns how many
    distinct arrays were read.
    """
    parts: Dict[int, Tuple[object, List]] = {}
    read = set()
    for model in models:
        source = weights[model] if model in weights and isinstance(weights[model], dict) else weights
        for name, variable, part in mapping[model]:
            value = source[name]
            if part is None:
                variable.assign(value)
            else:
                parts.setdefault(id(variable), (variable, [None, None, None]))[1][part] = value
            read.add((id(source), name))
    for variable, pieces in parts.values():
        variable.assign(np.concatenate(pieces, axis=-1))
    return len(read)


def collect(entries):
    """``{name: array}`` of one model's ``[(name, variable, qkv part)]`` (a fused QKV split into its parts)."""
    out = {}
    for name, variable, part in entries:
        array = np.asarray(variable.numpy())
        out[name] = array if part is None else np.split(array, 3, axis=-1)[part]
    return out


def save_checkpoint(directory, generator, discriminator, step):
    checkpoint = tf.train.Checkpoint(generator=generator, discriminator=discriminator)
    tf.train.CheckpointManager(checkpoint, os.path.join(directory, "checkpoints"), max_to_keep=1).save(
        checkpoint_number=step)


def write_model_dir(directory, generator, discriminator, step, raw, header, vocab_file, record):
    """``checkpoints/ckpt-<step>``, ``config.yaml`` (``header`` + ``raw``), ``vocab.txt`` and ``conversion.json``."""
    save_checkpoint(directory, generator, discriminator, step)
    with open(os.path.join(directory, "config.yaml"), "w", encoding="utf-8") as f:
        f.write(header)
        yaml.safe_dump(raw, f, sort_keys=False, default_flow_style=False)
    shutil.copyfile(vocab_file, os.path.join(directory, VOCAB_FILE))
    with open(os.path.join(directory, RECORD_FILE), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)


# --------------------------------------------------------------------------- exports


def refuse_inexpressible(cfg, target, activations=("gelu",), fixed_epsilon=1e-12):
    """Raises :class:`ConversionError` naming every setting of ``cfg`` that ``target`` cannot express.

    ``activations`` are the ones the target's transformer knows;
    ``fixed_epsilon`` is its LayerNorm epsilon when it has no setting for it
    (None: any epsilon is expressible).
    """
    m = cfg.model
    problems = []
    if m.relative_buckets:
        problems.append(f"model.relative_buckets={m.relative_buckets} (T5 relative position bias; {target} has "
                        "absolute positions only: relative_buckets 0)")
    if not m.absolute_positions:
        problems.append(f"model.absolute_positions=false ({target} always adds absolute position embeddings)")
    if not m.type_vocab_size:
        problems.append(f"model.type_vocab_size=0 ({target} always has token-type embeddings)")
    if m.init == "admin":
        problems.append(f"model.init=admin (Admin's shortcut scales ω; {target} adds its shortcuts unscaled)")
    if m.activation not in activations:
        problems.append(f"model.activation={m.activation} ({target} supports {', '.join(activations)})")
    if fixed_epsilon is not None and m.layer_norm_epsilon != fixed_epsilon:
        problems.append(f"model.layer_norm_epsilon={m.layer_norm_epsilon} ({target} fixes its LayerNorm epsilon "
                        f"at {fixed_epsilon})")
    if cfg.embedding_sharing == "gdes":
        problems.append(f"embedding_sharing=gdes (a GDES delta on the discriminator's table; {target} has no delta "
                        "table)")
    if problems:
        raise ConversionError(f"{target} cannot express this model: " + "; ".join(problems))


def load_for_export(model_dir, target, which=("generator", "discriminator"), **refusal):
    """``(cfg, generator, discriminator, vocab_file, tokens)`` of a model dir ``target`` can express.

    Raises:
        ConversionError: no ``config.yaml``, a setting ``target`` cannot
            express (:func:`refuse_inexpressible`), no ``vocab.txt`` (a
            SentencePiece model) or one of the wrong size. The ``vocab.txt``
            is looked for as fine-tuning looks for a vocabulary: beside the
            model dir (a converted one), in its ``export/`` (a run continued
            from one) or in the data dir it was trained on.
    """
    from electra_tf.finetune.search import find_vocab
    from electra_tf.pretrained import find_config, load_pretrained

    if not os.path.isdir(model_dir):
        raise ConversionError(f"--input {model_dir} is not a model dir")
    try:
        cfg = find_config(model_dir)
    except FileNotFoundError as exc:
        raise ConversionError(str(exc)) from None
    refuse_inexpressible(cfg, target, **refusal)
    try:  # beside the model dir (converted), in its export/ (a run), or in the data dir it was trained on
        vocab_file = find_vocab(model_dir, cfg)
    except FileNotFoundError:
        vocab_file = None
    if vocab_file is None or os.path.basename(vocab_file) != VOCAB_FILE:
        raise ConversionError(f"{target} cannot express this model: {model_dir} has no {VOCAB_FILE}: "
                              f"{target} reads a WordPiece vocabulary and this "
                              "model dir has none (a model trained on a SentencePiece vocabulary cannot be "
                              "expressed; models converted from google-research/electra or Hugging Face carry "
                              "theirs)")
    tokens = read_vocab(vocab_file)
    if len(tokens) != cfg.model.vocab_size:
        raise ConversionError(f"{vocab_file} has {len(tokens)} tokens but model.vocab_size is {cfg.model.vocab_size}")
    _, generator, discriminator = load_pretrained(model_dir, which=which, cfg=cfg)
    return cfg, generator, discriminator, vocab_file, tokens
