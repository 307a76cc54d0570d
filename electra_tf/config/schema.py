"""The config's sections: frozen dataclasses, their accepted values, and the defaults filled in at load.

Each setting has one name. A ``null`` that means "derived from another
setting" (``model.intermediate_size``, ``model.embedding_size``,
``data.max_predictions``, the per-optimizer ``train.generator_*`` and
``train.discriminator_*`` overrides of :data:`PER_OPTIMIZER_KEYS`) is replaced
by the number when a config is loaded (:func:`fill_defaults`), so code reads
the field itself and a run's ``config.yaml`` records the value used.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional, Union

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")

MODES = ("joint", "decoupled")
SHARING = ("none", "shared", "gdes", "all")
PRECISIONS = ("none", "bfloat16", "float16")
ACTIVATIONS = ("gelu", "relu", "tanh", "silu")


class ConfigError(ValueError):
    """A config key is unknown or a value is not accepted."""


# --------------------------------------------------------------------------- sections


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The discriminator (the model that is kept), and shared architecture settings.

    ``vocab_size`` is a number or ``"auto"`` (taken from the data manifest).
    ``intermediate_size`` null means 4x ``hidden_size``; ``embedding_size`` null
    means equal to ``hidden_size`` (both are filled in at load); when the
    embedding size differs, the embeddings are projected to the hidden size
    (ELECTRA-Small).
    Position information is T5 bucketed relative bias (``relative_buckets`` > 0),
    absolute position embeddings (``absolute_positions``), or both.
    ``init`` is ``normal`` (truncated normal) or ``admin`` (the same, and each
    shortcut scaled by Admin's ``ω`` from a profiling pass at build time; the
    paper's section 6.1, used by ``base`` and ``large``).
    """

    vocab_size: Union[int, str] = "auto"
    hidden_size: int = 256
    num_layers: int = 12
    num_heads: int = 4
    intermediate_size: Optional[int] = None
    embedding_size: Optional[int] = None
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation: str = "gelu"
    initializer_range: float = 0.02
    layer_norm_epsilon: float = 1e-12
    max_position_embeddings: int = 512
    absolute_positions: bool = False
    relative_buckets: int = 32
    relative_max_distance: int = 128
    type_vocab_size: int = 2
    init: str = "normal"



@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """The small MLM generator.

    ``hidden_size`` and ``num_layers`` are absolute when > 1 (integers) or a
    fraction of the discriminator's when in (0, 1] given as a float (``0.25``).
    ``num_heads`` null means ``max(1, hidden // 64)``; ``intermediate_size``
    null means 4x hidden. Everything not listed is taken from ``model``.
    """

    hidden_size: Union[int, float] = 0.25
    num_layers: Union[int, float] = 1.0
    num_heads: Optional[int] = None
    intermediate_size: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where batches come from and how they are masked.

    ``path`` names a TFRecord data dir; null means the built-in corpus, built
    under ``builtin_dir`` on first use. ``max_predictions`` null means
    :func:`default_max_predictions` (filled in at load).
    """

    path: Optional[str] = None
    max_seq_length: int = 128
    mask_prob: float = 0.15
    mask_token_prob: float = 0.85
    max_predictions: Optional[int] = None
    shuffle_buffer: int = 10000
    builtin_dir: str = "tfrecords"
    builtin_corpus_mb: float = 4.0
    eval_fraction: float = 0.02
    short_seq_prob: float = 0.1
    masking: str = "token"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation and the training loop.

    ``joint`` uses ``learning_rate`` and ``disc_weight`` (λ); ``decoupled`` uses
    ``generator_lr`` and ``discriminator_lr`` with one AdamW each.
    ``batch_size`` is global (all replicas and accumulation steps together).
    ``generator_X`` / ``discriminator_X`` for X in :data:`PER_OPTIMIZER_KEYS` (warm-up, weight
    decay, betas, clip norm) override the shared ``X`` for one optimizer; null means the shared
    value (filled in at load). ``joint`` has one optimizer and refuses overrides that differ.
    """

    mode: str = "decoupled"
    disc_weight: float = 50.0
    learning_rate: float = 5e-4
    generator_lr: float = 2e-4
    discriminator_lr: float = 1.5e-3
    batch_size: int = 128
    max_steps: int = 1000
    warmup_steps: int = 100
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    adam_epsilon: float = 1e-6
    weight_decay: float = 0.01
    clip_norm: float = 2.0
    generator_clip_norm: Optional[float] = None
    discriminator_clip_norm: Optional[float] = None
    generator_warmup_steps: Optional[int] = None
    discriminator_warmup_steps: Optional[int] = None
    generator_weight_decay: Optional[float] = None
    discriminator_weight_decay: Optional[float] = None
    generator_adam_beta1: Optional[float] = None
    discriminator_adam_beta1: Optional[float] = None
    generator_adam_beta2: Optional[float] = None
    discriminator_adam_beta2: Optional[float] = None
    temperature: float = 1.0
    disallow_correct: bool = False
    seed: int = 0
    deterministic: bool = False
    mixed_precision: str = "none"
    jit_compile: bool = False
    grad_accum_steps: int = 1
    recompute: bool = False
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    eval_every: int = 0
    eval_steps: int = 20
    max_skipped_steps: int = 10


@dataclasses.dataclass(frozen=True)
class ResolvedGenerator:
    """The generator's absolute dimensions after fractions are resolved."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int


@dataclasses.dataclass(frozen=True)
class ElectraConfig:
    """The whole pretraining config."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    generator: GeneratorConfig = dataclasses.field(default_factory=GeneratorConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    embedding_sharing: str = "none"

    def generator_dims(self) -> ResolvedGenerator:
        g, m = self.generator, self.model
        hidden = _resolve_size(g.hidden_size, m.hidden_size)
        layers = _resolve_size(g.num_layers, m.num_layers)
        heads = g.num_heads or max(1, hidden // 64)
        return ResolvedGenerator(hidden, layers, heads, g.intermediate_size or 4 * hidden)

    def with_vocab_size(self, vocab_size: int) -> "ElectraConfig":
        """A copy with ``model.vocab_size`` set (resolving ``auto``)."""
        return dataclasses.replace(self, model=dataclasses.replace(self.model, vocab_size=int(vocab_size)))

    def replace(self, **sections: Any) -> "ElectraConfig":
        return dataclasses.replace(self, **sections)


def _resolve_size(value: Union[int, float], reference: int) -> int:
    if isinstance(value, float):
        return max(1, int(round(value * reference)))
    return int(value)


# Shared train settings that each optimizer of ``decoupled`` may override as ``{role}_{key}``.
PER_OPTIMIZER_KEYS = ("warmup_steps", "weight_decay", "adam_beta1", "adam_beta2", "clip_norm")
OPTIMIZER_ROLES = ("generator", "discriminator")


def per_optimizer_key(role: str, key: str) -> str:
    """``("generator", "warmup_steps")`` -> ``"generator_warmup_steps"``."""
    return f"{role}_{key}"


MASKING_STRATEGIES = ("token", "whole_word", "span")  # data.masking (electra_tf/data/masking.py)
INITS = ("normal", "admin")  # model.init (networks/encoder.py)


def default_max_predictions(mask_prob: float, max_seq_length: int) -> int:
    """ELECTRA's cap on the masked positions per sequence: ``int((mask_prob + 0.005) * max_seq_length)``, >= 1."""
    return max(1, int((mask_prob + 0.005) * max_seq_length))


def fill_defaults(cfg: ElectraConfig) -> ElectraConfig:
    """The config with every derived ``null`` replaced by its value (idempotent)."""
    m, d, t = cfg.model, cfg.data, cfg.train
    model = dataclasses.replace(m, intermediate_size=m.intermediate_size or 4 * m.hidden_size,
                                embedding_size=m.embedding_size or m.hidden_size)
    data = dataclasses.replace(d, max_predictions=(default_max_predictions(d.mask_prob, d.max_seq_length)
                                                   if d.max_predictions is None else d.max_predictions))
    filled = {}
    for role in OPTIMIZER_ROLES:
        for key in PER_OPTIMIZER_KEYS:
            name = per_optimizer_key(role, key)
            filled[name] = getattr(t, key) if getattr(t, name) is None else getattr(t, name)
    train = dataclasses.replace(t, **filled)
    return dataclasses.replace(cfg, model=model, data=data, train=train)
