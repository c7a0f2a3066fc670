"""Pick the reader of a file or folder by its extension and, where that is ambiguous, content.

FIDs: ``.nii`` / ``.nii.gz`` (NIfTI-MRS), ``.raw`` / ``.h2o`` (LCModel), ``.txt`` (jMRUI when
its first line says so, else plain text); any other file is sniffed for a jMRUI or LCModel
header. Basis sets: ``.basis`` (LCModel), ``.npz`` (scaloquant), a folder of FSL-MRS ``.json``
files, or a folder of FID files (``.raw``, then ``.txt``) named after their metabolites.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, IncompatibleDataError, InputFileError
from ..types import FID, BasisSet
from ._common import read_text
from .fsl import read_fsl_basis
from .jmrui import MAGIC as JMRUI_MAGIC
from .jmrui import read_jmrui_txt
from .lcmodel import read_lcmodel_basis, read_lcmodel_raw
from .nifti import is_nifti_path, read_nifti_mrs
from .npz import read_basis_npz
from .text import read_text_fid

_OVERRIDES = ("dwell_time_s", "spectrometer_freq_mhz", "ppm_reference")
_FID_HELP = ".nii, .nii.gz, .RAW, .H2O or .txt (jMRUI or plain text)"
_BASIS_HELP = "a .BASIS or .npz file, or a folder of FSL-MRS .json, LCModel .RAW or .txt files"


def _overrides(given: dict[str, Any]) -> dict[str, float]:
    unknown = sorted(set(given) - set(_OVERRIDES))
    if unknown:
        raise ConfigError(f"unknown override(s) {', '.join(unknown)}; use {', '.join(_OVERRIDES)}")
    return {k: float(v) for k, v in given.items() if v is not None}


def _suffix(path: Path) -> str:
    return (
        ".nii.gz"
        if is_nifti_path(path) and path.name.lower().endswith(".gz")
        else path.suffix.lower()
    )


def _txt_reader(path: Path) -> Callable[..., FID]:
    first = read_text(path).lstrip()[:100]
    return read_jmrui_txt if first.startswith(JMRUI_MAGIC) else read_text_fid


def _fid_reader(path: Path) -> Callable[..., FID]:
    suffix = _suffix(path)
    if is_nifti_path(path):
        return read_nifti_mrs
    if suffix in (".raw", ".h2o"):
        return read_lcmodel_raw
    if suffix == ".txt":
        return _txt_reader(path)
    if suffix in (".basis", ".npz"):
        raise InputFileError(
            f"{path} is a basis set, not a FID; read it with read_basis / 'scaloquant basis info'"
        )
    head = read_text(path).lstrip()[:4000]
    if head.startswith(JMRUI_MAGIC):
        return read_jmrui_txt
    if "$NMID" in head.upper() or "&NMID" in head.upper():
        return read_lcmodel_raw
    raise InputFileError(
        f"{path}: unknown file format {suffix or '(no extension)'}; scaloquant reads {_FID_HELP}"
    )


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path} does not exist; check the path")
    return path


def read_fid(path: str | os.PathLike, *, conjugate: bool = False, **overrides: float | None) -> FID:
    """Read a FID file, picking the reader by extension and content.

    ``overrides``: ``dwell_time_s``, ``spectrometer_freq_mhz``, ``ppm_reference`` (``None``
    values are ignored); formats lacking a value need it, and say which flag gives it.
    ``conjugate``: take the complex conjugate of what the format's reader gives, for a file
    written in the other orientation than its format defines (its spectrum mirrored about the
    reference); recorded as ``provenance["conjugated"]``.
    """
    given = _overrides(overrides)
    path = _existing(path)
    if path.is_dir():
        raise InputFileError(f"{path} is a folder; give a FID file ({_FID_HELP})")
    fid = _fid_reader(path)(path, **given)
    if conjugate:
        fid = fid.with_samples(np.conj(fid.samples), conjugated=True)
    return fid


def _basis_from_fid_files(files: list[Path], source: Path, kind: str, given: dict) -> BasisSet:
    """One basis metabolite per file, named after the file; all must share one grid."""
    fids = [_fid_reader(f)(f, **given) for f in files]
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


def _with_grid(basis: BasisSet, given: dict[str, float]) -> BasisSet:
    return replace(basis, **given) if given else basis


def read_basis(path: str | os.PathLike, **overrides: float | None) -> BasisSet:
    """Read a basis set: a file (``.BASIS``, ``.npz``, or one FID file) or a folder.

    A folder of FSL-MRS ``.json`` files is read as FSL-MRS; otherwise its ``.RAW`` files, or
    failing those its ``.txt`` files (jMRUI or plain text), one metabolite each, named after
    the file, in sorted order. ``overrides`` as in :func:`read_fid`.
    """
    given = _overrides(overrides)
    path = _existing(path)
    if path.is_dir():
        if any(path.glob("*.json")):
            return read_fsl_basis(path, **given)
        for suffix, kind in ((".raw", "lcmodel-raw-folder"), (".txt", "txt-folder")):
            files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() == suffix)
            if files:
                return _basis_from_fid_files(files, path, kind, given)
        raise InputFileError(f"{path} holds no basis files; give {_BASIS_HELP}")
    suffix = _suffix(path)
    if suffix == ".basis":
        return read_lcmodel_basis(path, **given)
    if suffix == ".npz":
        return _with_grid(read_basis_npz(path), given)
    if is_nifti_path(path):
        raise InputFileError(
            f"{path}: NIfTI-MRS has no standard place for metabolite names, so it is not read as "
            f"a basis; give {_BASIS_HELP}"
        )
    return _basis_from_fid_files([path], path, "single-fid", given)
