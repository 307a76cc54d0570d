"""Hugging Face transformers' ELECTRA dirs, read and written as safetensors (no torch, no unpickling).

A Hugging Face ELECTRA model is one dir per model: ``config.json``,
``model.safetensors`` and the tokenizer's ``vocab.txt``. The discriminator is
an ``ElectraForPreTraining`` (``electra.*`` + ``discriminator_predictions.*``),
the generator an ``ElectraForMaskedLM`` (``electra.*`` +
``generator_predictions.*`` + ``generator_lm_head``, whose weight is tied to
the word table and so not stored). The weights are google-research/electra's
under other names (Hugging Face's own converter reads the TF1 checkpoints), so
this module translates names (:func:`hf_name`) and reuses
:mod:`electra_tf.convert.electra_tf1` for the rest: architecture inference and
its checks, the written config, the assignment to our models. ``torch.nn.Linear``
stores ``[out, in]``, the transpose of a Keras kernel.

Only safetensors are read: a ``pytorch_model.bin`` is a pickle, and
unpickling runs whatever code the file holds.
"""

import json
import logging
import os
import re
import shutil

import numpy as np

from electra_tf.convert.common import (
    RECORD_FILE,
    VOCAB_FILE,
    ConversionError,
    assign,
    check_vocab,
    collect,
    finish_output,
    fresh_models,
    load_for_export,
    start_output,
    write_model_dir,
)
from electra_tf.convert.electra_tf1 import (
    EMBEDDING_SCOPE,
    Tf1Architecture,
    architecture_config,
    expected_shapes,
    infer_architecture,
    tf1_variable_map,
)
from electra_tf.data.wordpiece import is_uncased

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_CONFIG = "tokenizer_config.json"
GENERATOR_DIR = "generator"
TIED_HEAD = "generator_lm_head.weight"
# Buffers some older transformers versions saved beside the weights.
BUFFERS = ("electra.embeddings.position_ids", "electra.embeddings.token_type_ids")
REQUIRED_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "max_position_embeddings", "type_vocab_size")
_TARGET = "Hugging Face transformers' ELECTRA"


# --------------------------------------------------------------------------- names


def hf_name(name):
    """``(hugging face name, transpose)`` of a google-research/electra variable name.

    The generator's ``generator/...`` encoder is ``electra.*`` in its own dir;
    ``discriminator_predictions/dense_1`` is ``dense_prediction``;
    ``generator_predictions/output_bias`` is ``generator_lm_head.bias``.
    Kernels are transposed (``nn.Linear`` is ``[out, in]``).
    """
    if name == "generator_predictions/output_bias":
        return "generator_lm_head.bias", False
    name = name.replace("discriminator_predictions/dense_1/", "discriminator_predictions/dense_prediction/")
    if name.startswith("generator/"):
        name = "electra/" + name[len("generator/"):]
    name = re.sub(r"/layer_(\d+)/", r"/layer/\1/", name)
    scope, leaf = name.rsplit("/", 1)
    suffix = {"kernel": "weight", "gamma": "weight", "beta": "bias", "bias": "bias"}.get(leaf)
    if suffix is None:  # an embedding table: electra/embeddings/word_embeddings
        return name.replace("/", ".") + ".weight", False
    return f"{scope.replace('/', '.')}.{suffix}", leaf == "kernel"


def _model_names(arch, model):
    """The google-research/electra names one Hugging Face dir holds (``model``: discriminator or generator)."""
    own = ("electra/", "discriminator_predictions/") if model == "discriminator" else (
        "generator/", "generator_predictions/")
    return [n for n in expected_shapes(arch) if n.startswith((f"{EMBEDDING_SCOPE}/",) + own)]


# --------------------------------------------------------------------------- reading


def _read_config(directory, flag):
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isdir(directory):
        raise ConversionError(f"{flag} {directory} is not a directory (expected a Hugging Face ELECTRA dir with "
                              f"{CONFIG_FILE}, {WEIGHTS_FILE} and {VOCAB_FILE})")
    if not os.path.isfile(path):
        raise ConversionError(f"{flag} {directory} has no {CONFIG_FILE}: not a Hugging Face model dir")
    try:
        with open(path, "r", encoding="utf-8") as f:
            config = json.load(f)
    except ValueError as exc:
        raise ConversionError(f"{path} is not JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("model_type") != "electra":
        found = config.get("model_type") if isinstance(config, dict) else None
        raise ConversionError(f"{path}: model_type is {found!r}; only 'electra' is converted")
    missing = [k for k in REQUIRED_KEYS if not isinstance(config.get(k), int)]
    if missing:
        raise ConversionError(f"{path} lacks {', '.join(missing)} (integers every ElectraConfig has)")
    position = config.get("position_embedding_type", "absolute")
    if position != "absolute":
        raise ConversionError(f"{path}: position_embedding_type={position!r}; only 'absolute' (the original "
                              "ELECTRA's) is converted")
    if config.get("hidden_act", "gelu") != "gelu":
        raise ConversionError(f"{path}: hidden_act={config.get('hidden_act')!r}; only 'gelu' (the exact GELU, the "
                              "original ELECTRA's) is converted: the generator's head is GELU whatever hidden_act "
                              "says")
    return config


def read_safetensors(directory, flag="--input"):
    """``{name: float32 array}`` of a dir's ``model.safetensors`` (or its shards); refuses pickles."""
    from safetensors.numpy import load_file

    single, index = os.path.join(directory, WEIGHTS_FILE), os.path.join(directory, WEIGHTS_INDEX)
    if os.path.isfile(single):
        files = [single]
    elif os.path.isfile(index):
        with open(index, "r", encoding="utf-8") as f:
            files = sorted({os.path.join(directory, v) for v in json.load(f)["weight_map"].values()})
    else:
        pickles = [p for p in PICKLE_FILES if os.path.isfile(os.path.join(directory, p))]
        if pickles:
            raise ConversionError(
                f"{flag} {directory} holds {pickles[0]} and no {WEIGHTS_FILE}: a .bin file is a Python pickle, and "
                "unpickling it runs whatever code it holds, so it is not read here. Get the safetensors: the Hub's "
                f"google/electra-* repos have {WEIGHTS_FILE}, or convert once where you trust the file, with "
                "transformers: ElectraForPreTraining.from_pretrained(DIR).save_pretrained(OUT, "
                "safe_serialization=True)")
        raise ConversionError(f"{flag} {directory} has no {WEIGHTS_FILE}")
    weights = {}
    for path in files:
        try:
            loaded = load_file(path)
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own and OS errors
            raise ConversionError(f"{path} cannot be read ({str(exc).strip()[:200]}): truncated, not safetensors, "
                                  "or a dtype NumPy lacks (bfloat16: save the model in float32)") from None
        for name, value in loaded.items():
            if value.dtype != np.float32 and np.issubdtype(value.dtype, np.floating):
                log.info("%s is %s: read as float32", name, value.dtype)
                value = value.astype(np.float32)
            weights[name] = value
    return weights


def _architecture(config, generator_config=None):
    def dims(c):
        return int(c["hidden_size"]), int(c["num_hidden_layers"]), int(c["num_attention_heads"]), \
            int(c["intermediate_size"])

    hidden, layers, heads, inter = dims(config)
    return Tf1Architecture(vocab_size=int(config["vocab_size"]),
                           embedding_size=int(config.get("embedding_size") or hidden),
                           max_position_embeddings=int(config["max_position_embeddings"]),
                           type_vocab_size=int(config["type_vocab_size"]), hidden_size=hidden, num_layers=layers,
                           num_heads=heads, intermediate_size=inter,
                           generator=dims(generator_config) if generator_config else None)


def _to_tf1(weights, arch, model, directory):
    """The dir's weights under google-research/electra's names (a generator's encoder under ``generator/``)."""
    names = _model_names(arch, model)
    wanted = {hf_name(n)[0]: n for n in names}
    kind = "ElectraForPreTraining" if model == "discriminator" else "ElectraForMaskedLM"
    other, hint = (("generator_predictions.dense.weight", "a generator (ElectraForMaskedLM): pass it as --generator "
                    "and the discriminator as --input") if model == "discriminator" else
                   ("discriminator_predictions.dense.weight", "a discriminator (ElectraForPreTraining): pass it as "
                    "--input and the generator as --generator"))
    if other in weights:
        raise ConversionError(f"{directory} is {hint}")
    missing = sorted(set(wanted) - set(weights))
    if missing:
        raise ConversionError(f"{directory}/{WEIGHTS_FILE} lacks {len(missing)} weight(s) an {kind} of its "
                              f"{CONFIG_FILE} has, e.g. {', '.join(missing[:3])}")
    unknown = sorted(set(weights) - set(wanted) - {TIED_HEAD, *BUFFERS})
    if unknown:
        raise ConversionError(f"{directory}/{WEIGHTS_FILE} has {len(unknown)} weight(s) an {kind} does not, e.g. "
                              f"{', '.join(unknown[:3])}")
    if TIED_HEAD in weights and weights[TIED_HEAD].tobytes() != weights[
            "electra.embeddings.word_embeddings.weight"].tobytes():
        raise ConversionError(f"{directory}: {TIED_HEAD} differs from the word table; the original ELECTRA ties "
                              "them (an untied output layer cannot be expressed)")
    out = {}
    for hf, tf1 in wanted.items():
        value = weights[hf]
        out[tf1] = np.ascontiguousarray(value.T) if hf_name(tf1)[1] else value
    return out


def import_hf(input_dir, output, generator_dir=None, overwrite=False, generator_hidden_size=None,
              generator_layers=None, seed=0):
    """Converts Hugging Face ELECTRA dirs (safetensors) into a model dir; returns the model dir.

    Args:
        input_dir: the discriminator's dir (``ElectraForPreTraining``:
            ``config.json``, ``model.safetensors``, ``vocab.txt``).
        output: the model dir to write (must not exist unless ``overwrite``).
        generator_dir: the generator's dir (``ElectraForMaskedLM``); without
            it the generator is freshly initialised, as for a
            discriminator-only TF1 checkpoint.
        overwrite: replace an existing ``output`` (only once the new one is complete).
        generator_hidden_size, generator_layers: the fresh generator's size
            (default: 0.25 of the discriminator's width, its depth).
        seed: ``train.seed`` of the written config; seeds a fresh generator.

    When both dirs hold the same embedding block (the released models: one
    TF1 block, converted twice) the model shares it (``embedding_sharing:
    all``, as the original); when they differ each model keeps its own
    (``embedding_sharing: none``).

    Raises:
        ConversionError: a dir is not a complete Hugging Face ELECTRA model in
            safetensors with a matching ``vocab.txt``, or ``output`` exists;
            nothing is written.
    """
    staging = start_output(output, overwrite)
    try:
        config = _read_config(input_dir, "--input")
        vocab_file = os.path.join(input_dir, VOCAB_FILE)
        if not os.path.isfile(vocab_file):
            raise ConversionError(f"no {VOCAB_FILE} in {input_dir}: the model's token ids mean nothing without its "
                                  "WordPiece vocabulary (the Hub's google/electra-* repos have it beside the "
                                  "weights)")
        gen_config = _read_config(generator_dir, "--generator") if generator_dir else None
        if gen_config:
            for key in ("vocab_size", "embedding_size", "max_position_embeddings", "type_vocab_size"):
                if gen_config.get(key) != config.get(key):
                    raise ConversionError(f"--generator {generator_dir} has {key}={gen_config.get(key)} where the "
                                          f"discriminator has {config.get(key)}: not a pair")
        arch = _architecture(config, gen_config)
        disc = _to_tf1(read_safetensors(input_dir, "--input"), arch, "discriminator", input_dir)
        weights, per_model, shared = dict(disc), None, True
        if gen_config:
            gen = _to_tf1(read_safetensors(generator_dir, "--generator"), arch, "generator", generator_dir)
            block = [n for n in gen if n.startswith(f"{EMBEDDING_SCOPE}/")]
            shared = all(gen[n].shape == disc[n].shape and gen[n].tobytes() == disc[n].tobytes() for n in block)
            weights.update({n: v for n, v in gen.items() if n not in block})
            if not shared:
                per_model = {"discriminator": disc, "generator": gen}
                log.warning("the generator's embedding block differs from the discriminator's: each model keeps its "
                            "own (embedding_sharing: none)")
        arch = infer_architecture(weights, arch.num_heads, arch.generator[2] if arch.generator else None)
        check_vocab(vocab_file, arch.vocab_size, "electra.embeddings.word_embeddings")
        cfg, raw = architecture_config(arch, generator_hidden_size, generator_layers, seed)
        raw["model"].update(layer_norm_epsilon=float(config.get("layer_norm_eps", 1e-12)),
                            dropout=float(config.get("hidden_dropout_prob", 0.1)),
                            attention_dropout=float(config.get("attention_probs_dropout_prob", 0.1)))
        if not shared:
            raw["embedding_sharing"] = "none"
        from electra_tf.config import config_from_dict

        cfg = config_from_dict(raw)
        generator, discriminator = fresh_models(cfg)
        models = ("discriminator", "generator") if gen_config else ("discriminator",)
        assigned = assign(per_model or weights, tf1_variable_map(generator, discriminator), models)
        if not gen_config:
            log.warning("no --generator: the generator (%d x %d) is freshly initialised from train.seed=%d; it reads "
                        "the discriminator's embeddings as the original's does", cfg.generator_dims().num_layers,
                        cfg.generator_dims().hidden_size, seed)
        record = {"from": "hf", "source": os.path.abspath(input_dir),
                  "generator_source": os.path.abspath(generator_dir) if generator_dir else None, "global_step": 0,
                  "generator": "converted" if gen_config else "initialised", "weights": assigned,
                  "embedding_sharing": raw.get("embedding_sharing", "all"), "num_heads": arch.num_heads,
                  "generator_num_heads": cfg.generator_dims().num_heads}
        write_model_dir(staging, generator, discriminator, 0, raw, _CONFIG_HEADER.format(
            source=os.path.basename(os.path.abspath(input_dir))), vocab_file, record)
        finish_output(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("converted %s%s (%d weights) into %s", input_dir, f" and {generator_dir}" if generator_dir else "",
             assigned, output)
    return output


_CONFIG_HEADER = ("# Converted from Hugging Face ELECTRA ({source}) by scripts/convert_checkpoint.py: the model's\n"
                  "# architecture with the original's training settings (configs/electra_small.yaml).\n"
                  "# Derived values are left out (filled in at load), so --set train.warmup_steps=... and\n"
                  "# --set train.mode=decoupled embedding_sharing=none apply as on a preset.\n")


# --------------------------------------------------------------------------- writing


def hf_config(cfg, model, pad_token_id):
    """The ``config.json`` of one model: ``ElectraForPreTraining`` (discriminator) or ``ElectraForMaskedLM``."""
    m = cfg.model
    dims = m if model == "discriminator" else cfg.generator_dims()
    return {"architectures": ["ElectraForPreTraining" if model == "discriminator" else "ElectraForMaskedLM"],
            "model_type": "electra", "vocab_size": m.vocab_size, "embedding_size": m.embedding_size,
            "hidden_size": dims.hidden_size, "num_hidden_layers": dims.num_layers,
            "num_attention_heads": dims.num_heads, "intermediate_size": dims.intermediate_size,
            "hidden_act": m.activation, "hidden_dropout_prob": m.dropout,
            "attention_probs_dropout_prob": m.attention_dropout,
            "max_position_embeddings": m.max_position_embeddings, "type_vocab_size": m.type_vocab_size,
            "initializer_range": m.initializer_range, "layer_norm_eps": m.layer_norm_epsilon,
            "pad_token_id": pad_token_id, "position_embedding_type": "absolute", "tie_word_embeddings": True,
            "dtype": "float32"}


def _write_hf_dir(directory, entries, config, vocab_file, tokens):
    from safetensors.numpy import save_file

    os.makedirs(directory, exist_ok=True)
    tensors = {}
    for name, value in collect(entries).items():
        hf, transpose = hf_name(name)
        tensors[hf] = np.ascontiguousarray(value.T if transpose else value)
    save_file(tensors, os.path.join(directory, WEIGHTS_FILE), metadata={"format": "pt"})
    with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    shutil.copyfile(vocab_file, os.path.join(directory, VOCAB_FILE))
    lowercase = is_uncased(tokens)
    tokenizer = {"tokenizer_class": "ElectraTokenizer", "do_lower_case": lowercase, "tokenize_chinese_chars": True,
                 "strip_accents": None, "model_max_length": config["max_position_embeddings"],
                 "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                 "mask_token": "[MASK]"}
    with open(os.path.join(directory, TOKENIZER_CONFIG), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, indent=2)
    return len(tensors)


def export_hf(model_dir, output, overwrite=False, discriminator_only=False):
    """Writes a model dir as Hugging Face ELECTRA dirs; returns ``output``.

    ``output`` is the discriminator (``ElectraForPreTraining``) and
    ``output/generator`` the generator (``ElectraForMaskedLM``), each with
    ``config.json``, ``model.safetensors`` (float32), ``vocab.txt`` and
    ``tokenizer_config.json`` (``ElectraTokenizer``; lower-casing when the
    vocabulary has no upper-case token). ``discriminator_only`` leaves the
    generator out.

    Raises:
        ConversionError: the model uses something transformers' ELECTRA cannot
            express (the message names the setting), has no ``vocab.txt``, or
            ``output`` exists; nothing is written.
    """
    staging = start_output(output, overwrite)
    try:
        which = ("discriminator",) if discriminator_only else ("generator", "discriminator")
        cfg, generator, discriminator, vocab_file, tokens = load_for_export(
            model_dir, _TARGET, which=which, activations=("gelu",), fixed_epsilon=None)
        if "[PAD]" not in tokens:
            raise ConversionError(f"{vocab_file} has no [PAD] token: transformers' ElectraTokenizer needs BERT's "
                                  "special tokens ([PAD], [UNK], [CLS], [SEP], [MASK])")
        pad = tokens.index("[PAD]")
        mapping = tf1_variable_map(generator, discriminator)
        count = _write_hf_dir(staging, mapping["discriminator"], hf_config(cfg, "discriminator", pad), vocab_file,
                              tokens)
        if not discriminator_only:
            count += _write_hf_dir(os.path.join(staging, GENERATOR_DIR), mapping["generator"],
                                   hf_config(cfg, "generator", pad), vocab_file, tokens)
        with open(os.path.join(staging, RECORD_FILE), "w", encoding="utf-8") as f:
            json.dump({"to": "hf", "source": os.path.abspath(model_dir), "tensors": count,
                       "generator": None if discriminator_only else GENERATOR_DIR}, f, indent=2)
        finish_output(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("wrote %s (ElectraForPreTraining%s, %d tensors)", output,
             "" if discriminator_only else f"; ElectraForMaskedLM in {GENERATOR_DIR}/", count)
    return output
