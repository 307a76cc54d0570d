"""keras-hub presets: a model dir's encoders as ``keras_hub.models.ElectraBackbone`` presets.

A keras-hub preset dir holds ``config.json`` (the backbone's class and
arguments), ``metadata.json``, ``model.weights.h5`` and the tokenizer
(``tokenizer.json`` + ``assets/tokenizer/vocabulary.txt``). keras-hub writes
them itself (``save_to_preset``), so this module builds the backbone, sets its
weights from the discriminator's and lets keras-hub save; keras-hub is needed
only here (``pip install keras-hub``).

What keras-hub's ELECTRA cannot express:

* the heads: keras-hub has no ELECTRA replaced-token or masked-LM task (its
  ``electra_*_generator`` presets are encoders without the head), so the
  discriminator's encoder is written, and the generator's encoder in
  ``generator/`` as keras-hub's generator presets hold it, without its head;
* the exact GELU: ``ElectraBackbone`` builds its feed-forward layers with
  ``gelu_approximate`` (the tanh form) whatever the checkpoint was trained
  with, so its outputs differ from ours by that approximation (README, "Coming
  from google-research/electra, Hugging Face or keras-hub", gives the measured
  size); the weights are the same;
* the pooler: ``pooled_output`` is keras-hub's ``pooled_dense`` (tanh), which
  the original ELECTRA does not have. It is written freshly initialised
  (seeded); a classifier should read the first token of ``sequence_output``,
  as ELECTRA's does.
"""

import logging
import os
import shutil

import keras

from electra_tf.convert.common import (
    ConversionError,
    collect,
    finish_output,
    load_for_export,
    start_output,
)
from electra_tf.convert.electra_tf1 import EMBEDDING_SCOPE, tf1_variable_map
from electra_tf.data.wordpiece import is_uncased

log = logging.getLogger(__name__)

INSTALL = 'pip install "keras-hub>=0.29,<0.30" (or pip install -e ".[oracles]")'
_TARGET = "keras-hub's ElectraBackbone"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
GENERATOR_DIR = "generator"


def _keras_hub():
    try:
        import keras_hub
    except ImportError:
        raise ConversionError(f"--to keras_hub needs keras-hub, which is not installed: {INSTALL}") from None
    return keras_hub


def backbone_weights(backbone, tensors, heads, scope="electra"):
    """``[(keras-hub variable, array)]``: one encoder's google-research/electra-named ``tensors`` set on an
    ``ElectraBackbone`` (attention kernels reshaped to keras' ``[hidden, heads, head]`` layout); ``scope`` is
    ``electra`` (the discriminator) or ``generator``."""
    e = EMBEDDING_SCOPE
    pairs = [(backbone.get_layer("token_embedding").embeddings, tensors[f"{e}/word_embeddings"]),
             (backbone.get_layer("position_embedding").position_embeddings, tensors[f"{e}/position_embeddings"]),
             (backbone.get_layer("segment_embedding").embeddings, tensors[f"{e}/token_type_embeddings"]),
             (backbone.get_layer("embeddings_layer_norm").gamma, tensors[f"{e}/LayerNorm/gamma"]),
             (backbone.get_layer("embeddings_layer_norm").beta, tensors[f"{e}/LayerNorm/beta"])]
    if f"{scope}/embeddings_project/kernel" in tensors:
        projection = backbone.get_layer("embeddings_projection")
        pairs += [(projection.kernel, tensors[f"{scope}/embeddings_project/kernel"]),
                  (projection.bias, tensors[f"{scope}/embeddings_project/bias"])]
    for i, layer in enumerate(backbone.transformer_layers):
        src = f"{scope}/encoder/layer_{i}"
        attention = layer._self_attention_layer
        hidden = tensors[f"{src}/attention/output/dense/bias"].shape[0]
        size = hidden // heads
        for part, dense in (("query", attention._query_dense), ("key", attention._key_dense),
                            ("value", attention._value_dense)):
            pairs += [(dense.kernel, tensors[f"{src}/attention/self/{part}/kernel"].reshape(hidden, heads, size)),
                      (dense.bias, tensors[f"{src}/attention/self/{part}/bias"].reshape(heads, size))]
        pairs += [(attention._output_dense.kernel,
                   tensors[f"{src}/attention/output/dense/kernel"].reshape(heads, size, hidden)),
                  (attention._output_dense.bias, tensors[f"{src}/attention/output/dense/bias"])]
        for ours, norm in (("attention/output/LayerNorm", layer._self_attention_layer_norm),
                           ("output/LayerNorm", layer._feedforward_layer_norm)):
            pairs += [(norm.gamma, tensors[f"{src}/{ours}/gamma"]), (norm.beta, tensors[f"{src}/{ours}/beta"])]
        for ours, dense in (("intermediate/dense", layer._feedforward_intermediate_dense),
                            ("output/dense", layer._feedforward_output_dense)):
            pairs += [(dense.kernel, tensors[f"{src}/{ours}/kernel"]), (dense.bias, tensors[f"{src}/{ours}/bias"])]
    return pairs


def _save_backbone(keras_hub, directory, dims, cfg, tensors, scope, vocab_file, lowercase):
    """Builds an ``ElectraBackbone`` of ``dims``, sets one encoder's weights and saves it with the tokenizer."""
    m = cfg.model
    keras.utils.set_random_seed(cfg.train.seed)  # the pooler keras-hub adds and ELECTRA lacks
    backbone = keras_hub.models.ElectraBackbone(
        vocab_size=m.vocab_size, num_layers=dims.num_layers, num_heads=dims.num_heads, hidden_dim=dims.hidden_size,
        embedding_dim=m.embedding_size, intermediate_dim=dims.intermediate_size, dropout=m.dropout,
        max_sequence_length=m.max_position_embeddings, num_segments=m.type_vocab_size)
    pairs = backbone_weights(backbone, tensors, dims.num_heads, scope)
    for variable, value in pairs:
        if tuple(variable.shape) != value.shape:
            raise ConversionError(f"keras-hub's {variable.path} has shape {tuple(variable.shape)}, the model's "
                                  f"weight {value.shape}: this keras-hub version lays ElectraBackbone out "
                                  f"differently ({INSTALL})")
        variable.assign(value)
    backbone.save_to_preset(directory)
    keras_hub.models.ElectraTokenizer(vocabulary=vocab_file, lowercase=lowercase).save_to_preset(directory)
    return len(pairs)


def export_keras_hub(model_dir, output, overwrite=False, discriminator_only=False):
    """Writes a model dir's encoders as keras-hub ``ElectraBackbone`` preset dirs; returns ``output``.

    ``keras_hub.models.ElectraBackbone.from_preset(output)`` loads the
    discriminator's encoder and ``from_preset(output/generator)`` the
    generator's (left out with ``discriminator_only``);
    ``keras_hub.models.ElectraTokenizer.from_preset`` reads the WordPiece
    vocabulary of either (lower-casing when the vocabulary has no upper-case
    token). The heads are not written: keras-hub has no ELECTRA task for them.

    Raises:
        ConversionError: keras-hub is not installed, the model uses something
            keras-hub's ELECTRA cannot express (the message names the
            setting), it has no ``vocab.txt``, or ``output`` exists; nothing is
            written.
    """
    staging = start_output(output, overwrite)
    try:
        which = ("discriminator",) if discriminator_only else ("generator", "discriminator")
        cfg, generator, discriminator, vocab_file, tokens = load_for_export(
            model_dir, _TARGET, which=which, activations=("gelu",), fixed_epsilon=1e-12)
        keras_hub = _keras_hub()
        missing = [t for t in SPECIAL_TOKENS if t not in tokens]
        if missing:
            raise ConversionError(f"{vocab_file} has no {', '.join(missing)}: keras-hub's ElectraTokenizer needs "
                                  f"BERT's special tokens ({', '.join(SPECIAL_TOKENS)})")
        mapping = tf1_variable_map(generator, discriminator)
        lowercase = is_uncased(tokens)
        count = _save_backbone(keras_hub, staging, cfg.model, cfg, collect(mapping["discriminator"]), "electra",
                               vocab_file, lowercase)
        if not discriminator_only:
            count += _save_backbone(keras_hub, os.path.join(staging, GENERATOR_DIR), cfg.generator_dims(), cfg,
                                    collect(mapping["generator"]), "generator", vocab_file, lowercase)
        finish_output(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("wrote %s: keras_hub.models.ElectraBackbone presets of the discriminator's encoder%s (%d weights set; "
             "each pooled_dense is keras-hub's own, freshly initialised) with ElectraTokenizer", output,
             "" if discriminator_only else f" and, in {GENERATOR_DIR}/, the generator's", count)
    log.warning("keras-hub's ElectraBackbone computes GELU with the tanh approximation: its outputs differ slightly "
                "from this model's exact GELU (README, 'Coming from google-research/electra, Hugging Face or "
                "keras-hub')")
    return output
