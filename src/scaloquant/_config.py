"""Config files (YAML or TOML) and rebuilding frozen config dataclasses from plain dicts
(YAML files, checkpoints)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError, InputFileError

T = TypeVar("T")


def dataclass_from_dict(cls: type[T], data: Mapping[str, Any], what: str) -> T:
    """``cls(**data)``, refusing unknown keys and ill-typed values with one clear line.

    ``what`` names the settings in the message, e.g. ``"training"`` gives
    "unknown training setting(s) lr; valid: ...".
    """
    known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown {what} setting(s) {', '.join(unknown)}; valid: {', '.join(known)}"
        )
    try:
        return cls(**dict(data))
    except TypeError as err:  # e.g. a list where a number belongs
        raise ConfigError(f"invalid {what} setting: {err}") from None


def _read_toml(text: str, path: Path) -> Any:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(
                f"reading {path} needs Python >= 3.11 or the 'tomli' package; "
                "install tomli or write the config as YAML"
            ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"cannot parse {path} as TOML: {err}; fix the file") from None


def read_mapping(path: Path) -> Mapping[str, Any]:
    """The top-level mapping of a YAML (any suffix but ``.toml``) or TOML file (``{}`` if
    empty); unreadable or malformed files raise one clear line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"config file {path} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(f"cannot read config file {path}: {err}") from None
    if path.suffix.lower() == ".toml":
        data = _read_toml(text, path)
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            detail = " ".join(str(err).split())
            raise ConfigError(f"cannot parse {path} as YAML ({detail}); fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
    return data
