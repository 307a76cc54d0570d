"""The benchmark's dimensions and the analytic FLOP count of one ELECTRA training token.

FLOPs count the matrix multiplications only (a multiply-add is 2 FLOPs), the
convention of model-FLOPs utilisation (MFU): LayerNorm, softmax, GELU,
dropout, sampling and the optimizer are work the hardware does but the model
does not "need", so they lower MFU rather than raise the count. The backward
pass costs twice the forward (gradients with respect to activations and to
weights), so a training step is ``3 x forward``.

Per sequence of ``S`` tokens, an encoder of ``L`` layers, width ``h`` and
feed-forward width ``f`` does, per layer:

- fused Q, K, V projections: ``2 * S * h * 3h``; attention output: ``2 * S * h * h``;
- attention scores ``Q K^T`` and context ``P V``: ``2 * S * S * h`` each;
- feed-forward: ``2 * S * h * f`` twice;

plus the embedding projection ``2 * S * E * h`` when the embedding width ``E``
differs from ``h``. The discriminator's head is ``2 * S * h * h + 2 * S * h``;
the generator's masked-LM head runs only at the ``P`` masked positions:
``2 * P * h_G * E`` (transform) ``+ 2 * P * E * V`` (tied vocabulary projection).

Example:

>>> dims = Dims.from_config(load_config("small", ["train.batch_size=32"]))
>>> round(train_flops_per_token(dims) / 1e6, 1)
70.2
"""

from __future__ import annotations

import dataclasses
from typing import Dict

__all__ = ["Dims", "encoder_forward_flops", "forward_flops_per_sequence", "train_flops_per_token"]


@dataclasses.dataclass(frozen=True)
class Dims:
    """The dimensions shared by every benchmarked system (ours and Model Garden's)."""

    vocab_size: int
    seq_length: int
    batch_size: int
    max_predictions: int
    embedding_size: int
    max_position_embeddings: int
    disc_hidden: int
    disc_layers: int
    disc_heads: int
    disc_ffn: int
    gen_hidden: int
    gen_layers: int
    gen_heads: int
    gen_ffn: int

    @classmethod
    def from_config(cls, cfg) -> "Dims":
        """The dimensions of an :class:`electra_tf.config.ElectraConfig` (vocab size resolved)."""
        m, g = cfg.model, cfg.generator_dims()
        if not isinstance(m.vocab_size, int):
            raise ValueError(f"model.vocab_size must be a number for the benchmark, got {m.vocab_size!r}")
        return cls(vocab_size=m.vocab_size, seq_length=cfg.data.max_seq_length, batch_size=cfg.train.batch_size,
                   max_predictions=cfg.data.max_predictions, embedding_size=m.embedding_size,
                   max_position_embeddings=m.max_position_embeddings, disc_hidden=m.hidden_size,
                   disc_layers=m.num_layers, disc_heads=m.num_heads, disc_ffn=m.intermediate_size,
                   gen_hidden=g.hidden_size, gen_layers=g.num_layers, gen_heads=g.num_heads,
                   gen_ffn=g.intermediate_size)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_length

    def as_dict(self) -> Dict[str, int]:
        return dataclasses.asdict(self)


def encoder_forward_flops(seq: int, hidden: int, layers: int, ffn: int, embedding: int) -> int:
    """Matmul FLOPs of one encoder's forward pass over one sequence (embedding projection included)."""
    per_layer = 2 * seq * hidden * 3 * hidden + 2 * seq * hidden * hidden + 2 * (2 * seq * seq * hidden) \
        + 2 * (2 * seq * hidden * ffn)
    projection = 2 * seq * embedding * hidden if embedding != hidden else 0
    return layers * per_layer + projection


def forward_flops_per_sequence(d: Dims) -> Dict[str, int]:
    """Forward matmul FLOPs per sequence, by part: ``generator``, ``mlm_head``, ``discriminator``, ``rtd_head``."""
    return {
        "generator": encoder_forward_flops(d.seq_length, d.gen_hidden, d.gen_layers, d.gen_ffn, d.embedding_size),
        "mlm_head": 2 * d.max_predictions * d.gen_hidden * d.embedding_size
        + 2 * d.max_predictions * d.embedding_size * d.vocab_size,
        "discriminator": encoder_forward_flops(d.seq_length, d.disc_hidden, d.disc_layers, d.disc_ffn,
                                               d.embedding_size),
        "rtd_head": 2 * d.seq_length * d.disc_hidden * d.disc_hidden + 2 * d.seq_length * d.disc_hidden,
    }


def train_flops_per_token(d: Dims) -> float:
    """Training (forward + backward = 3 x forward) matmul FLOPs per input token."""
    return 3.0 * sum(forward_flops_per_sequence(d).values()) / d.seq_length
