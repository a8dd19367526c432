"""Device configuration: a TOML file validated into frozen settings (unknown keys are rejected)."""

from __future__ import annotations

import tomllib
import typing
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from pacelight.errors import ConfigError


def _apply(obj: Any, data: dict, where: str) -> Any:
    """Return a copy of dataclass ``obj`` with ``data`` applied; unknown keys are an error."""
    known = {f.name: f for f in fields(obj)}
    changes = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if current is None and isinstance(value, dict):  # a table enables an optional section
            current = _optional_dataclass(type(obj), key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{key}: expected a table")
            changes[key] = _apply(current, value, f"{where}.{key}")
        else:
            if isinstance(current, bool) != isinstance(value, bool) or (
                isinstance(current, (int, float)) and not isinstance(value, (int, float))
            ) or (isinstance(current, str) and not isinstance(value, str)):
                raise ConfigError(f"{where}.{key}: expected {type(current).__name__}, got {type(value).__name__}")
            changes[key] = type(current)(value) if isinstance(current, float) else value
    try:
        return replace(obj, **changes)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _optional_dataclass(owner: type, name: str) -> Any:
    """Defaults of the dataclass in an ``X | None`` field, or None when it has none."""
    try:
        hint = typing.get_type_hints(owner)[name]
    except (NameError, TypeError, KeyError):
        return None
    cls = next((a for a in typing.get_args(hint) if is_dataclass(a)), None)
    return cls() if cls is not None else None


def read_toml(path: str | Path) -> dict:
    p = Path(path)
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML ({exc})") from None


def load_pipeline_settings(path: str | Path | None, language: str = "en"):
    from pacelight.analysis.pipeline import PipelineSettings

    settings = PipelineSettings(language=language)
    if path is None:
        return settings
    data = read_toml(path)
    section = data.get("pipeline", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [pipeline] must be a table")
    return _apply(settings, section, "pipeline")
