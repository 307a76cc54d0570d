"""Warm start: load pretrained weights (not optimizer state) to continue on a new corpus."""

import logging
import os

import tensorflow as tf

from electra_tf.training.checkpoints import latest_checkpoint_path

log = logging.getLogger(__name__)


def _resolve(path):
    """Checkpoint prefixes for the generator and the discriminator found under ``path``."""
    if not os.path.exists(path) and not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"--init_from {path} does not exist (expected a model dir, a checkpoint "
                                "prefix, or an export dir)")
    ckpt = latest_checkpoint_path(path)
    if ckpt:
        return {"generator": ckpt, "discriminator": ckpt}
    found = {}
    for name in ("generator", "discriminator"):
        for root in (os.path.join(path, "export", name), os.path.join(path, name), path):
            prefix = os.path.join(root, "variables", "variables")
            if tf.io.gfile.exists(prefix + ".index") and (root.endswith(name) or name not in found):
                found.setdefault(name, prefix)
    if not found:
        raise FileNotFoundError(f"--init_from {path} holds no checkpoint and no SavedModel export")
    return found


def _check_shapes(prefix, name, model):
    """Refuses a checkpoint whose variables do not fit ``model``, naming the variable and both shapes."""
    reader = tf.train.load_checkpoint(prefix)
    saved = reader.get_variable_to_shape_map()
    # Object-graph keys look like "<name>/encoder/.../embeddings/.ATTRIBUTES/VARIABLE_VALUE"; match on the
    # variable path within the model.
    by_suffix = {}
    for key, shape in saved.items():
        if key.startswith(name + "/") and key.endswith("/.ATTRIBUTES/VARIABLE_VALUE"):
            by_suffix[key[len(name) + 1:-len("/.ATTRIBUTES/VARIABLE_VALUE")]] = shape
    return by_suffix


def warm_start(path, generator, discriminator):
    """Loads both models' weights from ``path`` (a model dir, a checkpoint or exports).

    Raises:
        ValueError: a variable's shape differs (e.g. another vocabulary); the
            message names the variable and both shapes.
    """
    prefixes = _resolve(path)
    for name, model in (("generator", generator), ("discriminator", discriminator)):
        prefix = prefixes.get(name)
        if prefix is None:
            log.warning("--init_from %s has no %s; it starts from scratch", path, name)
            continue
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        ckpt = tf.train.Checkpoint(**{name: model})
        try:
            ckpt.read(prefix).expect_partial().assert_existing_objects_matched()
        except (ValueError, tf.errors.InvalidArgumentError, AssertionError) as exc:
            text = str(exc)
            hint = ""
            for key, shape in shapes.items():
                if key.startswith(name + "/") and "embeddings" in key and "VARIABLE_VALUE" in key:
                    hint = f" (saved {key.split('/.ATTRIBUTES')[0]} has shape {shape})"
                    break
            raise ValueError(f"--init_from {path}: the {name} weights do not fit this config: "
                             f"{text.splitlines()[0][:500]}{hint}") from None
        log.info("warm start: %s weights from %s", name, prefix)
