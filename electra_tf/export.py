"""SavedModel export of the discriminator and the generator (token ids in)."""

import logging
import os
import shutil
import tempfile

import tensorflow as tf

log = logging.getLogger(__name__)
IDS_SPEC = tf.TensorSpec([None, None], tf.int32, name="input_ids")
MASK_SPEC = tf.TensorSpec([None, None], tf.int32, name="input_mask")


class DiscriminatorModule(tf.Module):
    """Serving surface of the discriminator; ``self.discriminator`` keeps checkpoint paths stable."""

    def __init__(self, discriminator):
        super().__init__(name="discriminator_export")
        self.discriminator = discriminator

    @tf.function(input_signature=[IDS_SPEC, MASK_SPEC])
    def encode(self, input_ids, input_mask):
        out = self.discriminator({"input_ids": input_ids, "input_mask": input_mask}, training=False)
        return {"sequence_output": tf.cast(out["sequence_output"], tf.float32),
                "pooled_output": tf.cast(out["pooled_output"], tf.float32)}

    @tf.function(input_signature=[IDS_SPEC, MASK_SPEC])
    def detect(self, input_ids, input_mask):
        out = self.discriminator({"input_ids": input_ids, "input_mask": input_mask}, training=False)
        return {"replaced_probability": tf.sigmoid(out["logits"]) * tf.cast(input_mask, tf.float32)}


class GeneratorModule(tf.Module):
    """Serving surface of the generator."""

    def __init__(self, generator, top_k=5):
        super().__init__(name="generator_export")
        self.generator = generator
        self.top_k = top_k

    @tf.function(input_signature=[IDS_SPEC, MASK_SPEC, tf.TensorSpec([None, None], tf.int32,
                                                                     name="masked_positions")])
    def fill_mask(self, input_ids, input_mask, masked_positions):
        logits = self.generator({"input_ids": input_ids, "input_mask": input_mask,
                                 "masked_positions": masked_positions}, training=False)["logits"]
        probs, ids = tf.math.top_k(tf.nn.softmax(logits), k=self.top_k)
        return {"top_ids": ids, "top_probabilities": probs}


def _save_atomically(module, signatures, target):
    """Writes a SavedModel next to ``target`` and renames it into place when complete."""
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-", dir=parent)
    try:
        tf.saved_model.save(module, tmp, signatures=signatures)
        if os.path.exists(target):
            old = tmp + ".old"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def export_models(model_dir, generator, discriminator, cfg=None, vocab_model=None):
    """Writes ``model_dir/export/discriminator`` and ``model_dir/export/generator``; returns their paths."""
    export_dir = os.path.join(model_dir, "export")
    disc = DiscriminatorModule(discriminator)
    gen = GeneratorModule(generator)
    paths = {
        "discriminator": _save_atomically(disc, {"serving_default": disc.encode, "encode": disc.encode,
                                                 "detect": disc.detect},
                                          os.path.join(export_dir, "discriminator")),
        "generator": _save_atomically(gen, {"serving_default": gen.fill_mask, "fill_mask": gen.fill_mask},
                                      os.path.join(export_dir, "generator")),
    }
    if vocab_model and os.path.exists(vocab_model):
        shutil.copyfile(vocab_model, os.path.join(export_dir, "vocab.model"))
    if cfg is not None:
        from electra_tf.config import dump_config

        dump_config(cfg, os.path.join(export_dir, "config.yaml"))
    log.info("exported SavedModels to %s", export_dir)
    return paths
