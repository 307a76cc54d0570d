"""Validation of a whole config: every error names the key, the value and what is accepted."""

from typing import Any

from electra_tf.config.schema import (
    ACTIVATIONS,
    INITS,
    MASKING_STRATEGIES,
    MODES,
    OPTIMIZER_ROLES,
    PER_OPTIMIZER_KEYS,
    PRECISIONS,
    SHARING,
    ConfigError,
    ElectraConfig,
    per_optimizer_key,
)
from electra_tf.seeds import SEED_LIMIT


def _check(cond: bool, key: str, value: Any, accepted: str) -> None:
    if not cond:
        raise ConfigError(f"{key} must be {accepted}, got {value!r}")


def validate(cfg: ElectraConfig) -> None:
    """Raises :class:`ConfigError` at the first value that is not accepted."""
    m, g, d, t = cfg.model, cfg.generator, cfg.data, cfg.train
    vs = m.vocab_size
    _check(vs == "auto" or (isinstance(vs, int) and vs >= 8), "model.vocab_size", vs, "'auto' or an integer >= 8")
    for key in ("hidden_size", "num_layers", "num_heads", "max_position_embeddings", "type_vocab_size"):
        v = getattr(m, key)
        _check(v >= 1, f"model.{key}", v, "an integer >= 1")
    _check(m.hidden_size % m.num_heads == 0, "model.hidden_size", m.hidden_size,
           f"divisible by model.num_heads ({m.num_heads})")
    for key in ("intermediate_size", "embedding_size"):
        v = getattr(m, key)
        _check(v is None or v >= 1, f"model.{key}", v, "null or an integer >= 1")
    for key in ("dropout", "attention_dropout"):
        v = getattr(m, key)
        _check(0.0 <= v < 1.0, f"model.{key}", v, "in [0, 1)")
    _check(m.activation in ACTIVATIONS, "model.activation", m.activation, f"one of {ACTIVATIONS}")
    _check(m.init in INITS, "model.init", m.init, "one of " + ", ".join(INITS))
    _check(m.initializer_range > 0, "model.initializer_range", m.initializer_range, "> 0")
    _check(m.layer_norm_epsilon > 0, "model.layer_norm_epsilon", m.layer_norm_epsilon, "> 0")
    _check(m.relative_buckets >= 0, "model.relative_buckets", m.relative_buckets, "an integer >= 0 (0 disables)")
    if m.relative_buckets:
        _check(m.relative_buckets % 2 == 0 and m.relative_buckets >= 4, "model.relative_buckets",
               m.relative_buckets, "an even integer >= 4 (buckets are split between directions)")
        _check(m.relative_max_distance > m.relative_buckets // 4, "model.relative_max_distance",
               m.relative_max_distance, f"> relative_buckets/4 ({m.relative_buckets // 4})")
    _check(m.absolute_positions or m.relative_buckets > 0, "model.absolute_positions", m.absolute_positions,
           "true when model.relative_buckets is 0 (the model needs some position information)")

    for key in ("hidden_size", "num_layers"):
        v = getattr(g, key)
        ok = (isinstance(v, float) and 0.0 < v <= 1.0) or (isinstance(v, int) and v >= 1)
        _check(ok, f"generator.{key}", v, "an integer >= 1 or a fraction in (0, 1] of the discriminator's")
    _check(g.num_heads is None or g.num_heads >= 1, "generator.num_heads", g.num_heads, "null or an integer >= 1")
    _check(g.intermediate_size is None or g.intermediate_size >= 1, "generator.intermediate_size",
           g.intermediate_size, "null or an integer >= 1")
    dims = cfg.generator_dims()
    _check(dims.hidden_size % dims.num_heads == 0, "generator.hidden_size", dims.hidden_size,
           f"divisible by the generator's head count ({dims.num_heads})")

    _check(d.max_seq_length >= 8, "data.max_seq_length", d.max_seq_length, "an integer >= 8")
    _check(d.max_seq_length <= m.max_position_embeddings, "data.max_seq_length", d.max_seq_length,
           f"<= model.max_position_embeddings ({m.max_position_embeddings})")
    _check(0.0 < d.mask_prob < 1.0, "data.mask_prob", d.mask_prob, "in (0, 1)")
    _check(0.0 <= d.mask_token_prob <= 1.0, "data.mask_token_prob", d.mask_token_prob, "in [0, 1]")
    _check(d.max_predictions is None or 1 <= d.max_predictions <= d.max_seq_length, "data.max_predictions",
           d.max_predictions, f"null or an integer in [1, data.max_seq_length={d.max_seq_length}]")
    _check(d.shuffle_buffer >= 1, "data.shuffle_buffer", d.shuffle_buffer, "an integer >= 1")
    _check(d.builtin_corpus_mb > 0, "data.builtin_corpus_mb", d.builtin_corpus_mb, "> 0")
    _check(0.0 <= d.eval_fraction < 1.0, "data.eval_fraction", d.eval_fraction, "in [0, 1)")
    _check(0.0 <= d.short_seq_prob <= 1.0, "data.short_seq_prob", d.short_seq_prob, "in [0, 1]")
    _check(d.masking in MASKING_STRATEGIES, "data.masking", d.masking, "one of " + ", ".join(MASKING_STRATEGIES))

    _check(t.mode in MODES, "train.mode", t.mode, f"one of {MODES}")
    for key in ("learning_rate", "generator_lr", "discriminator_lr", "disc_weight", "temperature", "adam_epsilon"):
        v = getattr(t, key)
        _check(v > 0, f"train.{key}", v, "> 0")
    for key in ("adam_beta1", "adam_beta2"):
        v = getattr(t, key)
        _check(0.0 <= v < 1.0, f"train.{key}", v, "in [0, 1)")
    _check(t.weight_decay >= 0, "train.weight_decay", t.weight_decay, ">= 0")
    _check(t.clip_norm >= 0, "train.clip_norm", t.clip_norm, ">= 0 (0 disables clipping)")
    _check(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "an integer >= 0")
    _validate_per_optimizer(t)
    for key in ("batch_size", "max_steps", "grad_accum_steps", "log_every", "checkpoint_every",
                "keep_checkpoints", "eval_steps", "max_skipped_steps"):
        v = getattr(t, key)
        _check(v >= 1, f"train.{key}", v, "an integer >= 1")
    _check(t.eval_every >= 0, "train.eval_every", t.eval_every, "an integer >= 0 (0 = never)")
    _check(t.batch_size % t.grad_accum_steps == 0, "train.batch_size", t.batch_size,
           f"divisible by train.grad_accum_steps ({t.grad_accum_steps})")
    _check(isinstance(t.seed, int) and not isinstance(t.seed, bool) and 0 <= t.seed < SEED_LIMIT, "train.seed",
           t.seed, "an integer in [0, 2**32) (electra_tf/seeds.py keeps its streams apart in that range)")
    _check(t.mixed_precision in PRECISIONS, "train.mixed_precision", t.mixed_precision, f"one of {PRECISIONS}")

    _check(cfg.embedding_sharing in SHARING, "embedding_sharing", cfg.embedding_sharing, f"one of {SHARING}")
    if cfg.embedding_sharing == "shared":
        _check(t.mode == "joint", "embedding_sharing", "shared",
               "'none' or 'gdes' with train.mode=decoupled (a shared table cannot belong to two optimizers)")
    if cfg.embedding_sharing == "all":
        # The original ELECTRA's sharing; decoupled mode gives each model its own copy (README, "Coming from
        # google-research/electra"): a warm start from a model dir of the original loads the block into both.
        _check(t.mode == "joint", "embedding_sharing", "all",
               "'none' with train.mode=decoupled (one copy of the embedding block per model, each trained by its "
               "own optimizer; --init_from a model dir of the original architecture loads its one block into "
               "both), or train.mode=joint to share it as the original does")


_PER_OPTIMIZER_RANGES = {"warmup_steps": (lambda v: v >= 0, "an integer >= 0"),
                         "weight_decay": (lambda v: v >= 0, ">= 0"),
                         "adam_beta1": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
                         "adam_beta2": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
                         "clip_norm": (lambda v: v >= 0, ">= 0 (0 disables clipping)")}


def _validate_per_optimizer(t) -> None:
    """``train.generator_X`` / ``train.discriminator_X``: null or in X's range; in joint mode, null or X itself."""
    for key in PER_OPTIMIZER_KEYS:
        ok, accepted = _PER_OPTIMIZER_RANGES[key]
        shared = getattr(t, key)
        for role in OPTIMIZER_ROLES:
            name = per_optimizer_key(role, key)
            v = getattr(t, name)
            _check(v is None or ok(v), f"train.{name}", v, f"null (= train.{key}) or {accepted}")
            # Clip norms predate the other overrides and were always ignored by joint; they stay so.
            if t.mode == "joint" and key != "clip_norm":
                _check(v is None or v == shared, f"train.{name}", v,
                       f"null or equal to train.{key} ({shared!r}) with train.mode=joint (one optimizer; "
                       f"set train.{key} instead)")
