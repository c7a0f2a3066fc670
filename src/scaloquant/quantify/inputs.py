"""The spectra to quantify: read each input file, find its water reference, label its spectra.

Every format goes through :func:`scaloquant.io.read_fid`. A water reference is, in this order:
the file given for the input (``--water``), the LCModel ``.H2O`` beside a ``.RAW`` (same stem),
or the water columns of a 4-column text file (the ISMRM 2016 challenge layout).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, IncompatibleDataError
from ..io import read_fid, read_text_fid
from ..types import FID

#: Leading axes of NIfTI-MRS samples that are space; the rest (DIM_COIL, DIM_DYN...) are "extra".
N_SPATIAL = 3


@dataclass(frozen=True)
class SpectraInput:
    """One input file, read.

    Attributes
    ----------
    path : the file.
    fid : its spectra, samples ``(..., n_points)`` (NIfTI-MRS: ``(x, y, z, *extra, n_points)``).
    water : its water reference (samples ``(n_points_w,)`` or, for NIfTI-MRS, ``(x, y, z,
        n_points_w)`` after averaging the water's extra dimensions), or None.
    water_path : where the water reference came from.
    affine : the NIfTI-MRS voxel-to-world matrix ``(4, 4)``; None for other formats.
    dim_tags : NIfTI-MRS tags of the extra dimensions (``()`` for other formats).
    """

    path: Path
    fid: FID
    water: FID | None
    water_path: Path | None
    affine: np.ndarray | None
    dim_tags: tuple[str, ...]

    @property
    def is_image(self) -> bool:
        """NIfTI-MRS: spectra laid out on a voxel grid (maps can be written)."""
        return self.affine is not None

    @property
    def n_spectra(self) -> int:
        return int(np.prod(self.fid.batch_shape, dtype=int))

    def labels(self) -> list[str]:
        """One label per spectrum in C order: voxel ``"x,y,z"`` plus extra-dimension indices
        for NIfTI-MRS, the index for other formats."""
        shape = self.fid.batch_shape
        if not shape:
            return ["0"]
        return [",".join(str(i) for i in index) for index in np.ndindex(*shape)]

    def checks(self) -> tuple[str, ...]:
        """What the reader noticed (e.g. a file of an old scaloquant version) and, for 1H data,
        whether any spectrum looks mirrored (:func:`scaloquant.signal.quality.mirror_ratio`);
        one sentence each."""
        from ..signal.quality import looks_mirrored, mirror_ratio, mirror_warning

        found = [str(w) for w in self.fid.provenance.get("warnings") or ()]
        if self.fid.nucleus != "1H":
            return tuple(found)
        fid = self.fid
        ratios = np.atleast_1d(
            mirror_ratio(
                fid.samples, fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference
            )
        ).ravel()
        flagged = np.flatnonzero(looks_mirrored(ratios))
        if flagged.size:
            warning = mirror_warning(float(np.median(ratios[flagged])))
            if ratios.size > 1:
                labels = self.labels()
                which = ", ".join(labels[i] for i in flagged[:5])
                more = f" and {flagged.size - 5} more" if flagged.size > 5 else ""
                warning = f"{flagged.size} of {ratios.size} spectra ({which}{more}): {warning}"
            found.append(warning)
        return tuple(found)

    def water_areas_source(self) -> np.ndarray | None:
        """Water samples broadcastable to the spectra: ``(..., n_points_w)`` or None."""
        if self.water is None:
            return None
        samples = self.water.samples
        if self.is_image:
            # (x, y, z, n) against data (x, y, z, *extra, n): one water per voxel
            n_extra = len(self.fid.batch_shape) - N_SPATIAL
            samples = samples.reshape(*samples.shape[:-1], *([1] * n_extra), samples.shape[-1])
        return samples


def _nifti_affine(path: Path) -> np.ndarray:
    import nibabel

    return np.asarray(nibabel.load(str(path)).affine, dtype=np.float64)


def _conjugated(fid: FID, conjugate: bool) -> FID:
    return fid.with_samples(np.conj(fid.samples), conjugated=True) if conjugate else fid


def read_water(path: Path, overrides: Mapping[str, float], conjugate: bool = False) -> FID:
    """A water reference file; of a 4-column text file, its water columns."""
    fid = read_fid(path, conjugate=conjugate, **overrides)
    if fid.provenance.get("format") == "text" and fid.provenance.get("n_columns") == 4:
        return _conjugated(read_text_fid(path, signal="water", **overrides), conjugate)
    return fid


def _auto_water(
    path: Path, fid: FID, overrides: Mapping[str, float], conjugate: bool
) -> tuple[FID, Path] | None:
    fmt = fid.provenance.get("format")
    if fmt == "lcmodel-raw" and path.suffix.lower() == ".raw":
        for suffix in (".H2O", ".h2o"):
            candidate = path.with_suffix(suffix)
            if candidate.is_file():
                return read_fid(candidate, conjugate=conjugate, **overrides), candidate
    if fmt == "text" and fid.provenance.get("n_columns") == 4:
        water = read_text_fid(path, signal="water", **overrides)
        return _conjugated(water, conjugate), path
    return None


def _water_for_image(water: FID, fid: FID, water_path: Path) -> FID:
    """Average the water's extra dimensions (transients, coils) and check its voxel grid."""
    spatial = fid.batch_shape[:N_SPATIAL]
    samples = water.samples
    if samples.ndim - 1 > N_SPATIAL:
        samples = samples.reshape(*samples.shape[:N_SPATIAL], -1, samples.shape[-1]).mean(axis=-2)
    if samples.ndim == 1:
        samples = samples.reshape(1, 1, 1, -1)
    if samples.shape[:N_SPATIAL] not in ((1, 1, 1), spatial):
        raise IncompatibleDataError(
            f"the water reference {water_path} has voxel grid {samples.shape[:N_SPATIAL]} but "
            f"the data {spatial}; give a water reference of the same grid or a single voxel"
        )
    return water.with_samples(samples)


def read_inputs(
    paths: Sequence[str | os.PathLike],
    *,
    water: Sequence[str | os.PathLike] = (),
    overrides: Mapping[str, float] | None = None,
    conjugate: bool = False,
) -> list[SpectraInput]:
    """Read every input file and its water reference.

    Parameters
    ----------
    paths : input files (any format :func:`scaloquant.io.read_fid` reads).
    water : no file (automatic, see the module docstring), one file for all inputs, or one per
        input in the same order.
    overrides : ``dwell_time_s``, ``spectrometer_freq_mhz``, ``ppm_reference`` for formats that
        lack them (applied to the water files too).
    conjugate : read every input and water file in the other orientation than its format
        defines (``--conjugate``; see :func:`scaloquant.io.read_fid`).

    Raises
    ------
    ConfigError
        No inputs, or a number of water files that is neither 0, 1 nor one per input.
    InputFileError, MissingMetadataError, InvalidDataError
        From the readers (one line naming the file and what to do).
    """
    overrides = dict(overrides or {})
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("give at least one input file")
    water_paths = [Path(w) for w in water]
    if len(water_paths) not in (0, 1, len(paths)):
        raise ConfigError(
            f"{len(water_paths)} water references for {len(paths)} inputs; give one for all "
            "inputs or one per input, in the same order"
        )
    out = []
    for i, path in enumerate(paths):
        fid = read_fid(path, conjugate=conjugate, **overrides)
        found: tuple[FID, Path] | None
        if water_paths:
            w_path = water_paths[0] if len(water_paths) == 1 else water_paths[i]
            found = read_water(w_path, overrides, conjugate), w_path
        else:
            found = _auto_water(path, fid, overrides, conjugate)
        is_image = fid.provenance.get("format") == "nifti-mrs"
        water_fid, water_path = found if found else (None, None)
        if water_fid is not None and is_image:
            water_fid = _water_for_image(water_fid, fid, water_path)
        elif water_fid is not None and water_fid.samples.ndim > 1:
            water_fid = water_fid.with_samples(
                water_fid.samples.reshape(-1, water_fid.n_points).mean(axis=0)
            )
        out.append(
            SpectraInput(
                path=path,
                fid=fid,
                water=water_fid,
                water_path=water_path,
                affine=_nifti_affine(path) if is_image else None,
                dim_tags=tuple(fid.provenance.get("dim_tags") or ()) if is_image else (),
            )
        )
    return out
