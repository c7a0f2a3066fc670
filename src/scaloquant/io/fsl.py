"""FSL-MRS basis folders: one JSON file per metabolite.

Format
------
Each ``<name>.json`` holds ``{"basis": {"basis_re": [...], "basis_im": [...], "basis_dwell": s,
"basis_centre": MHz, "basis_width": FWHM in Hz, "basis_name": name}, "meta": {...}}`` and, for
simulated metabolites, the spin system and density matrix, which are not needed here. FSL-MRS
reads the ``*.json`` files of a folder in sorted file-name order; so does this module.

Orientation
-----------
FSL-MRS's internal orientation is the internal one of :mod:`scaloquant.signal.axes`, and it
conjugates when it writes these files (``fsl_io.write_fsl_basis_file`` stores
``basis.conj().real`` / ``.imag``) and again when it reads them (``readFSLBasisFiles`` returns
``np.array(basis).conj()``). The JSON samples are therefore in the NIfTI-MRS / LCModel on-disk
orientation, and this module conjugates on read and on write. (scaloquant 0.1 did not, and read
FSL-MRS basis folders mirrored.) The files record no ppm reference; FSL-MRS takes 4.65 ppm for
1H, as does this reader by default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import IncompatibleDataError, InputFileError, OutputExistsError
from ..paths import require_dir
from ..signal import axes
from ..types import BasisSet
from ._common import plausible_recorded, read_text, require_finite
from .atomic import atomic_path

_REQUIRED = ("basis_re", "basis_im", "basis_dwell", "basis_centre")


def _read_entry(path: Path) -> tuple[str, np.ndarray, float, float, float | None]:
    """(name, fid, dwell_time_s, spectrometer_freq_mhz, fwhm_hz) of one FSL-MRS JSON file."""
    try:
        content = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise InputFileError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from None
    basis = content.get("basis") if isinstance(content, dict) else None
    missing = [k for k in _REQUIRED if not isinstance(basis, dict) or k not in basis]
    if missing:
        raise InputFileError(
            f"{path} is not an FSL-MRS basis file: it lacks basis.{', basis.'.join(missing)}"
        )
    try:
        re_part = np.asarray(basis["basis_re"], dtype=np.float64)
        im_part = np.asarray(basis["basis_im"], dtype=np.float64)
        dwell_time_s, freq_mhz = float(basis["basis_dwell"]), float(basis["basis_centre"])
        width = basis.get("basis_width")
        fwhm_hz = None if width is None else float(width)
    except (TypeError, ValueError):
        raise InputFileError(f"{path}: basis values are not numbers; the file is garbled") from None
    if re_part.ndim != 1 or re_part.shape != im_part.shape:
        raise InputFileError(
            f"{path}: basis_re and basis_im must be lists of equal length, got {re_part.shape} "
            f"and {im_part.shape}"
        )
    name = str(basis.get("basis_name") or path.stem)
    # FSL-MRS file orientation (= NIfTI-MRS on disk) -> internal orientation.
    fid = np.conj(require_finite(re_part + 1j * im_part, path))
    return name, fid, dwell_time_s, freq_mhz, fwhm_hz


def read_fsl_basis(
    folder: str | os.PathLike,
    *,
    dwell_time_s: float | None = None,
    spectrometer_freq_mhz: float | None = None,
    ppm_reference: float = axes.DEFAULT_PPM_REFERENCE_1H,
) -> BasisSet:
    """Read an FSL-MRS basis folder.

    Parameters
    ----------
    folder : folder of ``*.json`` basis files.
    dwell_time_s, spectrometer_freq_mhz : override ``basis_dwell`` (s) / ``basis_centre`` (MHz).
    ppm_reference : chemical shift of 0 Hz, ppm.

    Returns
    -------
    BasisSet with ``fids`` of shape ``(n_files, n_points)``, in sorted file-name order;
    ``metadata["fwhm_hz"]`` lists each ``basis_width``. Files that disagree on points, dwell
    time or frequency raise :class:`~scaloquant.errors.IncompatibleDataError`.
    """
    folder = require_dir(folder)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise InputFileError(f"{folder} holds no .json files; it is not an FSL-MRS basis folder")
    entries = [_read_entry(f) for f in files]
    first = entries[0]
    for (_name, fid, dwell, freq, _), path in zip(entries, files, strict=True):
        if (
            fid.size != first[1].size
            or not np.isclose(dwell, first[2])
            or not np.isclose(freq, first[3])
        ):
            raise IncompatibleDataError(
                f"{path} ({fid.size} points, {dwell:g} s, {freq:g} MHz) does not match "
                f"{files[0].name} ({first[1].size} points, {first[2]:g} s, {first[3]:g} MHz); "
                "one basis folder must share one grid"
            )
    recorded = {"dwell_time_s": first[2], "spectrometer_freq_mhz": first[3]}
    for key, given in (
        ("dwell_time_s", dwell_time_s),
        ("spectrometer_freq_mhz", spectrometer_freq_mhz),
    ):
        if given is None:
            plausible_recorded(recorded, key, files[0])
    return BasisSet(
        names=tuple(e[0] for e in entries),
        fids=np.array([e[1] for e in entries]),
        dwell_time_s=first[2] if dwell_time_s is None else dwell_time_s,
        spectrometer_freq_mhz=first[3] if spectrometer_freq_mhz is None else spectrometer_freq_mhz,
        ppm_reference=ppm_reference,
        metadata={"fwhm_hz": [e[4] for e in entries]},
        provenance={
            "source": str(folder),
            "format": "fsl-mrs-basis",
            "recorded": recorded,
        },
    )


def write_fsl_basis(folder: str | os.PathLike, basis: BasisSet, *, overwrite: bool = False) -> Path:
    """Write ``basis`` as an FSL-MRS basis folder (one ``<name>.json`` per metabolite).

    The folder is created if needed; each file is written atomically and an existing one is
    refused unless ``overwrite`` (checked for all files before any is written).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputFileError(f"{folder} is a file; give a folder for the FSL-MRS basis")
    targets = [folder / f"{name}.json" for name in basis.names]
    existing = [t.name for t in targets if t.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{folder} already holds {', '.join(existing)}; pass --overwrite to replace them"
        )
    widths = list(basis.metadata.get("fwhm_hz") or [])
    if len(widths) != basis.n_metabolites:  # no (usable) line widths recorded
        widths = [None] * basis.n_metabolites
    folder.mkdir(parents=True, exist_ok=True)
    for name, fid, width, target in zip(basis.names, basis.fids, widths, targets, strict=True):
        on_disk = np.conj(fid)  # internal -> FSL-MRS file orientation, as FSL-MRS writes it
        content = {
            "basis": {
                "basis_re": on_disk.real.tolist(),
                "basis_im": on_disk.imag.tolist(),
                "basis_dwell": basis.dwell_time_s,
                "basis_centre": basis.spectrometer_freq_mhz,
                "basis_width": width,
                "basis_name": name,
            },
            "meta": {"SimVersion": f"scaloquant {__version__}"},
        }
        with atomic_path(target, overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(content))
    return folder
