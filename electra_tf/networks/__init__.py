"""Encoders (never trained alone)."""

from electra_tf.networks.encoder import Encoder

__all__ = ["Encoder"]
