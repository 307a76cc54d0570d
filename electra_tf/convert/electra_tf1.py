"""google-research/electra's TensorFlow 1 checkpoints, read by variable name and written back.

The original (``run_pretraining.py``, ``model/modeling.py``) names its
variables by TF1 variable scope:

* ``electra/embeddings/{word_embeddings, token_type_embeddings,
  position_embeddings, LayerNorm/gamma, LayerNorm/beta}``: one block, read by
  both models (the generator is built with ``untied_embeddings=False``);
* ``electra/embeddings_project/{kernel,bias}`` and
  ``generator/embeddings_project/{kernel,bias}`` where the embedding width
  differs from the model's;
* ``{electra,generator}/encoder/layer_N/attention/self/{query,key,value}/…``,
  ``attention/output/dense``, ``attention/output/LayerNorm``,
  ``intermediate/dense``, ``output/dense``, ``output/LayerNorm``;
* ``discriminator_predictions/dense`` (+ GELU) and ``dense_1`` (one logit);
* ``generator_predictions/dense`` (+ GELU), ``generator_predictions/LayerNorm``,
  ``generator_predictions/output_bias`` (the output weights are the word table);
* ``global_step`` and the AdamW slots ``<name>/adam_m``, ``<name>/adam_v``.

Reading uses ``tf.train.load_checkpoint`` only (no TF1 graph). The number of
attention heads is not in the checkpoint: it is the original's rule
``max(1, hidden // 64)`` unless given. Writing uses the ``SaveV2`` op, the one
a TF1 ``Saver`` runs, so the original's ``tf.train.init_from_checkpoint`` and
``Saver.restore`` read the result by name.

A converted model dir is what ``scripts/pretrain.py`` leaves (``config.yaml``,
``checkpoints/ckpt-N`` holding ``generator`` and ``discriminator``) plus the
``vocab.txt`` and ``conversion.json`` (where it came from). Every write goes
to a temporary sibling of the output, renamed into place at the end: a failed
conversion leaves no output behind.
"""

import dataclasses
import glob
import json
import logging
import os
import re
import shutil
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf
import yaml

from electra_tf.config import config_from_dict, preset_path
from electra_tf.convert.common import (
    RECORD_FILE,
    VOCAB_FILE,
    ConversionError,
    assign,
    check_vocab,
    finish_output,
    fresh_models,
    load_for_export,
    read_vocab,  # noqa: F401 - public here before common.py held it
    refuse_inexpressible,
    start_output,
    write_model_dir,
)

log = logging.getLogger(__name__)

SLOT_SUFFIXES = ("/adam_m", "/adam_v")
GLOBAL_STEP = "global_step"
# Scalars some checkpoints of the original hold beside the weights (Hugging Face's converter skips them too).
NOT_WEIGHTS = ("temperature",)
EMBEDDING_SCOPE = "electra/embeddings"
_LAYER = re.compile(r"^(electra|generator)/encoder/layer_(\d+)/")


@dataclasses.dataclass(frozen=True)
class Tf1Architecture:
    """What a TF1 ELECTRA checkpoint's shapes say (heads come from the rule or the caller).

    ``generator`` is ``(hidden, layers, heads, intermediate)``, or None for a
    discriminator-only checkpoint.
    """

    vocab_size: int
    embedding_size: int
    max_position_embeddings: int
    type_vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    generator: Optional[Tuple[int, int, int, int]]


# --------------------------------------------------------------------------- names


def _encoder_names(scope, layers, projected):
    names = [f"{scope}/embeddings_project/{p}" for p in ("kernel", "bias")] if projected else []
    for i in range(layers):
        base = f"{scope}/encoder/layer_{i}"
        for part in ("attention/self/query", "attention/self/key", "attention/self/value",
                     "attention/output/dense", "intermediate/dense", "output/dense"):
            names += [f"{base}/{part}/kernel", f"{base}/{part}/bias"]
        for part in ("attention/output/LayerNorm", "output/LayerNorm"):
            names += [f"{base}/{part}/gamma", f"{base}/{part}/beta"]
    return names


def _entries(model, scope):
    """``[(tf1 name, variable, part)]`` of one encoder; ``part`` is (index, 3) for a slice of the fused QKV."""
    enc = model.encoder
    emb = enc.embeddings
    out = [(f"{EMBEDDING_SCOPE}/word_embeddings", emb.word_embedding.embeddings, None),
           (f"{EMBEDDING_SCOPE}/token_type_embeddings", emb.type_embedding.embeddings, None),
           (f"{EMBEDDING_SCOPE}/position_embeddings", emb.position_embedding.embeddings, None),
           (f"{EMBEDDING_SCOPE}/LayerNorm/gamma", emb.layer_norm.gamma, None),
           (f"{EMBEDDING_SCOPE}/LayerNorm/beta", emb.layer_norm.beta, None)]
    if emb.projection is not None:
        out += [(f"{scope}/embeddings_project/kernel", emb.projection.kernel, None),
                (f"{scope}/embeddings_project/bias", emb.projection.bias, None)]
    for i, block in enumerate(enc.blocks):
        base = f"{scope}/encoder/layer_{i}"
        qkv = block.attention.qkv_dense
        for index, part in enumerate(("query", "key", "value")):
            out += [(f"{base}/attention/self/{part}/kernel", qkv.kernel, index),
                    (f"{base}/attention/self/{part}/bias", qkv.bias, index)]
        for part, layer in (("attention/output/dense", block.attention.output_dense),
                            ("intermediate/dense", block.intermediate_dense), ("output/dense", block.output_dense)):
            out += [(f"{base}/{part}/kernel", layer.kernel, None), (f"{base}/{part}/bias", layer.bias, None)]
        for part, norm in (("attention/output/LayerNorm", block.attention_norm),
                           ("output/LayerNorm", block.output_norm)):
            out += [(f"{base}/{part}/gamma", norm.gamma, None), (f"{base}/{part}/beta", norm.beta, None)]
    return out


def tf1_variable_map(generator, discriminator):
    """``{"generator": [...], "discriminator": [...]}``: each model's ``(tf1 name, variable, qkv part)``.

    The embedding block's names (``electra/embeddings/…``) appear for both
    models: the same variables under ``embedding_sharing: all``, each model's
    own copy otherwise.
    """
    disc = _entries(discriminator, "electra")
    head = discriminator.rtd_head
    disc += [("discriminator_predictions/dense/kernel", head.dense.kernel, None),
             ("discriminator_predictions/dense/bias", head.dense.bias, None),
             ("discriminator_predictions/dense_1/kernel", head.logit.kernel, None),
             ("discriminator_predictions/dense_1/bias", head.logit.bias, None)]
    gen = []
    if generator is not None:
        gen = _entries(generator, "generator")
        mlm = generator.mlm_head
        gen += [("generator_predictions/dense/kernel", mlm.transform.kernel, None),
                ("generator_predictions/dense/bias", mlm.transform.bias, None),
                ("generator_predictions/LayerNorm/gamma", mlm.layer_norm.gamma, None),
                ("generator_predictions/LayerNorm/beta", mlm.layer_norm.beta, None),
                ("generator_predictions/output_bias", mlm.output_bias, None)]
    return {"generator": gen, "discriminator": disc}


def _value(variable, part):
    array = np.asarray(variable.numpy())
    if part is None:
        return array
    return np.split(array, 3, axis=-1)[part]


# --------------------------------------------------------------------------- reading


def find_tf1_checkpoint(path):
    """The checkpoint prefix in a released checkpoint dir (``checkpoint`` file, or the highest ``model.ckpt-N``)."""
    if os.path.isdir(path):
        try:
            found = tf.train.latest_checkpoint(path)
        except (tf.errors.OpError, ValueError):
            found = None
        if found and tf.io.gfile.exists(found + ".index"):
            return found
        indexes = glob.glob(os.path.join(path, "*.index"))
        if not indexes:
            raise ConversionError(f"--input {path} holds no TF1 checkpoint (no 'checkpoint' file and no "
                                  "*.index file; a released ELECTRA dir has model.ckpt-N.index, "
                                  "model.ckpt-N.data-00000-of-00001 and vocab.txt)")

        def number(p):
            digits = re.findall(r"-(\d+)\.index$", p)
            return int(digits[0]) if digits else -1

        return max(indexes, key=number)[: -len(".index")]
    if tf.io.gfile.exists(path + ".index"):
        return path
    raise ConversionError(f"--input {path} does not exist (expected a released ELECTRA checkpoint dir)")


def read_tf1_checkpoint(prefix):
    """``(weights, global_step, ignored)``: every model variable as a NumPy array, read by name.

    Optimizer slots, ``global_step`` and a ``temperature`` scalar are not
    weights (``ignored`` counts the slots and such scalars). Every tensor is
    read here, so a truncated or corrupt data file fails now, before anything
    is written.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
    except Exception as exc:  # noqa: BLE001 - TF raises several types for an unreadable index
        raise ConversionError(f"the checkpoint {prefix} cannot be read ({_first_line(exc)}): its .index file is "
                              "missing, truncated or not a TensorFlow checkpoint") from None
    weights, ignored, step = {}, 0, None
    others = []
    for name in sorted(shapes):
        if name.endswith(SLOT_SUFFIXES):
            ignored += 1
            continue
        if any(part in NOT_WEIGHTS for part in name.split("/")):
            others.append(name)
            continue
        try:
            value = reader.get_tensor(name)
        except Exception as exc:  # noqa: BLE001
            raise ConversionError(f"the checkpoint {prefix} cannot be read: variable {name} fails "
                                  f"({_first_line(exc)}); the data file is truncated or corrupt (download it "
                                  "again)") from None
        if name == GLOBAL_STEP:
            step = int(value)
        else:
            weights[name] = np.asarray(value)
    if others:
        log.info("ignored %s: not weights of the model", ", ".join(others))
    return weights, step, ignored + len(others)


def _first_line(exc):
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _count_layers(names, scope):
    found = {int(m.group(2)) for n in names for m in [_LAYER.match(n)] if m and m.group(1) == scope}
    if found and found != set(range(max(found) + 1)):
        raise ConversionError(f"the checkpoint's {scope} layers are not numbered 0..N-1: {sorted(found)}")
    return len(found)


def infer_architecture(weights, num_heads=None, generator_num_heads=None):
    """The :class:`Tf1Architecture` of a checkpoint's weights; refuses anything that is not the original's layout."""
    names = set(weights)
    word = f"{EMBEDDING_SCOPE}/word_embeddings"
    if word not in names:
        if any(n.startswith("bert/") for n in names):
            raise ConversionError("this is a BERT checkpoint (its variables are under bert/), not an ELECTRA one: "
                                  "google-research/electra's checkpoints have electra/embeddings/word_embeddings, "
                                  "electra/encoder/layer_N/... and discriminator_predictions/...; BERT's are not "
                                  "converted here")
        sample = ", ".join(sorted(names)[:5]) or "no variables"
        raise ConversionError(f"not a google-research/electra checkpoint: {word} is missing (it holds {sample}"
                              f"{', ...' if len(names) > 5 else ''})")
    vocab_size, embedding_size = weights[word].shape
    hidden = weights["electra/encoder/layer_0/attention/self/query/kernel"].shape[-1] \
        if "electra/encoder/layer_0/attention/self/query/kernel" in names else None
    if hidden is None:
        raise ConversionError("not a google-research/electra checkpoint: electra/encoder/layer_0 is missing")
    layers = _count_layers(names, "electra")
    intermediate = weights["electra/encoder/layer_0/intermediate/dense/kernel"].shape[-1]
    generator = None
    if any(n.startswith(("generator/", "generator_predictions/")) for n in names):
        if "generator/encoder/layer_0/attention/self/query/kernel" not in names:
            raise ConversionError("the checkpoint has generator variables but no generator/encoder/layer_0: "
                                  "it is incomplete")
        g_hidden = weights["generator/encoder/layer_0/attention/self/query/kernel"].shape[-1]
        g_inter = weights["generator/encoder/layer_0/intermediate/dense/kernel"].shape[-1]
        generator = (int(g_hidden), _count_layers(names, "generator"),
                     int(generator_num_heads or max(1, g_hidden // 64)), int(g_inter))
    arch = Tf1Architecture(
        vocab_size=int(vocab_size), embedding_size=int(embedding_size),
        max_position_embeddings=int(weights.get(f"{EMBEDDING_SCOPE}/position_embeddings", np.zeros((0,))).shape[0]),
        type_vocab_size=int(weights.get(f"{EMBEDDING_SCOPE}/token_type_embeddings", np.zeros((0,))).shape[0]),
        hidden_size=int(hidden), num_layers=layers, num_heads=int(num_heads or max(1, hidden // 64)),
        intermediate_size=int(intermediate), generator=generator)
    _check_names_and_shapes(weights, arch)
    return arch


def expected_shapes(arch):
    """``{tf1 name: shape}`` of every weight of the original at ``arch`` (no slots, no ``global_step``)."""
    shapes = {f"{EMBEDDING_SCOPE}/word_embeddings": (arch.vocab_size, arch.embedding_size),
              f"{EMBEDDING_SCOPE}/token_type_embeddings": (arch.type_vocab_size, arch.embedding_size),
              f"{EMBEDDING_SCOPE}/position_embeddings": (arch.max_position_embeddings, arch.embedding_size),
              f"{EMBEDDING_SCOPE}/LayerNorm/gamma": (arch.embedding_size,),
              f"{EMBEDDING_SCOPE}/LayerNorm/beta": (arch.embedding_size,)}
    models = [("electra", arch.hidden_size, arch.num_layers, arch.intermediate_size)]
    if arch.generator:
        g_hidden, g_layers, _, g_inter = arch.generator
        models.append(("generator", g_hidden, g_layers, g_inter))
    for scope, hidden, layers, inter in models:
        for name in _encoder_names(scope, layers, arch.embedding_size != hidden):
            if name.endswith("embeddings_project/kernel"):
                shape = (arch.embedding_size, hidden)
            elif name.endswith("intermediate/dense/kernel"):
                shape = (hidden, inter)
            elif name.endswith("intermediate/dense/bias"):
                shape = (inter,)
            elif name.endswith("output/dense/kernel") and "/attention/" not in name:
                shape = (inter, hidden)
            elif name.endswith("/kernel"):
                shape = (hidden, hidden)
            else:
                shape = (hidden,)
            shapes[name] = shape
    shapes.update({"discriminator_predictions/dense/kernel": (arch.hidden_size, arch.hidden_size),
                   "discriminator_predictions/dense/bias": (arch.hidden_size,),
                   "discriminator_predictions/dense_1/kernel": (arch.hidden_size, 1),
                   "discriminator_predictions/dense_1/bias": (1,)})
    if arch.generator:
        g_hidden = arch.generator[0]
        shapes.update({"generator_predictions/dense/kernel": (g_hidden, arch.embedding_size),
                       "generator_predictions/dense/bias": (arch.embedding_size,),
                       "generator_predictions/LayerNorm/gamma": (arch.embedding_size,),
                       "generator_predictions/LayerNorm/beta": (arch.embedding_size,),
                       "generator_predictions/output_bias": (arch.vocab_size,)})
    return shapes


def _check_names_and_shapes(weights, arch):
    expected = expected_shapes(arch)
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise ConversionError(f"the checkpoint lacks {len(missing)} variable(s) of the original ELECTRA layout, e.g. "
                              f"{', '.join(missing[:3])}: it is incomplete or of another model")
    unknown = sorted(set(weights) - set(expected))
    if unknown:
        raise ConversionError(f"the checkpoint has {len(unknown)} variable(s) the original ELECTRA does not, e.g. "
                              f"{', '.join(unknown[:3])}: not a google-research/electra pretraining checkpoint")
    for name, shape in expected.items():
        if tuple(weights[name].shape) != tuple(shape):
            raise ConversionError(f"{name} has shape {tuple(weights[name].shape)}; the rest of the checkpoint "
                                  f"implies {tuple(shape)}")
        if weights[name].dtype != np.float32:
            raise ConversionError(f"{name} is {weights[name].dtype}, expected float32")
    for scope, hidden, heads in [("electra", arch.hidden_size, arch.num_heads)] + (
            [("generator", arch.generator[0], arch.generator[2])] if arch.generator else []):
        if hidden % heads:
            raise ConversionError(f"{scope}: hidden size {hidden} is not divisible by {heads} heads; pass the head "
                                  "count the model was trained with")


# --------------------------------------------------------------------------- config


def architecture_config(arch, generator_hidden_size=None, generator_layers=None, seed=0):
    """``(config, raw)``: the :class:`~electra_tf.config.ElectraConfig` of ``arch`` and the plain dict it was built
    from (what ``config.yaml`` holds): the ``electra_small`` preset's training settings (the original's) with
    the checkpoint's dimensions, ``embedding_sharing: all``, joint mode.

    A discriminator-only checkpoint gets the original's default generator
    (``generator_hidden_size`` 0.25 of D's width, D's depth) unless given.
    """
    with open(preset_path("electra_small"), "r", encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    if arch.generator:
        g_hidden, g_layers, g_heads, g_inter = arch.generator
    else:
        g_hidden = int(generator_hidden_size or max(1, int(round(0.25 * arch.hidden_size))))
        g_layers = int(generator_layers or arch.num_layers)
        g_heads, g_inter = max(1, g_hidden // 64), 4 * g_hidden
    raw["model"].update(vocab_size=arch.vocab_size, hidden_size=arch.hidden_size, num_layers=arch.num_layers,
                        num_heads=arch.num_heads, intermediate_size=arch.intermediate_size,
                        embedding_size=arch.embedding_size, max_position_embeddings=arch.max_position_embeddings,
                        type_vocab_size=arch.type_vocab_size)
    raw["generator"] = dict(hidden_size=g_hidden, num_layers=g_layers, num_heads=g_heads, intermediate_size=g_inter)
    raw["data"]["max_seq_length"] = min(raw["data"]["max_seq_length"], arch.max_position_embeddings)
    raw["train"]["seed"] = int(seed)
    return config_from_dict(raw), raw


_CONFIG_HEADER = ("# Converted from google-research/electra ({source}) by scripts/convert_checkpoint.py: the\n"
                  "# checkpoint's architecture with the original's training settings (configs/electra_small.yaml).\n"
                  "# Derived values are left out (filled in at load), so --set train.warmup_steps=... and\n"
                  "# --set train.mode=decoupled embedding_sharing=none apply as on a preset.\n")


# --------------------------------------------------------------------------- output dirs

# Kept under their old names: electra_tf.convert.common holds them for every converter.
_start_output, _finish_output = start_output, finish_output


# --------------------------------------------------------------------------- import


def import_electra_tf1(input_dir, output, overwrite=False, num_heads=None, generator_num_heads=None,
                       generator_hidden_size=None, generator_layers=None, seed=0):
    """Converts a released google-research/electra checkpoint dir into a model dir; returns the model dir.

    Args:
        input_dir: a dir with ``model.ckpt-N.*`` (or a ``checkpoint`` file) and
            ``vocab.txt``, or a checkpoint prefix whose dir holds ``vocab.txt``.
        output: the model dir to write (must not exist unless ``overwrite``).
        overwrite: replace an existing ``output`` (only once the new one is complete).
        num_heads, generator_num_heads: attention heads when not the
            original's ``max(1, hidden // 64)``.
        generator_hidden_size, generator_layers: the generator to initialise
            freshly for a discriminator-only checkpoint (default: the
            original's 0.25 of D's width, D's depth).
        seed: ``train.seed`` of the written config; seeds a fresh generator.

    Raises:
        ConversionError: the input is not a complete original checkpoint with a
            matching ``vocab.txt``, or ``output`` exists; nothing is written.
    """
    staging = _start_output(output, overwrite)
    try:
        prefix = find_tf1_checkpoint(input_dir)
        vocab_dir = input_dir if os.path.isdir(input_dir) else os.path.dirname(prefix)
        vocab_file = os.path.join(vocab_dir, VOCAB_FILE)
        if not os.path.isfile(vocab_file):
            raise ConversionError(f"no {VOCAB_FILE} in {vocab_dir}: the checkpoint's token ids mean nothing without "
                                  "its WordPiece vocabulary (the released models use BERT's uncased vocab.txt, "
                                  "https://storage.googleapis.com/electra-data/vocab.txt); put it beside the "
                                  "checkpoint")
        weights, step, ignored = read_tf1_checkpoint(prefix)
        arch = infer_architecture(weights, num_heads, generator_num_heads)
        check_vocab(vocab_file, arch.vocab_size, f"{EMBEDDING_SCOPE}/word_embeddings")
        cfg, raw = architecture_config(arch, generator_hidden_size, generator_layers, seed)
        generator, discriminator = fresh_models(cfg)
        models = ("discriminator", "generator") if arch.generator else ("discriminator",)
        assigned = assign(weights, tf1_variable_map(generator, discriminator), models)
        if not arch.generator:
            log.warning("%s has no generator (a discriminator-only checkpoint): the generator (%d x %d) is freshly "
                        "initialised from train.seed=%d; it reads the discriminator's embeddings as the original's "
                        "does", prefix, cfg.generator_dims().num_layers, cfg.generator_dims().hidden_size, seed)
        step = int(step or 0)
        record = {"from": "electra_tf1", "source": os.path.abspath(prefix), "global_step": step,
                  "generator": "converted" if arch.generator else "initialised", "weights": assigned,
                  "ignored_optimizer_slots_and_scalars": ignored, "num_heads": arch.num_heads,
                  "generator_num_heads": cfg.generator_dims().num_heads}
        write_model_dir(staging, generator, discriminator, step, raw,
                        _CONFIG_HEADER.format(source=os.path.basename(prefix)), vocab_file, record)
        _finish_output(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("converted %s (%d weights, global_step %d; %d optimizer slots ignored) into %s", prefix, assigned, step,
             ignored, output)
    return output


# --------------------------------------------------------------------------- export


def _refuse_inexpressible(cfg):
    refuse_inexpressible(cfg, "google-research/electra", activations=("gelu", "relu", "tanh"), fixed_epsilon=1e-12)


def export_electra_tf1(model_dir, output, overwrite=False, discriminator_only=False):
    """Writes a model dir's weights as a google-research/electra checkpoint dir; returns the checkpoint prefix.

    The output holds ``model.ckpt-N.{index,data-00000-of-00001}``, a
    ``checkpoint`` file and ``vocab.txt``: the original's names, shapes and
    dtypes (float32 weights, int64 ``global_step``), no optimizer slots.

    The original has one embedding block, read by both models. A model that
    owns one copy per model (``embedding_sharing: none`` or ``shared``, e.g.
    after decoupled training) exports only when the copies are equal, or with
    ``discriminator_only`` (the discriminator's block and head, no generator:
    what ``run_finetuning.py`` reads).

    Raises:
        ConversionError: the model uses something the original cannot express
            (the message names the setting), has no ``vocab.txt``, or
            ``output`` exists; nothing is written.
    """
    from electra_tf.pretrained import latest_checkpoint_path

    staging = _start_output(output, overwrite)
    try:
        which = ("discriminator",) if discriminator_only else ("generator", "discriminator")
        cfg, generator, discriminator, vocab_file, _ = load_for_export(
            model_dir, "google-research/electra", which=which, activations=("gelu", "relu", "tanh"),
            fixed_epsilon=1e-12)
        _warn_hparams(cfg, discriminator_only)
        tensors = _collect(tf1_variable_map(generator, discriminator), discriminator_only)
        step = _global_step(model_dir, latest_checkpoint_path(model_dir))
        tensors[GLOBAL_STEP] = np.asarray(step, np.int64)
        prefix = write_tf1_checkpoint(staging, tensors, step)
        shutil.copyfile(vocab_file, os.path.join(staging, VOCAB_FILE))
        _finish_output(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    final = os.path.join(output, os.path.basename(prefix))
    log.info("wrote %s (%d variables, global_step %d)", final, len(tensors), step)
    return final


def _warn_hparams(cfg, discriminator_only):
    """Logs what the original must be told: settings it derives otherwise and a checkpoint cannot carry."""
    m, g = cfg.model, cfg.generator_dims()
    notes = []
    if m.num_heads != max(1, m.hidden_size // 64) or m.intermediate_size != 4 * m.hidden_size:
        notes.append(f'"model_hparam_overrides": {{"num_attention_heads": {m.num_heads}, '
                     f'"intermediate_size": {m.intermediate_size}}}')
    if not discriminator_only and (g.num_heads != max(1, g.hidden_size // 64)
                                   or g.intermediate_size != 4 * g.hidden_size):
        notes.append(f"a generator of {g.num_heads} heads and feed-forward {g.intermediate_size} (the original "
                     f"derives {max(1, g.hidden_size // 64)} and {4 * g.hidden_size} from its width)")
    if notes:
        log.warning("the original derives heads and feed-forward width from the hidden size; pass it %s",
                    "; ".join(notes))


def _collect(mapping, discriminator_only):
    tensors: Dict[str, np.ndarray] = {}
    for model in ("discriminator", "generator"):
        if model == "generator" and discriminator_only:
            continue
        for name, variable, part in mapping[model]:
            value = _value(variable, part)
            if name in tensors:
                if tensors[name].shape != value.shape or tensors[name].tobytes() != value.tobytes():
                    raise ConversionError(
                        f"the generator's {name} differs from the discriminator's (each model owns a copy of the "
                        "embedding block, and they have diverged, e.g. in decoupled training); the original has "
                        "one block read by both. Pass --discriminator_only to write the discriminator alone (what "
                        "run_finetuning.py reads)")
                continue
            tensors[name] = value
    return tensors


def _global_step(model_dir, prefix):
    record = os.path.join(model_dir, RECORD_FILE)
    number = re.findall(r"-(\d+)$", prefix or "")
    if number:
        return int(number[0])
    if os.path.isfile(record):
        with open(record, "r", encoding="utf-8") as f:
            return int(json.load(f).get("global_step", 0))
    return 0


def write_tf1_checkpoint(directory, tensors, step):
    """Writes ``tensors`` (name -> array) as ``directory/model.ckpt-<step>`` with a ``checkpoint`` file; returns
    the prefix. The ``SaveV2`` op is what a TF1 ``Saver`` runs: the same file format and names."""
    prefix = os.path.join(directory, f"model.ckpt-{int(step)}")
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    base = os.path.basename(prefix)
    with open(os.path.join(directory, "checkpoint"), "w", encoding="utf-8") as f:
        f.write(f'model_checkpoint_path: "{base}"\nall_model_checkpoint_paths: "{base}"\n')
    return prefix
