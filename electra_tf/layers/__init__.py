"""Keras layers: one public class per file."""

from electra_tf.layers.attention import MultiHeadSelfAttention
from electra_tf.layers.disentangled_embedding import DisentangledEmbedding
from electra_tf.layers.embeddings import Embeddings
from electra_tf.layers.masked_lm_head import MaskedLMHead
from electra_tf.layers.relative_position_bias import RelativePositionBias, relative_position_bucket
from electra_tf.layers.replaced_token_head import ReplacedTokenHead
from electra_tf.layers.transformer_block import TransformerBlock

__all__ = [
    "DisentangledEmbedding",
    "Embeddings",
    "MaskedLMHead",
    "MultiHeadSelfAttention",
    "RelativePositionBias",
    "ReplacedTokenHead",
    "TransformerBlock",
    "relative_position_bucket",
]
