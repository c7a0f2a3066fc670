"""Checks shared by every reader: the file exists and is text, numbers parse, samples are finite,
point counts match, metadata are present. Each failure is a typed one-line error naming the file.
"""

from __future__ import annotations

import codecs
import math
import os
import re
from collections.abc import Iterable, Mapping
from numbers import Real
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import InputFileError, InvalidDataError, MissingMetadataError
from ..formats import ACQUISITION_VALUES
from ..paths import require_file


def read_text(path: str | os.PathLike) -> str:
    """The whole text of a file (Latin-1 accepted: vendor headers carry odd characters; a
    leading UTF-8 byte-order mark dropped)."""
    path = require_file(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputFileError(f"cannot read {path}: {err.strerror}; check its permissions") from None
    # a UTF-8 byte-order mark (Windows editors save one) is no character of the text: kept, it
    # was the first column's or the jMRUI header's, and the file was refused as another format
    raw = raw.removeprefix(codecs.BOM_UTF8)
    if b"\x00" in raw[:4096]:
        raise InputFileError(f"{path} is a binary file, not text; check the file format")
    if not raw.strip():
        raise InputFileError(f"{path} is empty; check the file (was it copied completely?)")
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


def _unsigned_width(token: str) -> int:
    return len(token.lstrip("+-"))


def require_complete_last_row(rows: list[list[str]], path: Path) -> None:
    """Refuse a file cut in the middle of its last number.

    Where every other row writes each column with the same number of characters (any fixed
    format, ``%.7e`` and the like; the sign is not counted), a shorter number in the last row is
    what remains of one that was cut. Free-format files (widths that vary) are not judged.
    """
    if len(rows) < 3:
        return
    body, last = rows[:-1], rows[-1]
    for col, token in enumerate(last):
        widths = {_unsigned_width(r[col]) for r in body if len(r) > col}
        if len(widths) == 1 and _unsigned_width(token) < (width := widths.pop()):
            raise InputFileError(
                f"{path} is truncated: its last row ends in {token!r}, shorter than the "
                f"{width}-character numbers of every other row; re-export or copy the file again"
            )


def require_fixed_width_lines(lines: list[str], fmt: str | None, path: Path) -> None:
    """Refuse a last data line that does not fill its Fortran format (LCModel ``FMTDAT`` /
    ``FMTBAS``, e.g. ``(8E13.5)``: up to 8 numbers of 13 characters per line): shorter than its
    numbers' fields, it was cut in the middle of a number.

    Judged only for a plain ``(rEw.d)`` format that every other line follows exactly (a writer
    that states one format and writes another is left alone, as before).
    """
    found = re.fullmatch(r"\s*\(\s*(\d*)\s*[EFDGefdg]\s*(\d+)(?:\.\d+)?\s*\)\s*", fmt or "")
    lines = [line.rstrip() for line in lines if line.strip()]
    if not found or not lines:
        return
    per_line, width = int(found.group(1) or 1), int(found.group(2))
    if any(len(line) != per_line * width for line in lines[:-1]):
        return
    last = lines[-1]
    n = len(last.split())
    if n > per_line or len(last) != n * width:
        raise InputFileError(
            f"{path} is truncated: its last line ends in {last.split()[-1]!r}, which does not "
            f"fill the {width}-character numbers of its format {fmt.strip()}; re-export or copy "
            "the file again"
        )


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


#: Fewest points a FID may hold: an MRS FID has hundreds to thousands, and the checks of
#: :mod:`scaloquant.signal.quality` and the fit's window need more than a handful (2 or 3 points
#: failed deep in the quality figures; 8 and 64 leave 2 and 17 points in the fit's 0.2-4.2 ppm
#: window at 3 T and 2 kHz, which the fit refuses). Fewer is a file cut short or a NIfTI whose
#: spectral axis is not its 4th dimension.
MIN_FID_POINTS = 16


def require_points(n_points: int, path: Path, shape: tuple[int, ...] | None = None) -> None:
    """Refuse a FID of fewer than :data:`MIN_FID_POINTS` points, naming the file (and, for
    NIfTI-MRS, ``shape``: its spectral axis is the 4th)."""
    if n_points >= MIN_FID_POINTS:
        return
    where = (
        f" (image shape {shape}: NIfTI-MRS keeps each FID along the 4th dimension; was the file "
        "written with another axis order? convert it again with spec2nii)"
        if shape is not None
        else " (is the file cut short?)"
    )
    raise InvalidDataError(
        f"{path} holds {n_points} point(s) per FID; an MRS FID has hundreds or thousands, and "
        f"fewer than {MIN_FID_POINTS} hold no spectrum to quantify{where}"
    )


V = TypeVar("V")


def unique_keys(pairs: Iterable[tuple[str, V]], path: Path, twice: str) -> dict[str, V]:
    """The header's ``(key, value)`` pairs as a dict; a key given twice with two values is
    refused with ``twice`` (a phrase with ``{key}``: ``"header {key} is given twice"``): which
    one the writer meant is unknown, and a reader that takes the last (Fortran's namelists, JSON
    readers) silently changes a dwell time or frequency (an LCModel ``HZPPPM`` given twice: a
    plausible spectrum on another field's axis). The same value twice is taken."""
    fields: dict[str, V] = {}
    for key, value in pairs:
        if key in fields and fields[key] != value:
            raise InputFileError(
                f"{path}: {twice.format(key=key)}, as {fields[key]!r} and {value!r}; fix the "
                "header (keep the right one)"
            )
        fields[key] = value
    return fields


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


#: Above any NMR magnet (1.2 GHz for 1H, 28 T): a larger frequency is not in MHz (in Hz?).
MAX_PLAUSIBLE_FREQ_MHZ = 2000.0
#: Above this a dwell time is not in seconds (ms as s?): 10 ms is a 100 Hz spectral width,
#: where MRS acquisitions have 500 Hz (31P, 13C at low field) and more.
MAX_PLAUSIBLE_DWELL_S = 0.01
#: Below this a dwell time is not in seconds either (a jMRUI interval in s read as ms, µs as
#: ms): 1 µs is a 1 MHz spectral width, 20 times the widest of MRS (50 kHz).
MIN_PLAUSIBLE_DWELL_S = 1e-6


def implausible_grid_value(key: str, value: float) -> str | None:
    """Why ``value`` is not a ``dwell_time_s`` in s or a ``spectrometer_freq_mhz`` in MHz (or a
    ``ppm_reference`` not finite), as a
    clause that ends its sentence (``"a 4 Hz spectral width, not an MRS acquisition's: is it in
    ms?"``), else None.

    One rule for the values a file records (:func:`require_grid`) and those a caller gives
    (``scaloquant.io.dispatch``): a value in the wrong unit gives a spectrum on a wrong axis,
    whose later checks fail with messages that do not name the cause, or, where the basis is
    rescaled to it, a plausible wrong answer.
    """
    if key == "ppm_reference":
        return None if math.isfinite(value) else "not a finite number;"
    if not math.isfinite(value) or value <= 0:
        return "not a positive number;"
    if key == "spectrometer_freq_mhz" and value >= MAX_PLAUSIBLE_FREQ_MHZ:
        return "above any magnet's (1H: about 123.2 or 127.8 at 3 T, 297.2 at 7 T): is it in Hz?"
    if key == "dwell_time_s" and value >= MAX_PLAUSIBLE_DWELL_S:
        return f"a {1 / value:.3g} Hz spectral width, not an MRS acquisition's: is it in ms?"
    if key == "dwell_time_s" and value < MIN_PLAUSIBLE_DWELL_S:
        return (
            f"a {1 / value:.3g} Hz spectral width, not an MRS acquisition's: is it in another unit?"
        )
    return None


def require_grid(
    dwell_time_s: float | None,
    spectrometer_freq_mhz: float | None,
    path: Path,
    recorded: Mapping[str, float] | None = None,
) -> tuple[float, float]:
    """Both values as floats, or :class:`MissingMetadataError` naming the flag that gives one.

    A value not given (None) is taken from ``recorded`` (:func:`recorded_grid`, what the file
    states) where it holds one: the caller's value overrides the file's. A recorded value that
    is not one in its unit (:func:`implausible_grid_value`: a header's dwell time in ms, its
    frequency in Hz, a zero) raises :class:`InvalidDataError` naming the file and the flag.
    """
    if recorded:
        if dwell_time_s is None:
            dwell_time_s = plausible_recorded(recorded, "dwell_time_s", path)
        if spectrometer_freq_mhz is None:
            spectrometer_freq_mhz = plausible_recorded(recorded, "spectrometer_freq_mhz", path)
    given = {"dwell_time_s": dwell_time_s, "spectrometer_freq_mhz": spectrometer_freq_mhz}
    keywords = tuple(key for key, value in given.items() if value is None)
    if keywords:
        # both at once where both are missing (an LCModel .RAW without $SEQPAR): naming one
        # sent the user back for the other in a second run (session 34, `audit34`)
        whats = tuple(ACQUISITION_VALUES[key].words for key in keywords)
        flags = [ACQUISITION_VALUES[key].flag for key in keywords]
        raise MissingMetadataError(
            f"{path} does not record the {' or the '.join(whats)}; pass {' and '.join(flags)}",
            path=path,
            missing=whats,
            keywords=keywords,
        )
    return float(dwell_time_s), float(spectrometer_freq_mhz)


def plausible_recorded(recorded: Mapping[str, float], key: str, path: Path) -> float | None:
    """``recorded[key]`` (None where absent), refused with :class:`InvalidDataError` naming the
    file and the flag where it is no value in its unit (:func:`implausible_grid_value`)."""
    value = recorded.get(key)
    why = None if value is None else implausible_grid_value(key, value)
    if why is None:
        return value
    words, unit, flag, _ = ACQUISITION_VALUES[key]
    raise InvalidDataError(
        f"{path} records a {words} of {value:g} {unit}, {why} fix the file's header, or give the "
        f"{words} with {flag} and --override-header"
    )


def recorded_grid(**values: float | None) -> dict[str, float]:
    """The acquisition values a file itself records (``dwell_time_s``, ``spectrometer_freq_mhz``,
    ``ppm_reference``), for ``provenance["recorded"]``; missing ones (None) are left out.

    :func:`scaloquant.io.read_fid` compares them with the values the caller gives: a file's own
    value wins, and one contradicting it is refused unless ``override_header``.
    """
    return {k: float(v) for k, v in values.items() if v is not None}


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
