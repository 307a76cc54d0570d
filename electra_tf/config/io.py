"""Reading and writing configs: YAML files and presets, ``--set`` overrides, plain dicts.

Values are checked against the dataclasses' type hints (``typing.get_type_hints``)
as they are read; the whole config is then validated
(:mod:`electra_tf.config.validation`) and its derived defaults filled in.
"""

import dataclasses
import os
import typing
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Union

import yaml

from electra_tf.config.schema import (
    CONFIG_DIR,
    SHARING,
    ConfigError,
    DataConfig,
    ElectraConfig,
    GeneratorConfig,
    ModelConfig,
    TrainConfig,
    fill_defaults,
)
from electra_tf.config.validation import validate

_SECTIONS = {"model": ModelConfig, "generator": GeneratorConfig, "data": DataConfig, "train": TrainConfig}
_TOP_LEVEL = ("embedding_sharing",)


def _allowed(hint: Any) -> tuple:
    """The types a type hint accepts: ``Optional[int]`` -> ``(int, NoneType)``."""
    return typing.get_args(hint) if typing.get_origin(hint) is Union else (hint,)


def _type_allows(hint: Any, value: Any) -> bool:
    """Whether ``value`` (parsed from YAML) fits the type hint; an integer fits a float, a bool only a bool."""
    allowed = _allowed(hint)
    if value is None:
        return type(None) in allowed
    if isinstance(value, bool):
        return bool in allowed
    types = [t for t in allowed if t in (int, float, str)]
    if float in types:
        types.append(int)
    return isinstance(value, tuple(types))


def _numeric_string(hint: Any, value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; a numeric field takes it as the number."""
    if isinstance(value, str) and float in _allowed(hint):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _coerce(hint: Any, value: Any) -> Any:
    # A float field given an integer literal (``1`` for 1.0) stays a float, except
    # where ints and floats mean different things (generator fractions).
    allowed = _allowed(hint)
    if isinstance(value, int) and not isinstance(value, bool) and float in allowed and int not in allowed:
        return float(value)
    return value


def _type_name(hint: Any) -> str:
    names = [getattr(t, "__name__", str(t)).replace("NoneType", "null") for t in _allowed(hint)]
    return " or ".join(names)


def _build_section(name: str, cls: type, raw: Any) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be a mapping of keys to values, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"unknown config key {name}.{key!s} (accepted: {', '.join(sorted(fields))})")
        hint = hints[key]
        value = _numeric_string(hint, value)
        if not _type_allows(hint, value):
            raise ConfigError(f"{name}.{key} must be of type {_type_name(hint)}, got {value!r}")
        kwargs[key] = _coerce(hint, value)
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
    validate(cfg)
    return fill_defaults(cfg)


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
