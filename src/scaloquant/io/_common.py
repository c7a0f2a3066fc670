"""Checks shared by every reader: the file exists and is text, numbers parse, samples are finite,
point counts match, metadata are present. Each failure is a typed one-line error naming the file.
"""

from __future__ import annotations

import math
import os
from numbers import Real
from pathlib import Path

import numpy as np

from ..errors import InputFileError, InvalidDataError, MissingMetadataError


def require_file(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path`, or :class:`InputFileError` if it is missing or a folder."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path} does not exist; check the path")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder; give a file")
    return path


def require_dir(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path`, or :class:`InputFileError` if it is missing or not a folder."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path} does not exist; check the path")
    if not path.is_dir():
        raise InputFileError(f"{path} is not a folder; give the folder holding the basis files")
    return path


def read_text(path: str | os.PathLike) -> str:
    """The whole text of a file (Latin-1 accepted: vendor headers carry odd characters)."""
    path = require_file(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputFileError(f"cannot read {path}: {err.strerror}; check its permissions") from None
    if b"\x00" in raw[:4096]:
        raise InputFileError(f"{path} is a binary file, not text; check the file format")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_floats(tokens: list[str], path: Path, what: str = "data") -> np.ndarray:
    """Convert number tokens to float64; a garbled token raises :class:`InputFileError`."""
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if not _is_float(t))
        raise InputFileError(
            f"{path}: {what} contains {bad[:30]!r}, which is not a number; "
            "the file is garbled or not in the expected format"
        ) from None


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def interleaved_to_complex(values: np.ndarray, path: Path) -> np.ndarray:
    """``re0 im0 re1 im1 ...`` -> complex array; an odd count means a truncated file."""
    if values.size == 0:
        raise InvalidDataError(f"{path} holds no samples; check the file")
    if values.size % 2:
        raise InputFileError(
            f"{path} holds an odd number of values ({values.size}), not re/im pairs; "
            "the file is truncated or garbled"
        )
    return values[0::2] + 1j * values[1::2]


def require_finite(samples: np.ndarray, path: Path) -> np.ndarray:
    """Refuse NaN/Inf samples with a message naming the file and the first bad sample."""
    bad = ~np.isfinite(samples)
    if bad.any():
        first = int(np.flatnonzero(bad.ravel())[0])
        raise InvalidDataError(
            f"{path} has {int(bad.sum())} NaN/Inf sample(s) (first at index {first}); "
            "fix or re-export the file"
        )
    return samples


def require_count(found: int, expected: int, path: Path, what: str = "points") -> None:
    """Refuse a file whose number of samples differs from what its header says."""
    if found < expected:
        raise InputFileError(
            f"{path} is truncated: its header says {expected} {what} but it holds {found}; "
            "re-export the file"
        )
    if found > expected:
        raise InvalidDataError(
            f"{path} holds {found} {what} but its header says {expected}; "
            "the header or the data are wrong"
        )


def require_grid(
    dwell_time_s: float | None, spectrometer_freq_mhz: float | None, path: Path
) -> tuple[float, float]:
    """Both values as floats, or :class:`MissingMetadataError` naming the flag that gives one."""
    for value, what, flag, keyword in (
        (dwell_time_s, "dwell time", "--dwell-time-s", "dwell_time_s"),
        (
            spectrometer_freq_mhz,
            "spectrometer frequency",
            "--spectrometer-freq-mhz",
            "spectrometer_freq_mhz",
        ),
    ):
        if value is None:
            raise MissingMetadataError(
                f"{path} does not record the {what}; pass {flag} (or {keyword}=... in Python)"
            )
    return float(dwell_time_s), float(spectrometer_freq_mhz)


def sequence_provenance(sequence: object, echo_time_s: object) -> dict[str, object]:
    """The provenance keys ``"sequence"`` and ``"echo_time_s"`` for what a header states.

    :func:`scaloquant.signal.match.stated_sequence` reads them to compare the data with a model.
    A missing or empty name and a missing, non-numeric or non-positive echo time are left out:
    the check is then skipped rather than guessed.
    """
    provenance: dict[str, object] = {}
    if isinstance(sequence, str) and sequence.strip():
        provenance["sequence"] = sequence.strip()
    if isinstance(echo_time_s, Real) and not isinstance(echo_time_s, bool):
        if math.isfinite(float(echo_time_s)) and echo_time_s > 0:
            provenance["echo_time_s"] = float(echo_time_s)
    return provenance
