"""Rebuilding frozen config dataclasses from plain dicts (config files, checkpoints): the one
``from_dict`` behind every config class's ``from_dict``. Pure: reading the files is
:mod:`scaloquant.io.config`'s job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")


def dataclass_defaults(cls: type) -> dict[str, Any]:
    """The default of every field of the dataclass ``cls`` that has a plain one (not a
    ``default_factory``): what a front end shows and uses as its own defaults, so that each
    default is written once, in the dataclass."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


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
