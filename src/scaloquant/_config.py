"""Rebuilding frozen config dataclasses from plain dicts (config files, checkpoints): the one
``from_dict`` behind every config class's ``from_dict``, and the checks of their values that
many classes share (:func:`whole_number`, :func:`positive_number`), each worded once as the
CLI's flag types word theirs ('must be a whole number', ``scaloquant.cli._common``). Pure:
reading the files is :mod:`scaloquant.io.config`'s job."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from numbers import Integral, Real
from typing import Any, Literal, TypeVar, overload

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


@overload
def whole_number(name: str, value: Any, minimum: int, *, or_none: Literal[False] = ...) -> int: ...
@overload
def whole_number(name: str, value: Any, minimum: int, *, or_none: bool) -> int | None: ...
def whole_number(name: str, value: Any, minimum: int, *, or_none: bool = False) -> int | None:
    """``value`` as an ``int`` (None kept where ``or_none``), refusing a bool (``true`` for a
    count is a typo, not 1), a non-integer (``1.5``, ``"3"``) or one below ``minimum`` with
    "NAME must be a whole number >= MINIMUM[ or null], got VALUE" (:func:`_as_written`).
    numpy's integers are taken (a count computed with numpy) and given back as Python's, so
    that a config stays JSON-able."""
    if value is None and or_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        unset = " or null" if or_none else ""
        raise ConfigError(
            f"{name} must be a whole number >= {minimum}{unset}, got {_as_written(value)}"
        )
    return int(value)


@overload
def positive_number(name: str, value: Any, *, or_none: Literal[False] = ...) -> float: ...
@overload
def positive_number(name: str, value: Any, *, or_none: bool) -> float | None: ...
def positive_number(name: str, value: Any, *, or_none: bool = False) -> float | None:
    """``value`` as a ``float`` (None kept where ``or_none``), refusing a bool, a non-number,
    NaN, infinity or a value <= 0 with "NAME must be a positive number[ or null], got VALUE"
    (the CLI's words for such a flag; :func:`_as_written`)."""
    if value is None and or_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not (math.isfinite(value) and value > 0)
    ):
        unset = " or null" if or_none else ""
        raise ConfigError(f"{name} must be a positive number{unset}, got {_as_written(value)}")
    return float(value)


def true_or_false(name: str, value: Any) -> bool:
    """``value`` where it is a ``bool``, else "NAME must be true or false, got VALUE"
    (:func:`_as_written`): a config file's quoted ``"no"`` or ``"false"`` is a string, and
    Python takes a non-empty string as true, so the setting would have done its opposite."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {_as_written(value)}")
    return value


def _as_written(value: Any) -> str:
    """``value`` as a config file writes it, for a refusal: ``true``, ``false`` and ``null``
    (YAML's, TOML's and JSON's words, where Python's ``True`` and ``None`` were not what the
    user typed), a text quoted, a number (numpy's too) as Python prints a float or an int."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, Real) and hasattr(value, "item"):
        value = value.item()  # np.float64(1.5) -> 1.5
    return repr(value)
