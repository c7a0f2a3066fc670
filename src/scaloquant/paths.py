"""Checks that a path the user gave exists, with the standard library only: the readers use
them, and the CLI runs them on every path of a command before it imports numpy and torch (3-5 s),
so that a mistyped path is refused at once."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputFileError

#: What to do about a checkpoint path that is missing (the readers' and the CLI's early check).
CHECKPOINT_HINT = "give the .ckpt file written by scaloquant train"
#: What to do about a simulation file (``scaloquant simulate``'s HDF5) that is missing.
SIMULATION_HINT = "give a simulation file written by scaloquant"


def require_existing(path: str | os.PathLike, what: str = "", hint: str = "check the path") -> Path:
    """``path`` as a :class:`Path` (a file or a folder), or :class:`InputFileError` if it does not
    exist: ``"{what}{path} does not exist; {hint}"``."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{what}{path} does not exist; {hint}")
    return path


def require_file(path: str | os.PathLike, what: str = "", hint: str | None = None) -> Path:
    """``path`` as a :class:`Path`, or :class:`InputFileError` if it is missing or a folder;
    ``hint`` says what to give in either case (default: check the path / give a file)."""
    path = require_existing(path, what, hint or "check the path")
    if path.is_dir():
        raise InputFileError(f"{what}{path} is a folder; {hint or 'give a file'}")
    return path


def require_dir(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path`, or :class:`InputFileError` if it is missing or not a folder."""
    path = require_existing(path)
    if not path.is_dir():
        raise InputFileError(f"{path} is not a folder; give the folder holding the basis files")
    return path
