"""Loading pretrained generators and discriminators from a model dir, a checkpoint or an export.

One loader for fine-tuning, fair RTD evaluation, warm starts and tools:

>>> cfg, generator, discriminator = load_pretrained("runs/tiny")          # doctest: +SKIP
>>> _, _, disc = load_pretrained("runs/tiny/export/discriminator", which=("discriminator",))  # doctest: +SKIP
"""

import logging
import os

import tensorflow as tf
import yaml

from electra_tf.config import config_from_dict
from electra_tf.models import build_models

log = logging.getLogger(__name__)
CONFIG_FILE = "config.yaml"


def latest_checkpoint_path(path):
    """A checkpoint prefix from a model dir, a ``checkpoints/`` dir or a prefix itself."""
    for candidate in (os.path.join(path, "checkpoints"), path):
        if os.path.isdir(candidate):
            found = tf.train.latest_checkpoint(candidate)
            if found:
                return found
    if tf.io.gfile.exists(path + ".index"):
        return path
    return None


def find_config(path):
    """The resolved config stored with a model dir, an export dir or one of their children."""
    candidates = [path, os.path.dirname(path), os.path.dirname(os.path.dirname(path)),
                  os.path.dirname(os.path.dirname(os.path.dirname(path)))]
    for directory in candidates:
        if directory and os.path.isfile(os.path.join(directory, CONFIG_FILE)):
            with open(os.path.join(directory, CONFIG_FILE), "r", encoding="utf-8") as f:
                return config_from_dict(yaml.safe_load(f))
    raise FileNotFoundError(f"no {CONFIG_FILE} found at or above {path}: expected a model dir written by "
                            "scripts/pretrain.py or an export dir written by scripts/export.py")


def weight_prefixes(path):
    """``{"generator": prefix, "discriminator": prefix}``: where each model's weights can be read.

    ``path`` may be a model dir (its latest checkpoint), a checkpoint prefix, a
    model dir's ``export/`` dir, or one SavedModel export dir (whose
    ``variables/variables`` is a checkpoint with the same object names).
    """
    if not os.path.exists(path) and not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"{path} does not exist (expected a model dir, a checkpoint prefix or an export dir)")
    ckpt = latest_checkpoint_path(path)
    if ckpt:
        return {"generator": ckpt, "discriminator": ckpt}
    found = {}
    for name in ("generator", "discriminator"):
        for root in (os.path.join(path, "export", name), os.path.join(path, name), path):
            prefix = os.path.join(root, "variables", "variables")
            if tf.io.gfile.exists(prefix + ".index"):
                reader = tf.train.load_checkpoint(prefix)
                if any(k.startswith(name + "/") for k in reader.get_variable_to_shape_map()):
                    found[name] = prefix
                    break
    if not found:
        raise FileNotFoundError(f"{path} holds no checkpoint and no SavedModel export")
    return found


def restore_weights(prefix, name, model, source=None):
    """Reads ``name``'s weights from a checkpoint prefix into ``model``.

    Every object of the model must find its saved value
    (``assert_existing_objects_matched``), so a partial restore cannot pass
    silently.

    Raises:
        ValueError: the saved weights do not fit (another vocabulary or size);
            TensorFlow's message, kept here, names the variable and both shapes.
    """
    try:
        tf.train.Checkpoint(**{name: model}).read(prefix).expect_partial().assert_existing_objects_matched()
    except (ValueError, tf.errors.InvalidArgumentError, AssertionError) as exc:
        detail = str(exc).splitlines()[0][:600]
        raise ValueError(f"the {name} weights in {source or prefix} do not fit this model: {detail}") from None


def load_pretrained(path, which=("generator", "discriminator"), cfg=None):
    """Builds the models a pretraining config describes and restores their weights from ``path``.

    Returns:
        ``(cfg, generator_or_None, discriminator_or_None)``.
    """
    cfg = cfg or find_config(path)
    prefixes = weight_prefixes(path)
    generator, discriminator = build_models(cfg, profile_admin=False)  # ω come with the weights
    out = {"generator": generator, "discriminator": discriminator}
    for name in ("generator", "discriminator"):
        if name not in which:
            out[name] = None
            continue
        if name not in prefixes:
            raise FileNotFoundError(f"{path} has no {name} weights")
        restore_weights(prefixes[name], name, out[name], source=path)
    return cfg, out["generator"], out["discriminator"]


def recorded_data_dir(cfg):
    """The data dir a run was trained on, as its config records it (it may no longer exist).

    ``data.path`` when set; otherwise the built-in data dir for the config's
    vocabulary size, sequence length and corpus size under ``data.builtin_dir``
    (relative paths are relative to the working directory, as in training).
    """
    if cfg.data.path:
        return cfg.data.path
    from electra_tf.data.builtin import builtin_data_dir

    return builtin_data_dir(cfg.data.builtin_dir, cfg.model.vocab_size, cfg.data.max_seq_length,
                            cfg.data.builtin_corpus_mb)
