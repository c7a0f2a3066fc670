"""Pick the reader of a file or folder from the table of formats, :data:`scaloquant.formats.FORMATS`:
by its suffix and, where several formats share one (``.txt``: jMRUI or plain text) or the suffix
is unknown, by the markers its first lines hold.

FIDs: the table's ``fid`` rows. A scanner's own file (Siemens RDA, DICOM or twix, Philips SDAT/SPAR
or data/list, GE P-file) is refused with the spec2nii command that converts it to NIfTI-MRS.
Basis sets: a file of a ``"file"`` row (``.BASIS``, ``.npz``), a folder of a ``"folder"`` row's
files (FSL-MRS ``.json``), or a folder of FID files of the ``"fid-files"`` rows (``.RAW``, then
``.txt``) named after their metabolites.
"""

from __future__ import annotations

import importlib
import os
import shlex
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, IncompatibleDataError, InputFileError, InvalidDataError
from ..formats import (
    ACQUISITION_VALUES,
    FID_FORMATS,
    FileFormat,
    basis_formats_text,
    by_content,
    candidates,
    fid_files_formats,
    fid_suffixes_text,
    folder_formats,
    is_simulation_path,
)
from ..paths import require_existing
from ..types import FID, BasisSet
from ._common import (
    implausible_grid_value,
    plausible_recorded,
    read_text,
    require_points,
)
from .nifti import is_nifti_path

#: A given value within these of the file's own is the same value (the file's is kept): header
#: rounding, not a contradiction. NIfTI stores the dwell time as float32 (6e-8 relative); jMRUI
#: headers round the frequency to 5 digits (the ISMRM 2016 files: 1.2322E8 Hz for 123.261703
#: MHz, 3e-4 apart), the 0.1 % that scaloquant.signal.match takes as the same scanner too.
_SAME_RTOL = {"dwell_time_s": 1e-6, "spectrometer_freq_mhz": 1e-3}
_SAME_PPM_ATOL = 1e-4
_FID_HELP = fid_suffixes_text()
#: Scanner formats that scaloquant does not read: spec2nii, the field's converter (FSL-MRS asks
#: for the same step), writes them as NIfTI-MRS. Suffix -> (what the file is, spec2nii's
#: subcommand, the files it takes: ``file`` is the given one, a suffix its partner beside it).
_SCANNER_FORMATS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    ".rda": ("a Siemens RDA file", "rda", ("file",)),
    ".ima": ("a Siemens DICOM file", "dicom", ("file",)),
    ".dcm": ("a DICOM file (Siemens; Philips: spec2nii philips_dcm)", "dicom", ("file",)),
    ".dat": ("a Siemens twix file", "twix -e image", ("file",)),
    ".sdat": ("a Philips SDAT file", "philips", ("file", ".spar")),
    ".spar": ("a Philips SPAR header", "philips", (".sdat", "file")),
    ".data": ("a Philips data/list file", "philips_dl", ("file", ".list", ".spar")),
    ".list": ("a Philips data/list header", "philips_dl", (".data", "file", ".spar")),
    ".7": ("a GE P-file", "ge", ("file",)),
}
#: The scanner formats' text headers; their other files are binary (a text ``.dat`` is not twix).
_SCANNER_TEXT_HEADERS = (".spar", ".list")
#: DICOM's magic word, after its 128-byte preamble (for DICOM files without a suffix).
_DICOM_MAGIC = (128, b"DICM")
_BASIS_HELP = basis_formats_text()
#: How many characters of a file its markers are looked for in.
_HEAD_CHARS = 4000


def _overrides(given: dict[str, Any]) -> dict[str, float]:
    unknown = sorted(set(given) - set(ACQUISITION_VALUES))
    if unknown:
        raise ConfigError(
            f"unknown override(s) {', '.join(unknown)}; use {', '.join(ACQUISITION_VALUES)}"
        )
    values = {k: float(v) for k, v in given.items() if v is not None}
    _require_plausible(values)
    return values


def _require_plausible(values: dict[str, float]) -> None:
    """Refuse a given frequency or dwell time in the wrong unit (Hz for MHz, ms for s): one
    within range of both would give a spectrum on a wrong axis, whose checks all fail later
    with messages that do not name the cause (a frequency in Hz: "the water reference does
    not look like water", after 30 s). The rule of the values files record
    (:func:`~scaloquant.io._common.implausible_grid_value`)."""
    for key in ("spectrometer_freq_mhz", "dwell_time_s"):
        value = values.get(key)
        why = None if value is None else implausible_grid_value(key, value)
        if why is not None:
            words, unit, flag, _ = ACQUISITION_VALUES[key]
            example = " (e.g. 0.00025 for 4 kHz)" if key == "dwell_time_s" else ""
            raise ConfigError(f"{flag} {value:g} is {why} give the {words} in {unit}{example}")


def _agrees(key: str, given: float, recorded: float) -> bool:
    if key == "ppm_reference":
        return abs(given - recorded) <= _SAME_PPM_ATOL
    return abs(given - recorded) <= _SAME_RTOL[key] * abs(recorded)


def reconcile_header(
    obj: FID | BasisSet, given: dict[str, float], *, override_header: bool, path: Path
) -> FID | BasisSet:
    """Apply the caller's acquisition values to what a reader returned, the file's own winning.

    ``obj`` was read with ``given`` applied; ``obj.provenance["recorded"]`` holds the values the
    file itself records. A given value equal to the recorded one (within header rounding) gives
    way to the file's; one that contradicts it is refused unless ``override_header``, and an
    override is recorded in ``provenance["header_overrides"]`` (``{key: {"recorded": v,
    "used": v}}``) and as a warning. Values the file does not record are taken as given.

    Raises
    ------
    ConfigError
        A given value contradicts the file's own and ``override_header`` is false.
    """
    recorded = dict(obj.provenance.get("recorded") or {})
    keep: dict[str, float] = {}
    overridden: dict[str, dict[str, float]] = {}
    for key, value in given.items():
        if key not in recorded:
            continue
        if _agrees(key, value, recorded[key]):
            keep[key] = recorded[key]
            continue
        words, unit, flag, _ = ACQUISITION_VALUES[key]
        if not override_header:
            raise ConfigError(
                f"{path} records a {words} of {recorded[key]:.10g} {unit} but {flag} gives "
                f"{value:.10g} {unit}; drop {flag} to use the file's value (the flag is for files "
                "that do not record it) or add --override-header to replace it"
            )
        overridden[key] = {"recorded": recorded[key], "used": value}
    if not keep and not overridden:
        return obj
    provenance = dict(obj.provenance)
    if overridden:
        provenance["header_overrides"] = overridden
        provenance["warnings"] = [
            *(provenance.get("warnings") or ()),
            *(
                f"--override-header: {ACQUISITION_VALUES[k].words} {v['used']:.10g} "
                f"{ACQUISITION_VALUES[k].unit} used instead of the {v['recorded']:.10g} "
                f"{ACQUISITION_VALUES[k].unit} the file records"
                for k, v in overridden.items()
            ),
        ]
    return replace(obj, **keep, provenance=provenance)


def _suffix(path: Path) -> str:
    return (
        ".nii.gz"
        if is_nifti_path(path) and path.name.lower().endswith(".gz")
        else path.suffix.lower()
    )


def reader_of(fmt: FileFormat) -> Callable[..., Any]:
    """The function of ``scaloquant.io`` that reads a file (or folder) of ``fmt``: the table
    names it, so a new format needs no line here."""
    return getattr(importlib.import_module(f".{fmt.module}", __package__), fmt.reader)


def _head(path: Path) -> str:
    return read_text(path).lstrip()[:_HEAD_CHARS]


def _fid_reader(path: Path) -> Callable[..., FID]:
    suffix = _suffix(path)
    known = candidates(suffix)
    fids = tuple(f for f in known if f.fid)
    if fids:
        fmt = fids[0] if len(fids) == 1 else by_content(fids, _head(path))
        if fmt is not None:
            return reader_of(fmt)
    if any(f.basis == "file" for f in known):
        raise InputFileError(
            f"{path} is a basis set, not a FID; read it with read_basis / 'scaloquant basis info'"
        )
    if is_simulation_path(path):  # read as text, it was 'a binary file, not text'
        raise InputFileError(
            f"{path} is an HDF5 file (scaloquant simulate's signals with their truth), not a "
            f"FID file; scaloquant reads {_FID_HELP}; evaluate a simulation file with "
            "scaloquant evaluate"
        )
    scanner = _scanner_format(path, suffix)
    if scanner is not None:
        raise InputFileError(scanner)
    head = _head(path)
    marked = next((f for f in FID_FORMATS if f.markers and f.marked(head)), None)
    if marked is not None:
        return reader_of(marked)
    raise InputFileError(
        f"{path}: unknown file format {suffix or '(no extension)'}; scaloquant reads {_FID_HELP}"
    )


def _scanner_format(path: Path, suffix: str) -> str | None:
    """For a scanner's own file (:data:`_SCANNER_FORMATS`, or DICOM by its magic word), the
    one-line error that names it and gives the spec2nii command that converts it; else None."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    start, magic = _DICOM_MAGIC
    if head[start : start + len(magic)] == magic:
        known = _SCANNER_FORMATS[".ima" if suffix == ".ima" else ".dcm"]
    elif suffix in _SCANNER_TEXT_HEADERS or (suffix in _SCANNER_FORMATS and b"\x00" in head):
        known = _SCANNER_FORMATS[suffix]
    else:  # a text file of another format under a scanner's suffix (e.g. a .dat of numbers)
        return None
    what, subcommand, takes = known
    given = [path if t == "file" else _partner(path, t) for t in takes]
    files = " ".join(shlex.quote(str(f)) for f in given)
    missing = [str(f) for f in given if not f.exists()]
    stem = path.name.split(".")[0] or "converted"
    return (
        f"{path} is {what}, which scaloquant does not read: convert it to NIfTI-MRS with spec2nii "
        f"(pip install spec2nii): spec2nii {subcommand} -f {shlex.quote(stem)} -o nifti {files}; "
        f"then give nifti/{stem}.nii.gz"
        + (f" ({', '.join(missing)} is missing: spec2nii needs it beside it)" if missing else "")
    )


def _partner(path: Path, suffix: str) -> Path:
    """The file beside ``path`` with its stem and ``suffix`` in any case (Philips pairs are
    ``.SDAT``/``.SPAR`` or lower case), or that name in ``path``'s case if there is none."""
    want = (path.stem + suffix).lower()
    try:
        for other in path.parent.iterdir():
            if other.name.lower() == want:
                return other
    except OSError:
        pass
    upper = path.suffix.isupper()
    return path.with_suffix(suffix.upper() if upper else suffix)


def read_fid(
    path: str | os.PathLike,
    *,
    conjugate: bool = False,
    override_header: bool = False,
    **overrides: float | None,
) -> FID:
    """Read a FID file, picking the reader by extension and content.

    ``overrides``: ``dwell_time_s``, ``spectrometer_freq_mhz``, ``ppm_reference`` (``None``
    values are ignored); formats lacking a value need it, and say which flag gives it. A value
    the file records wins: a given one that contradicts it raises
    :class:`~scaloquant.errors.ConfigError` unless ``override_header`` (see
    :func:`reconcile_header`).
    ``conjugate``: take the complex conjugate of what the format's reader gives, for a file
    written in the other orientation than its format defines (its spectrum mirrored about the
    reference); recorded as ``provenance["conjugated"]``.
    """
    given = _overrides(overrides)
    path = require_existing(path)
    if path.is_dir():
        raise InputFileError(f"{path} is a folder; give a FID file ({_FID_HELP})")
    fid = _fid_reader(path)(path, **given)
    require_points(fid.n_points, path)
    fid = reconcile_header(fid, given, override_header=override_header, path=path)
    return conjugated(fid) if conjugate else fid


def conjugated(fid: FID) -> FID:
    """``fid`` read the other way than its format defines (``--conjugate``): the complex
    conjugate of its samples, recorded as ``provenance["conjugated"]``."""
    return fid.with_samples(np.conj(fid.samples), conjugated=True)


def _basis_from_fid_files(
    files: list[Path], source: Path, kind: str, given: dict, override_header: bool
) -> BasisSet:
    """One basis metabolite per file, named after the file; all must share one grid."""
    fids = [
        reconcile_header(_fid_reader(f)(f, **given), given, override_header=override_header, path=f)
        for f in files
    ]
    first = fids[0]
    for fid, f in zip(fids, files, strict=True):
        grid = (fid.samples.shape, fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
        ref = (
            first.samples.shape,
            first.dwell_time_s,
            first.spectrometer_freq_mhz,
            first.ppm_reference,
        )
        if grid[0] != ref[0] or not np.allclose(grid[1:], ref[1:], rtol=1e-6):
            raise IncompatibleDataError(
                f"{f.name} (shape {grid[0]}, {grid[1]:g} s, {grid[2]:g} MHz) does not match "
                f"{files[0].name} (shape {ref[0]}, {ref[1]:g} s, {ref[2]:g} MHz); a basis needs "
                "one grid"
            )
        if fid.samples.ndim != 1:
            raise IncompatibleDataError(
                f"{f.name} holds {fid.samples.shape[:-1]} FIDs; a basis file must hold one"
            )
    return BasisSet(
        names=tuple(fid.provenance["name"] for fid in fids),
        fids=np.array([fid.samples for fid in fids]),
        dwell_time_s=first.dwell_time_s,
        spectrometer_freq_mhz=first.spectrometer_freq_mhz,
        ppm_reference=first.ppm_reference,
        nucleus=first.nucleus,
        provenance={"source": str(source), "format": kind, "files": [f.name for f in files]},
    )


def _basis_file(fmt: FileFormat, path: Path, given: dict[str, float]) -> BasisSet:
    """A basis file of ``fmt``; one that records its whole grid (``.npz``) is read as it is and
    ``given`` values are applied over it, the file's kept as ``provenance["recorded"]``."""
    if not fmt.whole_grid:
        return reader_of(fmt)(path, **given)
    basis = reader_of(fmt)(path)
    recorded = {k: float(getattr(basis, k)) for k in ACQUISITION_VALUES}
    for key in (k for k in ACQUISITION_VALUES if k not in given):
        plausible_recorded(recorded, key, path)
    return replace(basis, **given, provenance={**basis.provenance, "recorded": recorded})


def read_basis(
    path: str | os.PathLike, *, override_header: bool = False, **overrides: float | None
) -> BasisSet:
    """Read a basis set: a file (``.BASIS``, ``.npz``, or one FID file) or a folder.

    A folder of FSL-MRS ``.json`` files is read as FSL-MRS; otherwise its ``.RAW`` files, or
    failing those its ``.txt`` files (jMRUI or plain text), one metabolite each, named after
    the file, in sorted order. ``overrides`` and ``override_header`` as in :func:`read_fid`.
    """
    given = _overrides(overrides)
    path = require_existing(path)
    basis = _read_basis(path, given, override_header)
    silent = [n for n, row in zip(basis.names, basis.fids, strict=True) if not np.any(row)]
    if silent:
        # an all-zero basis signal has no spectrum to fit: the fit gave it a plausible 0 and
        # every metabolite a NaN CRLB (a singular Fisher matrix), simulate wrote signals
        # without it and 'basis info' put its main peak at the window's edge
        raise InvalidDataError(
            f"{path}: {', '.join(silent)} {'has' if len(silent) == 1 else 'have'} no signal "
            "(every sample is zero); check the file, or leave "
            f"{'that metabolite' if len(silent) == 1 else 'them'} out"
        )
    return reconcile_header(basis, given, override_header=override_header, path=path)


def _read_basis(path: Path, given: dict[str, float], override_header: bool) -> BasisSet:
    if path.is_dir():
        return _read_basis_folder(path, given, override_header)
    suffix = _suffix(path)
    known = candidates(suffix)
    whole = next((f for f in known if f.basis == "file"), None)
    if whole is not None:
        return _basis_file(whole, path, given)
    refused = next((f for f in known if f.fid and f.not_basis), None)
    if refused is not None:
        raise InputFileError(
            f"{path}: {refused.not_basis}, so it is not read as a basis; give {_BASIS_HELP}"
        )
    return _basis_from_fid_files([path], path, "single-fid", given, override_header)


def _read_basis_folder(path: Path, given: dict[str, float], override_header: bool) -> BasisSet:
    """A folder of a ``"folder"`` format's files, else of one ``"fid-files"`` format's FID files
    (the table's first whose first suffix the folder holds: ``.RAW`` before ``.txt``; an
    LCModel folder's water ``.H2O`` files are not metabolites)."""
    files = sorted(f for f in path.iterdir() if f.is_file())
    for fmt in (*folder_formats(), *fid_files_formats()):
        mine = [f for f in files if _suffix(f) == fmt.suffixes[0].lower()]
        if mine and fmt.basis == "folder":
            return reader_of(fmt)(path, **given)
        if mine:
            return _basis_from_fid_files(mine, path, fmt.folder_name, given, override_header)
    inside = [f.name for f in files if any(b.basis == "file" for b in candidates(_suffix(f)))]
    if inside:  # a folder holding a basis file (Osprey's, LCModel's): name it
        raise InputFileError(
            f"{path} is a folder holding {', '.join(inside[:3])}; give that file as the basis "
            f"({path / inside[0]})"
        )
    raise InputFileError(f"{path} holds no basis files; give {_BASIS_HELP}")
