"""Trainable assemblies: generator, discriminator and the pretrainer."""

from electra_tf.models.discriminator import Discriminator
from electra_tf.models.factory import admin_profile_batch, build_models, encoder_kwargs
from electra_tf.models.generator import Generator

__all__ = ["Discriminator", "Generator", "admin_profile_batch", "build_models", "encoder_kwargs"]

from electra_tf.models.pretrainer import ElectraPretrainer  # noqa: E402

__all__ += ["ElectraPretrainer"]
