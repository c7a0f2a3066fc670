"""Typed exceptions. Every message says what is wrong *and* what to do about it.

The CLI turns any :class:`ScaloquantError`, and any ``OSError`` (through
:func:`os_error_message`), into one line on stderr and a non-zero exit code; anything else is a
bug and keeps its traceback.
"""

import errno
import os
import re

#: The hidden names the atomic writers use (:mod:`scaloquant.io.atomic`): a staging folder
#: ``.NAME.partial-<hex>`` and a temporary file ``.NAME.<8 random characters><suffixes>``.
_STAGING = re.compile(r"\.([^/\\]+)\.partial-[0-9a-f]+")
_TEMPORARY = re.compile(r"^\.(.+)\.[A-Za-z0-9_]{8}((?:\.[^.]+)*)$")


class ScaloquantError(Exception):
    """Base class of every error the user can fix; ``str(err)`` is the one-line message."""

    exit_code = 2


class InputFileError(ScaloquantError):
    """A file cannot be read: missing, unreadable, truncated, garbled or of an unknown format."""


class MissingMetadataError(ScaloquantError):
    """A file format lacks acquisition metadata (dwell time, frequency) the caller must supply."""


class InvalidDataError(ScaloquantError):
    """Samples are unusable: NaN/Inf values, wrong number of points, empty arrays."""


class ConfigError(ScaloquantError):
    """A configuration value or range is invalid (min > max, negative counts, unknown keys)."""


class UnknownMetaboliteError(ConfigError):
    """A metabolite name is not in the basis set."""


class OutputExistsError(ScaloquantError):
    """The output exists and ``--overwrite`` was not given; the existing file is left untouched."""


class OutputWriteError(ScaloquantError):
    """Writing an output failed (a full disk, a read-only folder); nothing partial was left."""


class IncompatibleDataError(ScaloquantError):
    """Data do not match what a basis set or trained model expects (field, dwell time, points...)."""


def _user_path(filename: object) -> str:
    """The path the user asked for, for a path of the atomic writers' hidden files."""
    path = _STAGING.sub(r"\1", os.fsdecode(filename))
    head, name = os.path.split(path)
    found = _TEMPORARY.match(name)
    if found and (not found.group(2) or found.group(1).endswith(found.group(2))):
        path = os.path.join(head, found.group(1))
    return path


def os_error_message(err: OSError) -> str:
    """One line for an ``OSError`` of reading or writing: the file, the reason, what to do."""
    reason = err.strerror or str(err) or type(err).__name__
    where = f" ({_user_path(err.filename)})" if err.filename else ""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"no space left on the device{where}; no partial output was left: free some space "
            "(or choose --out elsewhere) and run again"
        )
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"{reason}{where}; choose a folder you can write to (--out) or check the permissions; "
            "no partial output was left"
        )
    return f"{reason}{where}; no partial output was left: check the path and the device"
