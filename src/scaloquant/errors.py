"""Typed exceptions. Every message says what is wrong *and* what to do about it.

The CLI turns any :class:`ScaloquantError` into one line on stderr and a non-zero exit code;
anything else is a bug and keeps its traceback.
"""


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


class IncompatibleDataError(ScaloquantError):
    """Data do not match what a basis set or trained model expects (field, dwell time, points...)."""
