"""Typed, frozen configuration for ELECTRA pretraining.

A config is four sections (``model``, ``generator``, ``data``, ``train``) plus
``embedding_sharing``. It is loaded from YAML, refined with ``key=value``
overrides, validated as a whole, and can be written back to YAML and read again
unchanged. Unknown keys and invalid values raise :class:`ConfigError` with a
message that names the key, the value and what is accepted, e.g.
``data.mask_prob must be in (0, 1), got 1.5``.

The parts: :mod:`~electra_tf.config.schema` (the dataclasses and defaults),
:mod:`~electra_tf.config.io` (YAML, presets, overrides) and
:mod:`~electra_tf.config.validation`.

Example:

>>> cfg = load_config("configs/tiny.yaml", overrides=["train.max_steps=10"])
>>> cfg.train.max_steps
10
>>> cfg.generator_dims().hidden_size  # resolved from a fraction of D
32
"""

from electra_tf.config.io import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
    preset_path,
)
from electra_tf.config.schema import (
    CONFIG_DIR,
    ConfigError,
    DataConfig,
    ElectraConfig,
    GeneratorConfig,
    ModelConfig,
    ResolvedGenerator,
    TrainConfig,
    default_max_predictions,
)

__all__ = [
    "CONFIG_DIR",
    "ConfigError",
    "ModelConfig",
    "GeneratorConfig",
    "DataConfig",
    "TrainConfig",
    "ElectraConfig",
    "ResolvedGenerator",
    "default_max_predictions",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "apply_overrides",
    "dump_config",
    "preset_path",
]
