"""Generic typed-dataclass config machinery: YAML in, dotted overrides, checks, YAML out.

Kept independent of the schema so every section (world, model, learner, ...) gets the
same behaviour: an unknown key or a wrong type is an error that names the key and
what is allowed, never a silent default.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ..errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)
# Keys that once existed: accepted (a saved config.yaml still loads), ignored, and named in a warning.
RETIRED = {"logging.videos_every": "sample videos go to wandb once, at evaluation"}
# Keys renamed when the roles got one vocabulary (Executor, Demonstrator): the old name still
# works, with a warning that names the new one.
RENAMED = {"actors.sampler": "executor", "algorithm.teacher_mix": "demonstration_mix",
           "algorithm.policy_rows": "executor_rows", "algorithm.anchor_teacher": "anchor_on",
           "train.teacher_samples": "demonstrator_samples", "train.teacher_eta": "demonstrator_eta"}


_EXPONENT_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against annotation ``tp``; return it in canonical form."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue  # the next member of the union may take it
        raise ConfigError(f"{key} must be {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {type(value).__name__} {value!r}")
        item_tp = args[0] if args else Any
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {type(value).__name__}")
        vt = args[1] if len(args) == 2 else Any
        glued = [k for k, v in value.items() if v is None and ":" in str(k)]
        if glued:  # YAML reads {awm:1.0} as the key "awm:1.0" with no value
            raise ConfigError(f"{key}: {{{glued[0]}}} needs a space after the colon, e.g. {{awm: 1.0}}")
        return {str(k): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping (section), got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be a bool (true/false), got {type(value).__name__} {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be an int, got {type(value).__name__} {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads "2e-3" (no dot) as a string
        raise ConfigError(f"{key} must be a float, got {type(value).__name__} {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string, got {type(value).__name__} {value!r}")
    raise ConfigError(f"{key}: unsupported config type {_type_name(tp)}")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types raise ConfigError."""
    types_ = _field_types(cls)
    for key in [k for k in data if f"{prefix}{k}" in RETIRED]:
        log.warning("config key '%s%s' is retired and ignored: %s", prefix, key, RETIRED[f"{prefix}{key}"])
        data = {k: v for k, v in data.items() if k != key}
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}' (allowed in "
            f"{prefix.rstrip('.') or 'the top level'}: {', '.join(sorted(types_))})"
        )
    kwargs = {name: _coerce(value, types_[name], prefix + name) for name, value in data.items()}
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if callable(check):
        check()
    return obj


def to_dict(obj: Any) -> Any:
    """Plain dict/list form of a config (what is written to config.yaml)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """``world.grid=5`` -> (['world', 'grid'], 5); values are parsed as YAML scalars/lists."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': value is not valid YAML ({exc.__class__.__name__})") from None
    return key.split("."), value


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {} if child is None else child
            if not isinstance(child, dict):
                raise ConfigError(f"override '{'.'.join(path)}': '{part}' is not a section")
            node[part] = child
        node = child
    node[path[-1]] = value


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    return data


def load(cls: type[T], path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> T:
    """Defaults <- YAML file (if any) <- dotted overrides, then validate."""
    tree = to_dict(cls())
    if path is not None:
        _merge(tree, read_yaml(path), prefix="")
    for text in overrides or []:
        key, value = parse_override(text)
        _set_path(tree, _renamed(key), value)
    return from_dict(cls, tree)


def _renamed(path: list[str]) -> list[str]:
    """A dotted key with a section or field under its old name put under the new one (warned)."""
    for i in range(1, len(path) + 1):
        old = ".".join(path[:i])
        if old in RENAMED:
            log.warning("config key '%s' is now '%s'; the old name will be removed", old,
                        ".".join([*path[:i - 1], RENAMED[old]]))
            return [*path[:i - 1], RENAMED[old], *path[i:]]
    return path


def _merge(base: dict[str, Any], update: dict[str, Any], prefix: str) -> None:
    for given, value in update.items():
        key = _renamed(f"{prefix}{given}".split("."))[-1]
        if key != given and key in update:
            raise ConfigError(f"config sets both '{prefix}{given}' and its new name '{prefix}{key}'")
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, prefix=f"{prefix}{key}.")
        else:
            base[key] = value


def dump_yaml(cfg: Any, path: str | os.PathLike) -> None:
    """Write the resolved config atomically (a crash never leaves half a file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    os.replace(tmp, p)
