"""Rebuilding frozen config dataclasses from plain dicts (config files, checkpoints): the one
``from_dict`` behind every config class's ``from_dict``. Pure: reading the files is
:mod:`scaloquant.io.config`'s job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from .errors import ConfigError

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
