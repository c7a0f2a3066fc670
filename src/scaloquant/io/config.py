"""Config files: the one reader of YAML and TOML settings for every command.

A config file holds a top-level mapping of a config class's fields; :func:`read_config` reads
it and hands the plain dict to the class's ``from_dict`` (each config class of
:mod:`scaloquant.simulate`, :mod:`scaloquant.fit`, :mod:`scaloquant.scalogram`,
:mod:`scaloquant.train` and :mod:`scaloquant.models` has the same ``from_dict``/``to_dict``
pair), so the pure layers never touch a file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ..errors import ConfigError, InputFileError

T = TypeVar("T")


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


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: PyYAML keeps the last
    silently, so ``water_removal: hlsvd`` then ``water_removal: none`` ran with the second and
    no word (TOML's reader refuses it already; session 34, ``audit34``)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                f"while reading the mapping at line {node.start_mark.line + 1}",
                None,
                f"{key!r} is given twice (lines {seen[key].start_mark.line + 1} and "
                f"{key_node.start_mark.line + 1}): keep one",
                None,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)
# A number with an exponent is a number, as YAML 1.2, TOML and Python read it: PyYAML's YAML
# 1.1 reads 1e6, 1.0e6 and 2.5E-3 as text (its floats need a dot and a signed exponent, 1.0e+6),
# so 'freeform_halfwidth_hz: 1e1' was refused as "must be a positive number, got '1e1'"
# (session 36, audit36). Quoted ('1e6') it stays text; the other forms resolve as before.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def read_mapping(path: Path) -> Mapping[str, Any]:
    """The top-level mapping of a YAML (any suffix but ``.toml``) or TOML file (``{}`` if
    empty); unreadable or malformed files raise one clear line."""
    try:
        # 'utf-8-sig': a byte-order mark (Windows editors save one) is dropped; TOML's reader
        # refused it as 'Invalid statement (at line 1, column 1)', a character no one sees
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputFileError(f"config file {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise InputFileError(f"config file {path} is a folder; give a YAML or TOML file") from None
    except OSError as err:  # its reason, not Python's '[Errno 13] ...: path'
        raise InputFileError(f"cannot read config file {path}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise InputFileError(f"cannot read config file {path}: {err}") from None
    if path.suffix.lower() == ".toml":
        data = _read_toml(text, path)
    else:
        try:
            data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
        except yaml.YAMLError as err:
            detail = " ".join(str(err).split())
            raise ConfigError(f"cannot parse {path} as YAML ({detail}); fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
    return data


def read_config(
    path: str | os.PathLike | None,
    from_dict: Callable[[Mapping[str, Any]], T],
    *,
    defaults: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """A config object from ``defaults``, then the file's keys, then ``overrides`` (e.g. CLI
    flags), each replacing the top-level keys of the one before, validated by ``from_dict``
    (e.g. ``SimulationConfig.from_dict``). ``path=None`` reads no file; an empty file adds
    nothing."""
    data = {} if path is None else read_mapping(Path(path))
    return from_dict({**(defaults or {}), **data, **(overrides or {})})
