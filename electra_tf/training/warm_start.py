"""Warm start: load pretrained weights (not optimizer state) to continue on a new corpus."""

import logging

from electra_tf.pretrained import restore_weights, weight_prefixes

log = logging.getLogger(__name__)


def warm_start(path, generator, discriminator):
    """Loads both models' weights from ``path`` (a model dir, a checkpoint or exports).

    Raises:
        ValueError: a variable's shape differs (e.g. another vocabulary); the
            message names the variable and both shapes.
    """
    prefixes = weight_prefixes(path)
    for name, model in (("generator", generator), ("discriminator", discriminator)):
        if name not in prefixes:
            log.warning("--init_from %s has no %s weights; it starts from scratch", path, name)
            continue
        restore_weights(prefixes[name], name, model, source=f"--init_from {path}")
        log.info("warm start: %s weights from %s", name, prefixes[name])
