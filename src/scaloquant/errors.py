"""Typed exceptions. Every message says what is wrong *and* what to do about it.

The CLI turns any :class:`ScaloquantError`, and any ``OSError`` (through
:func:`os_error_message`), into one line on stderr and a non-zero exit code; anything else is a
bug and keeps its traceback.
"""

import errno
import os
import re
from collections.abc import Mapping

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
    """A file format lacks acquisition metadata (dwell time, frequency) the caller must supply.

    ``path`` and ``missing``, where given, let a caller that cannot take the values from its
    user word the remedy its own way (a ``--basis`` file: the acquisition flags describe the
    inputs, not the basis): ``missing`` names each value the file lacks, in the flags' order
    (``("dwell time", "spectrometer frequency")``; it named the first alone, and a refusal
    worded from it said a file that lacks both lacks the dwell time). ``keywords``, where given, are the readers' keyword
    arguments that give the values (``("dwell_time_s",)``; the CLI's flags are named from
    them, :func:`scaloquant.cli._common.grid_flags`): ``str(err)`` names them after
    ``message`` for a Python caller ('(or dwell_time_s=... and spectrometer_freq_mhz=... in
    Python)'), and :attr:`flag_message` is ``message`` alone, which names the flags (the CLI's
    line; it said '(or dwell_time_s=... in Python)' to the command's user)."""

    def __init__(
        self,
        message: str,
        *,
        path: object = None,
        missing: tuple[str, ...] = (),
        keywords: tuple[str, ...] = (),
    ) -> None:
        python = " and ".join(f"{k}=..." for k in keywords)
        super().__init__(f"{message} (or {python} in Python)" if keywords else message)
        self.flag_message = message
        self.path = path
        self.missing = missing
        self.keywords = keywords


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


class Option:
    """A caller's option named in a message of :class:`NeedsOption`, by its key in
    :data:`OPTION_WORDS` (``Option("force")``)."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        if key not in OPTION_WORDS:
            raise KeyError(f"unknown option {key!r}; known: {', '.join(OPTION_WORDS)}")
        self.key = key

    def __repr__(self) -> str:
        return f"Option({self.key!r})"

    def __reduce__(self):
        return (Option, (self.key,))


#: How the library words the options that :class:`NeedsOption` messages name (its keyword
#: arguments); a front end words them its own way (the CLI: ``scaloquant.cli.OPTION_FLAGS``).
OPTION_WORDS: Mapping[str, str] = {
    "force": "force=True",
    "override_freq": "the right spectrometer frequency (overriding the header's)",
    "override_dwell": "the right dwell time (overriding the header's)",
    "water": "water",
    "basis": "basis",
    "refine": "refine=True",
    "mm_parametric": 'FitConfig(macromolecules="parametric")',
    "mm_spectrum": "mm_spectra",
    "ecc": "ecc=True",
}


class NeedsOption(IncompatibleDataError):
    """An incompatibility that one of the caller's options accepts or corrects.

    The message is a sequence of literal text and :class:`Option` parts, so that the layer that
    raises it states the facts without knowing how its caller names the options: ``str(err)``
    words them as the library's keywords (:data:`OPTION_WORDS`), :meth:`worded` as a front end
    does (the CLI maps them to its flags). ``options`` lists the keys named, in order.
    """

    def __init__(self, *parts: str | Option) -> None:
        self.parts = parts
        self.options = tuple(p.key for p in parts if isinstance(p, Option))
        super().__init__(self.worded(OPTION_WORDS))

    def worded(self, words: Mapping[str, str]) -> str:
        """The message with every option named by ``words[key]``."""
        return "".join(words[p.key] if isinstance(p, Option) else p for p in self.parts)

    def __reduce__(self):  # keep the parts across processes (the fit's workers)
        return (type(self), self.parts)


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


def out_of_memory_message(err: BaseException) -> str:
    """One line for running out of memory: ``MemoryError`` (the machine's memory) or torch's
    ``OutOfMemoryError`` (a GPU's), what was asked and what to do."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    asked = f" ({first.split('. ')[0].rstrip('.')})" if first else ""
    if isinstance(err, MemoryError):
        return (
            f"out of memory{asked}; no partial output was left: give fewer spectra at a time "
            "(split the input) or use a machine with more memory"
        )
    return (
        f"the GPU ran out of memory{asked}; no partial output was left: free the GPU of other "
        "work, or run on the CPU (--device cpu)"
    )
