"""NIfTI-MRS files (``.nii`` / ``.nii.gz``), through the ``nifti-mrs`` package.

Format
------
A complex NIfTI-2 (or -1) image of shape ``(x, y, z, n_points, *extra)`` with up to three extra
dimensions (5-7) tagged ``DIM_COIL``, ``DIM_DYN``, ...; the dwell time in ``pixdim[4]``; a JSON
header extension (code 44) with ``SpectrometerFrequency`` (MHz), ``ResonantNucleus``, optional
``SpecFreqChemShift`` / ``RxOffset`` (ppm at the receiver frequency), ``EchoTime``, ...
(https://github.com/wtclarke/mrs_nifti_standard).

Orientation
-----------
The samples *on disk* follow the NIfTI-MRS specification (Appendix A, Levitt's convention): with
``fftshift(fft(fid))`` the chemical shift *decreases* with the index, as in LCModel ``.RAW``
files. The internal orientation of :mod:`scaloquant.signal.axes` (FSL-MRS's internal one) is
their complex conjugate, so this module conjugates on read and on write, explicitly, and nowhere
else. (It is what ``nifti_mrs``'s accessor ``NIFTI_MRS[...]`` and ``gen_nifti_mrs`` do too; the
code conjugates the raw ``image`` itself so that the one conversion is visible here.) Checked
against files of other tools in ``tests/unit/test_io_outside.py``: spec2nii's Philips
conversion equals the LCModel ``.RAW`` of the same spectrum, and what this module writes reads
back through ``nifti_mrs`` (``img[:]``, as FSL-MRS reads it) with NAA at 2.01 ppm.

scaloquant 0.1 wrote NIfTI-MRS samples unconjugated (the mirror image for every other tool);
its files name it in ``ConversionMethod`` and are read with a warning (see
:func:`legacy_orientation_warning`).

Samples are exchanged with the time axis last: ``(x, y, z, *extra, n_points)``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import ConfigError, InputFileError, InvalidDataError
from ..types import FID
from ._common import (
    MAX_PLAUSIBLE_FREQ_MHZ,
    plausible_recorded,
    recorded_grid,
    require_file,
    require_finite,
    require_points,
    sequence_provenance,
    unique_keys,
)
from .atomic import atomic_path

#: Tags for NIfTI-MRS dimensions 5-7 when the caller gives none (the standard's defaults).
DEFAULT_DIM_TAGS = ("DIM_COIL", "DIM_DYN", "DIM_INDIRECT_0")
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` ends in ``.nii`` or ``.nii.gz`` (case-insensitive)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else path.stem


def read_nifti_mrs(
    path: str | os.PathLike,
    *,
    dwell_time_s: float | None = None,
    spectrometer_freq_mhz: float | None = None,
    ppm_reference: float | None = None,
) -> FID:
    """Read a NIfTI-MRS file.

    Parameters
    ----------
    path : ``.nii`` or ``.nii.gz`` file.
    dwell_time_s, spectrometer_freq_mhz, ppm_reference : override the header's ``pixdim[4]``
        (s), ``SpectrometerFrequency`` (MHz) and ``SpecFreqChemShift + RxOffset`` (ppm; 4.65 for
        1H when absent, as in the ``nifti-mrs`` package).

    Returns
    -------
    FID with samples of shape ``(x, y, z, *extra, n_points)``; ``provenance["dim_tags"]`` names
    the extra dimensions and ``provenance["header"]`` holds the JSON header extension;
    ``provenance["sequence"]`` / ``["echo_time_s"]`` hold ``SequenceName`` / ``EchoTime`` (s)
    when the header states them.
    """
    # nifti-mrs is imported here, not at module level: it pulls in fslpy (~0.7 s).
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError
    from nifti_mrs.nifti_mrs import NIFTI_MRS, NotNIFTI_MRS
    from nifti_mrs.validator import Error as NiftiMrsValidationError

    path = require_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image, content = _nifti_image(path)
            _require_defined_dim_tags(_require_unique_header_keys(image, path), path)
            nmrs = NIFTI_MRS(image)
            on_disk = _image_data(image, content)
            _require_no_data_after_image(image, content, path)
            header = nmrs.hdr_ext.to_dict()
            file_dwell_s = float(nmrs.dwelltime)
            file_freq_mhz = float(nmrs.spectrometer_frequency[0])
            file_ppm = float(nmrs.SpecFreqChemShift) + float(nmrs.RxOffset)
            nucleus = str(nmrs.nucleus[0])
            dim_tags = [str(t) for t in nmrs.dim_tags[: max(on_disk.ndim - 4, 0)]]
    except (NotNIFTI_MRS, NiftiMrsValidationError) as err:
        raise InputFileError(
            f"{path} is not valid NIfTI-MRS: {' '.join(str(err).split())[:200]}"
        ) from None
    except (
        ImageFileError,
        HeaderDataError,
        OSError,
        EOFError,
        zlib.error,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        json.JSONDecodeError,
    ) as err:
        # zlib names its exception class "error"
        kind = "zlib error" if isinstance(err, zlib.error) else type(err).__name__
        raise InputFileError(
            f"cannot read {path} as NIfTI-MRS ({kind}: {' '.join(str(err).split())[:80]}); "
            "the file is truncated, corrupt or not NIfTI"
        ) from None
    if on_disk.ndim < 4 or not np.iscomplexobj(on_disk):
        raise InvalidDataError(
            f"{path} holds {on_disk.dtype} data of shape {on_disk.shape}; NIfTI-MRS needs complex "
            "data with at least 4 dimensions"
        )
    require_points(on_disk.shape[3], path, on_disk.shape)
    plausible = 0 < file_freq_mhz < MAX_PLAUSIBLE_FREQ_MHZ
    if spectrometer_freq_mhz is None and not plausible:
        raise InvalidDataError(
            f"{path}: SpectrometerFrequency {file_freq_mhz:g} MHz is implausible (written in Hz "
            "instead of MHz?); pass --spectrometer-freq-mhz"
        )
    recorded = recorded_grid(
        dwell_time_s=file_dwell_s,
        # an implausible frequency (in Hz?) is not taken as recorded: the flag gives it
        spectrometer_freq_mhz=file_freq_mhz if plausible else None,
        # without SpecFreqChemShift, 4.65 ppm is nifti-mrs' default, not the file's statement
        ppm_reference=file_ppm if "SpecFreqChemShift" in header else None,
    )
    if dwell_time_s is None:  # pixdim[4] in ms (where no SpectralWidth says otherwise)
        plausible_recorded(recorded, "dwell_time_s", path)
    # NIfTI-MRS on-disk orientation -> internal orientation (see the module docstring).
    # written in C order: the spectra are then contiguous rows, so that every later (-1,
    # n_points) view is free (the moved axes otherwise cost a transposing copy at each
    # reshape: two per quantify run, 0.25 s each for 4096 x 2048 points)
    moved = np.moveaxis(on_disk, 3, -1)
    blanked = _non_finite_voxels(moved, path)
    samples = _conjugated_c_order(moved)
    blank_warning = None
    if blanked.any():
        samples[blanked] = 0  # left out as an empty voxel is (qc empty, NaN estimates)
        blank_warning = _blanked_warning(blanked, path)
    # handed over: FID keeps this new read-only array as it is, where it is complex128 (no copy)
    samples.setflags(write=False)
    legacy = legacy_orientation_warning(header, path)
    return FID(
        samples=samples,
        dwell_time_s=file_dwell_s if dwell_time_s is None else dwell_time_s,
        spectrometer_freq_mhz=file_freq_mhz
        if spectrometer_freq_mhz is None
        else spectrometer_freq_mhz,
        ppm_reference=file_ppm if ppm_reference is None else ppm_reference,
        nucleus=nucleus,
        provenance={
            "source": str(path),
            "format": "nifti-mrs",
            "name": _stem(path),
            "dim_tags": dim_tags,
            "header": header,
            "recorded": recorded,
            **sequence_provenance(header.get("SequenceName"), header.get("EchoTime")),
            **(
                {"warnings": [w for w in (legacy, blank_warning) if w]}
                if legacy or blank_warning
                else {}
            ),
        },
    )


def _non_finite_voxels(moved: np.ndarray, path: Path) -> np.ndarray:
    """``(x, y, z)`` True for the voxels of ``moved`` ``(x, y, z, *extra, n_points)`` that hold
    a NaN/Inf sample (in any of their extra-dimension spectra): an MRSI scanner writes such
    voxels (outside the head, a failed reconstruction): the caller blanks them to zero, so that
    fit and quantify leave them out as empty voxels (qc ``empty``) and quantify the others. A
    file of one voxel, or whose every voxel is bad, is refused as :func:`require_finite` does."""
    bad = ~np.isfinite(moved).all(axis=tuple(range(3, moved.ndim)))
    if bad.any() and (bad.size == 1 or bad.all()):
        require_finite(moved, path)
    return bad


def _blanked_warning(blanked: np.ndarray, path: Path) -> str:
    """The sentence naming the voxels :func:`_non_finite_voxels` found (at most 5 by index)."""
    where = np.argwhere(blanked)
    which = ", ".join(",".join(map(str, v)) for v in where[:5].tolist())
    more = f" and {len(where) - 5} more" if len(where) > 5 else ""
    return (
        f"{len(where)} of {blanked.size} voxels hold NaN/Inf samples (voxel {which}{more}): read "
        "as empty (all-zero) voxels, which fit and quantify leave out (qc empty, NaN estimates); "
        f"re-export {path.name} if they should hold spectra"
    )


#: Tiles of :func:`_conjugated_c_order`: voxels along the first two axes, points.
_TILE_VOXELS, _TILE_POINTS = 256, 64


def _conjugated_c_order(moved: np.ndarray) -> np.ndarray:
    """``conj(moved)`` as a new C-order array, ``moved`` ``(x, y, ..., n_points)`` the view of
    the NIfTI image with its time axis last (the voxels' x contiguous on disk, the points far
    apart): copied tile by tile, about 256 voxels x 64 points (256 kB) at a time, so that what
    is read and what is written both stay in the cache, where one whole-array copy streams
    through memory with one of the two strided (16384 voxels of 2048 points: 1.87 -> 0.89 s).
    The same numbers in the same places as ``np.conjugate(moved)`` into a C-order array."""
    out = np.empty(moved.shape, moved.dtype)
    if moved.ndim < 3:
        return np.conjugate(moved, out=out)
    n_x, n_y, n_points = moved.shape[0], moved.shape[1], moved.shape[-1]
    step_x = min(n_x, _TILE_VOXELS)
    step_y = max(1, _TILE_VOXELS // step_x)
    for x in range(0, n_x, step_x):
        for y in range(0, n_y, step_y):
            for t in range(0, n_points, _TILE_POINTS):
                tile = (slice(x, x + step_x), slice(y, y + step_y), ..., slice(t, t + _TILE_POINTS))
                np.conjugate(moved[tile], out=out[tile])
    return out


def _nifti_image(path: Path):
    """The NIfTI-1 or -2 image of ``path`` and the file's content (a ``.gz`` file
    decompressed), from memory: the
    bytes :func:`scaloquant.readahead.read_ahead` read and decompressed on its thread while the
    command started, or read here. The file in one piece then one ``gzip.decompress`` (C, the
    CRC checked) rather than nibabel's stream of 8 kB reads through ``gzip.GzipFile``: 4096
    spectra of 2048 points (a 129 MB file), 2.3 -> 1.6 s of CPU."""
    import nibabel
    from nibabel.filebasedimages import ImageFileError
    from nibabel.imageglobals import LoggingOutputSuppressor

    from .. import readahead

    data = readahead.content(path)
    if data is None:
        data = readahead.gunzip_if_gz(str(path), path.read_bytes())
    # sizeof_hdr, the first field: 348 for NIfTI-1, 540 for NIfTI-2, in either byte order
    sizes = {int.from_bytes(data[:4], order) for order in ("little", "big")}
    if not sizes & {348, 540}:
        # what nibabel.load says of such a file; from_bytes would try to mend the header and
        # log its attempts to the terminal before failing
        raise ImageFileError(f'Cannot work out file type of "{path}"')
    size = 540 if 540 in sizes else 348
    if len(data) < size:  # nibabel's WrapStructError ("Binary block is wrong size"): a traceback
        raise ImageFileError(f"the file ends at byte {len(data)}, inside its {size}-byte header")
    kind = nibabel.Nifti2Image if size == 540 else nibabel.Nifti1Image
    # nibabel logs each header field it cannot mend ("data code 999 not recognized; not
    # attempting fix") to stderr before raising: a second and third line above the refusal
    with LoggingOutputSuppressor():
        return kind.from_bytes(data), data


def _require_unique_header_keys(image, path: Path) -> Any:
    """Refuse a JSON header extension that gives a key twice with two values: JSON readers take
    the last, and which the writer meant is unknown (``SpectrometerFrequency`` twice: a
    plausible spectrum on another field's axis). Invalid JSON is left to ``nifti_mrs``.
    Returns the (last) JSON header, None where there is none."""
    header = None
    for extension in image.header.extensions:
        if extension.get_code() == _JSON_EXTENSION_CODE:
            header = json.loads(
                extension.get_content(),
                object_pairs_hook=lambda pairs: unique_keys(
                    pairs, path, "its header extension gives {key} twice"
                ),
            )
    return header


def _require_defined_dim_tags(header: Any, path: Path) -> None:
    """Refuse a ``dim_5``..``dim_7`` that is not one of the standard's dimension tags in the
    words of a NIfTI-MRS refusal (``nifti_mrs`` raises a bare ``ValueError``, which read as
    'the file is truncated, corrupt or not NIfTI')."""
    from nifti_mrs.definitions import dimension_tags

    if not isinstance(header, dict):
        return
    for key in ("dim_5", "dim_6", "dim_7"):
        tag = header.get(key)
        if tag is not None and (not isinstance(tag, str) or tag not in dimension_tags):
            raise InputFileError(
                f"{path} is not valid NIfTI-MRS: its header extension's {key} is {tag!r}, not a "
                f"dimension tag of the standard ({', '.join(dimension_tags)}); correct the tag "
                "or convert the file again"
            )


#: The NIfTI header-extension code of NIfTI-MRS' JSON header.
_JSON_EXTENSION_CODE = 44


def _require_no_data_after_image(image, content: bytes, path: Path) -> None:
    """Refuse a file holding more data than its header's image: a ``dim`` that was damaged
    (the first 512 of 1024 points were read as the whole FID: a plausible spectrum at half the
    resolution) or data appended. NIfTI writers (nibabel, spec2nii, dcm2niix) end the file
    with the image."""
    proxy = image.dataobj
    count = int(np.prod(proxy.shape, dtype=np.int64))
    end = int(proxy.offset) + count * image.header.get_data_dtype().itemsize
    if len(content) > end:
        raise InvalidDataError(
            f"{path} holds {len(content) - end} bytes after the image its header describes "
            f"(shape {tuple(proxy.shape)}, {image.header.get_data_dtype()}): the header's "
            "dimensions or data type do not match the data (a damaged header, or data appended); "
            "convert the file again"
        )


def _image_data(image, content: bytes) -> np.ndarray:
    """The samples of an image read from memory (:func:`_nifti_image`, ``content`` its
    file's bytes) as they are on disk: a read-only view of those bytes, not a copy (nibabel's
    reader copies them), where the header scales nothing."""
    proxy = image.dataobj
    if (float(proxy.slope), float(proxy.inter)) != (1.0, 0.0):
        return np.asarray(proxy)
    dtype = image.header.get_data_dtype()
    count = int(np.prod(proxy.shape, dtype=np.int64))
    flat = np.frombuffer(content, dtype=dtype, count=count, offset=int(proxy.offset))
    return flat.reshape(proxy.shape, order=proxy.order)


#: The first scaloquant version that writes NIfTI-MRS in the standard's orientation.
FIRST_STANDARD_VERSION = (0, 2)


def legacy_orientation_warning(header: Mapping[str, Any], path: str | os.PathLike) -> str | None:
    """A warning for a file written by scaloquant before 0.2, else None.

    Those versions stored the samples unconjugated: a spectrum they simulated or converted from
    ``.RAW``/text/jMRUI is on disk as its mirror image (for every tool, this one included), while
    one they read from another tool's NIfTI-MRS was stored back as it came (correct). The header
    cannot tell which, so the file is read by the standard and the user is told how to check it
    and how to convert it.
    """
    method = str(header.get("ConversionMethod") or "")
    found = re.fullmatch(r"\s*scaloquant\s+(\d+)\.(\d+)\S*\s*", method)
    if not found or "+unknown" in method:  # another tool, or an uninstalled source tree
        return None
    if tuple(int(g) for g in found.groups()) >= FIRST_STANDARD_VERSION:
        return None
    return (
        f"{Path(path).name} was written by {method.strip()}, which stored NIfTI-MRS samples in "
        "the opposite orientation to the standard (simulated or .RAW/text/jMRUI-converted spectra show mirrored about the "
        "reference); if NAA is not at 2.01 ppm or the mirror check flags it, read it with "
        "--conjugate, or rewrite it once with 'scaloquant convert --conjugate IN OUT.nii.gz'"
    )


def _as_nifti_array(samples: np.ndarray) -> np.ndarray:
    """``(n)``, ``(k, n)`` or ``(x, y, z, *extra, n)`` -> NIfTI-MRS ``(x, y, z, n, *extra)``."""
    if samples.ndim == 1:
        return samples.reshape(1, 1, 1, -1)
    if samples.ndim == 2:
        return samples.T.reshape(1, 1, 1, *samples.T.shape)
    if 4 <= samples.ndim <= 7:
        return np.moveaxis(samples, -1, 3)
    raise InvalidDataError(
        f"cannot store samples of shape {samples.shape} as NIfTI-MRS: give (n_points,), "
        "(k, n_points) or (x, y, z, [up to 3 extra dims,] n_points)"
    )


def _resolve_tags(fid: FID, n_extra: int, dim_tags: Sequence[str] | None) -> list[str]:
    from nifti_mrs.definitions import dimension_tags

    if dim_tags is None:
        from_file = list(fid.provenance.get("dim_tags") or ())
        if len(from_file) == n_extra:
            dim_tags = from_file
        elif fid.samples.ndim == 2:
            dim_tags = ["DIM_DYN"]
        else:
            dim_tags = list(DEFAULT_DIM_TAGS[:n_extra])
    tags = list(dim_tags)
    if len(tags) != n_extra:
        raise ConfigError(f"the data have {n_extra} extra dimension(s) but {len(tags)} tag(s)")
    unknown = [t for t in tags if t not in dimension_tags]
    if unknown:
        raise ConfigError(
            f"unknown NIfTI-MRS dimension tag(s) {', '.join(unknown)}; use one of "
            f"{', '.join(dimension_tags)}"
        )
    return tags


def write_nifti_mrs(
    path: str | os.PathLike,
    fid: FID,
    *,
    dim_tags: Sequence[str] | None = None,
    overwrite: bool = False,
    extra_header: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``fid`` as NIfTI-MRS (atomically).

    Parameters
    ----------
    path : output ending in ``.nii`` or ``.nii.gz``; refused if it exists unless ``overwrite``.
    fid : samples ``(n_points,)`` -> one voxel ``(1, 1, 1, n_points)``; ``(k, n_points)`` -> one
        voxel with ``k`` along dimension 5; ``(x, y, z, *extra, n_points)`` -> as is.
    dim_tags : tags of the extra dimensions (default: those read from a NIfTI-MRS file, else
        ``DIM_DYN`` for 2-D samples and ``DIM_COIL, DIM_DYN, DIM_INDIRECT_0`` otherwise).
    extra_header : more header-extension fields; standard-defined keys (``EchoTime`` in s,
        ``SequenceName``...) are stored as such, others as user-defined fields.

    The header records ``SpectrometerFrequency``, ``ResonantNucleus``, ``SpecFreqChemShift``
    (= ``fid.ppm_reference``), the dwell time (``pixdim[4]``), ``ConversionMethod`` (scaloquant
    and its version) and ``OriginalFile`` when the FID was read from a file.
    """
    from nifti_mrs.create_nmrs import gen_nifti_mrs_hdr_ext
    from nifti_mrs.definitions import standard_defined
    from nifti_mrs.hdr_ext import Hdr_Ext

    path = Path(path)
    if not is_nifti_path(path):
        raise ConfigError(f"NIfTI-MRS output {path} must end in .nii or .nii.gz")
    data = _as_nifti_array(fid.samples)
    tags = _resolve_tags(fid, data.ndim - 4, dim_tags)

    hdr = Hdr_Ext(fid.spectrometer_freq_mhz, fid.nucleus, dimensions=data.ndim)
    for i, tag in enumerate(tags):
        hdr.set_dim_info(i, tag)
    hdr.set_standard_def("SpecFreqChemShift", fid.ppm_reference)
    hdr.set_standard_def("ConversionMethod", f"scaloquant {__version__}")
    if "source" in fid.provenance:
        hdr.set_standard_def("OriginalFile", [Path(str(fid.provenance["source"])).name])
    for key, value in (extra_header or {}).items():
        if key in standard_defined:
            hdr.set_standard_def(key, value)
        else:
            hdr.set_user_def(key, value, "added by scaloquant")

    # Internal orientation -> NIfTI-MRS on-disk orientation (see the module docstring); done
    # here rather than by gen_nifti_mrs so that the conversion is explicit.
    img = gen_nifti_mrs_hdr_ext(np.conj(data), fid.dwell_time_s, hdr, no_conj=True)
    with atomic_path(path, overwrite=overwrite) as tmp:
        img.save(tmp)
    return path


def read_nifti_affine(path: str | os.PathLike) -> np.ndarray:
    """The voxel-to-world affine ``(4, 4)`` of a NIfTI file (float64), for maps written beside
    it with :func:`write_nifti_map`."""
    import nibabel

    return np.asarray(nibabel.load(str(path)).affine, dtype=np.float64)


def write_nifti_map(
    path: str | os.PathLike, values: np.ndarray, affine: np.ndarray, *, description: str
) -> Path:
    """Write a real-valued map ``(x, y, z[, ...])`` as a float32 NIfTI-1 image with ``affine``,
    spatial units mm and ``description`` (cut to the 79 characters of ``descrip``).

    Written in place (the caller stages the folder it writes into, as
    :func:`scaloquant.io.atomic.staged_directory` does)."""
    import nibabel

    img = nibabel.Nifti1Image(np.asarray(values).astype(np.float32), affine)
    img.header.set_xyzt_units("mm")
    img.header["descrip"] = description[:79].encode()
    nibabel.save(img, str(path))
    return Path(path)
