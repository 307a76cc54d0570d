"""Typed, frozen configuration for ELECTRA pretraining.

A config is four sections (``model``, ``generator``, ``data``, ``train``) plus
``embedding_sharing``. It is loaded from YAML, refined with ``key=value``
overrides, validated as a whole, and can be written back to YAML and read again
unchanged. Unknown keys and invalid values raise :class:`ConfigError` with a
message that names the key, the value and what is accepted, e.g.
``data.mask_prob must be in (0, 1), got 1.5``.

Example:

>>> cfg = load_config("configs/tiny.yaml", overrides=["train.max_steps=10"])
>>> cfg.train.max_steps
10
>>> cfg.generator_dims().hidden_size  # resolved from a fraction of D
32
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Union

import yaml

__all__ = [
    "ConfigError",
    "ModelConfig",
    "GeneratorConfig",
    "DataConfig",
    "TrainConfig",
    "ElectraConfig",
    "ResolvedGenerator",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "apply_overrides",
    "dump_config",
    "preset_path",
]

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")

MODES = ("joint", "decoupled")
SHARING = ("none", "shared", "gdes")
PRECISIONS = ("none", "bfloat16", "float16")
ACTIVATIONS = ("gelu", "relu", "tanh", "silu")


class ConfigError(ValueError):
    """A config key is unknown or a value is not accepted."""


# --------------------------------------------------------------------------- sections


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The discriminator (the model that is kept), and shared architecture settings.

    ``vocab_size`` is a number or ``"auto"`` (taken from the data manifest).
    ``embedding_size`` null means equal to ``hidden_size``; when it differs, the
    embeddings are projected to the hidden size (ELECTRA-Small).
    Position information is T5 bucketed relative bias (``relative_buckets`` > 0),
    absolute position embeddings (``absolute_positions``), or both.
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

    @property
    def ffn_size(self) -> int:
        return self.intermediate_size or 4 * self.hidden_size

    @property
    def emb_size(self) -> int:
        return self.embedding_size or self.hidden_size


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
    ``int((mask_prob + 0.005) * max_seq_length)``.
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

    @property
    def num_predictions(self) -> int:
        if self.max_predictions is not None:
            return self.max_predictions
        return max(1, int((self.mask_prob + 0.005) * self.max_seq_length))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation and the training loop.

    ``joint`` uses ``learning_rate`` and ``disc_weight`` (λ); ``decoupled`` uses
    ``generator_lr`` and ``discriminator_lr`` with one AdamW each.
    ``batch_size`` is global (all replicas and accumulation steps together).
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

    @property
    def gen_clip(self) -> float:
        return self.clip_norm if self.generator_clip_norm is None else self.generator_clip_norm

    @property
    def disc_clip(self) -> float:
        return self.clip_norm if self.discriminator_clip_norm is None else self.discriminator_clip_norm


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


# --------------------------------------------------------------------------- validation


def _check(cond: bool, key: str, value: Any, accepted: str) -> None:
    if not cond:
        raise ConfigError(f"{key} must be {accepted}, got {value!r}")


def _validate(cfg: ElectraConfig) -> None:
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
    _check(d.masking in ("token", "whole_word", "span"), "data.masking", d.masking, "one of token, whole_word, span")

    _check(t.mode in MODES, "train.mode", t.mode, f"one of {MODES}")
    for key in ("learning_rate", "generator_lr", "discriminator_lr", "disc_weight", "temperature", "adam_epsilon"):
        v = getattr(t, key)
        _check(v > 0, f"train.{key}", v, "> 0")
    for key in ("adam_beta1", "adam_beta2"):
        v = getattr(t, key)
        _check(0.0 <= v < 1.0, f"train.{key}", v, "in [0, 1)")
    _check(t.weight_decay >= 0, "train.weight_decay", t.weight_decay, ">= 0")
    _check(t.clip_norm >= 0, "train.clip_norm", t.clip_norm, ">= 0 (0 disables clipping)")
    for key in ("generator_clip_norm", "discriminator_clip_norm"):
        v = getattr(t, key)
        _check(v is None or v >= 0, f"train.{key}", v, "null or >= 0")
    for key in ("batch_size", "max_steps", "grad_accum_steps", "log_every", "checkpoint_every",
                "keep_checkpoints", "eval_steps", "max_skipped_steps"):
        v = getattr(t, key)
        _check(v >= 1, f"train.{key}", v, "an integer >= 1")
    _check(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "an integer >= 0")
    _check(t.eval_every >= 0, "train.eval_every", t.eval_every, "an integer >= 0 (0 = never)")
    _check(t.batch_size % t.grad_accum_steps == 0, "train.batch_size", t.batch_size,
           f"divisible by train.grad_accum_steps ({t.grad_accum_steps})")
    _check(t.mixed_precision in PRECISIONS, "train.mixed_precision", t.mixed_precision, f"one of {PRECISIONS}")

    _check(cfg.embedding_sharing in SHARING, "embedding_sharing", cfg.embedding_sharing, f"one of {SHARING}")
    if cfg.embedding_sharing == "shared":
        _check(t.mode == "joint", "embedding_sharing", "shared",
               "'none' or 'gdes' with train.mode=decoupled (a shared table cannot belong to two optimizers)")


# --------------------------------------------------------------------------- (de)serialisation

_SECTIONS = {"model": ModelConfig, "generator": GeneratorConfig, "data": DataConfig, "train": TrainConfig}
_TOP_LEVEL = ("embedding_sharing",)


def _type_allows(field: dataclasses.Field, value: Any) -> bool:
    """Whether ``value`` (parsed from YAML) fits the field's annotation."""
    ann = str(field.type)
    if value is None:
        return "Optional" in ann
    if isinstance(value, bool):
        return ann.startswith("bool") or ann == "Optional[bool]"
    allowed = []
    if "int" in ann:
        allowed.append(int)
    if "float" in ann:
        allowed.extend([float, int])
    if "str" in ann:
        allowed.append(str)
    if "bool" in ann:
        allowed.append(bool)
    return isinstance(value, tuple(allowed))


def _numeric_string(field: dataclasses.Field, value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; a numeric field takes it as the number."""
    if isinstance(value, str) and "float" in str(field.type):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _coerce(field: dataclasses.Field, value: Any) -> Any:
    ann = str(field.type)
    # A float field given an integer literal (``1`` for 1.0) stays a float, except
    # where ints and floats mean different things (generator fractions).
    if isinstance(value, int) and not isinstance(value, bool) and "float" in ann and "int" not in ann:
        return float(value)
    return value


def _build_section(name: str, cls: type, raw: Any) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be a mapping of keys to values, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"unknown config key {name}.{key!s} (accepted: {', '.join(sorted(fields))})")
        field = fields[key]
        value = _numeric_string(field, value)
        if not _type_allows(field, value):
            raise ConfigError(f"{name}.{key} must be of type {field.type}, got {value!r}")
        kwargs[key] = _coerce(field, value)
    return cls(**kwargs)


def config_from_dict(raw: Mapping[str, Any]) -> ElectraConfig:
    """Builds and validates a config from a nested mapping (as read from YAML)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a config must be a mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in _SECTIONS and key not in _TOP_LEVEL:
            raise ConfigError(f"unknown config key {key!s} (accepted: {', '.join(sorted([*_SECTIONS, *_TOP_LEVEL]))})")
    sections = {name: _build_section(name, cls, raw.get(name)) for name, cls in _SECTIONS.items()}
    sharing = raw.get("embedding_sharing", "none")
    if not isinstance(sharing, str):
        raise ConfigError(f"embedding_sharing must be one of {SHARING}, got {sharing!r}")
    cfg = ElectraConfig(embedding_sharing=sharing, **sections)
    _validate(cfg)
    return cfg


def config_to_dict(cfg: ElectraConfig) -> Dict[str, Any]:
    """The config as a nested plain dict (the inverse of :func:`config_from_dict`)."""
    return dataclasses.asdict(cfg)


def _parse_override(item: str) -> tuple:
    if "=" not in item:
        raise ConfigError(f"an override must look like key=value (e.g. train.max_steps=100), got {item!r}")
    key, text = item.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the value of override {key} is not a YAML scalar: {text!r} ({exc})") from exc
    if isinstance(value, (dict, list)):
        raise ConfigError(f"the value of override {key} must be a scalar, got {text!r}")
    return key, value


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> Dict[str, Any]:
    """Returns a copy of ``raw`` with ``section.key=value`` overrides applied.

    Values parse as YAML scalars (``1e-4``, ``true``, ``null``, ``decoupled``).
    Keys are checked when the result is built by :func:`config_from_dict`, which
    also checks the values' types.
    """
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in (raw or {}).items()}
    for item in overrides or ():
        key, value = _parse_override(item)
        parts = key.split(".")
        if len(parts) == 1:
            if parts[0] not in _TOP_LEVEL:
                raise ConfigError(f"unknown config key {key} (top-level keys: {', '.join(_TOP_LEVEL)}; "
                                  f"others are section.key, sections: {', '.join(_SECTIONS)})")
            out[parts[0]] = value
        elif len(parts) == 2 and parts[0] in _SECTIONS:
            fields = {f.name for f in dataclasses.fields(_SECTIONS[parts[0]])}
            if parts[1] not in fields:
                raise ConfigError(f"unknown config key {key} (accepted in {parts[0]}: {', '.join(sorted(fields))})")
            section = out.get(parts[0]) or {}
            out[parts[0]] = {**section, parts[1]: value}
        else:
            raise ConfigError(f"unknown config key {key} (sections: {', '.join(_SECTIONS)})")
    return out


def preset_path(name_or_path: str) -> str:
    """``tiny`` -> ``configs/tiny.yaml``; a path is returned unchanged."""
    if os.path.exists(name_or_path):
        return name_or_path
    candidate = os.path.join(CONFIG_DIR, f"{name_or_path}.yaml")
    if os.path.exists(candidate):
        return candidate
    presets = sorted(p[:-5] for p in os.listdir(CONFIG_DIR) if p.endswith(".yaml")) if os.path.isdir(CONFIG_DIR) else []
    raise ConfigError(f"config {name_or_path!r} is neither a file nor a preset (presets: {', '.join(presets)})")


def load_config(path: str, overrides: Optional[Iterable[str]] = None) -> ElectraConfig:
    """Loads a YAML config (a path or a preset name) and applies overrides."""
    path = preset_path(path)
    with open(path, "r", encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if raw is not None and not isinstance(raw, Mapping):
        raise ConfigError(f"{path} must hold a mapping of sections (model:, generator:, data:, train:), "
                          f"got a YAML {type(raw).__name__}")
    overrides = list(overrides or ())
    try:
        return config_from_dict(apply_overrides(raw or {}, overrides))
    except ConfigError as exc:
        raise ConfigError(f"{exc} ({_blame(str(exc), path, overrides)})") from None


def _blame(message: str, path: str, overrides: Sequence[str]) -> str:
    """Where an error came from: the ``--set`` override whose key it names, else the YAML file."""
    for item in reversed(overrides):
        key = item.split("=", 1)[0].strip()
        named = key and (message.startswith(f"{key} ") or f" {key} " in f" {message} " or f"{key}:" in message)
        if repr(item) in message or named:
            return f"from --set {item}"
    return f"in {path}"


def dump_config(cfg: ElectraConfig, path: Optional[str] = None) -> str:
    """Writes the resolved config as YAML (atomically, when ``path`` is given)."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)
    if path:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    return text
