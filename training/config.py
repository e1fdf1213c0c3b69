"""Typed configs read from YAML presets whose keys are the dataclass's field names."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A preset names an unknown field or gives a value of the wrong type."""


def _coerce(name: str, kind: Any, value: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if value is None:
            return None
        kind, origin = options[0], typing.get_origin(options[0])
    if origin is typing.Literal:
        if value not in typing.get_args(kind):
            raise ConfigError(f"{name}: {value!r} is not one of {typing.get_args(kind)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        item = typing.get_args(kind)[0] if typing.get_args(kind) else None
        return origin(_coerce(name, item, v) if item is not None else v for v in value)
    if kind is Path:
        return Path(value)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind in (int, str, bool) and not isinstance(value, kind):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown field(s) for {cls.__name__}: {', '.join(unknown)}")
    return cls(**{k: _coerce(k, hints[k], v) for k, v in values.items()})


def load_config(cls: type[T], path: Path | None, **overrides: Any) -> T:
    """Defaults, then the YAML preset, then explicit overrides (e.g. from the command line)."""
    values: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a preset is a mapping of field names to values")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(cls, values)


def to_dict(config: Any) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        return str(v) if isinstance(v, Path) else [plain(x) for x in v] if isinstance(v, list | tuple) else v

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}
