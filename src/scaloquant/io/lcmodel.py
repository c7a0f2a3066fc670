"""LCModel files: ``.RAW`` / ``.H2O`` FIDs and ``.BASIS`` basis sets.

Format
------
Both are text: Fortran namelists (``$NAME key=value, ... $END``; ``&NAME ... /`` is accepted too)
followed by numbers.

* ``.RAW`` / ``.H2O``: ``$NMID`` (``ID``, ``FMTDAT``, ``TRAMP``, ``VOLUME``), optionally preceded by
  ``$SEQPAR`` (``HZPPPM``, ``ECHOT``, ``SEQ``), then the complex time-domain FID as interleaved
  ``re im`` numbers. LCModel takes dwell time and frequency from its control file, so a ``.RAW``
  usually lacks them; ``HZPPPM`` and ``DELTAT`` (LCModel's control-file names; ``BADELT`` and
  FSL-MRS's ``DWELLTIME`` are accepted too) are read from the header when present, and the
  caller supplies them otherwise.
* ``.BASIS``: ``$SEQPAR`` (``HZPPPM``), ``$BASIS1`` (``BADELT`` dwell time in s, ``NDATAB`` points),
  then per metabolite ``$NMUSED``, ``$BASIS`` (``METABO``, ``ISHIFT``) and ``NDATAB`` complex
  *frequency-domain* points in FFT order. In the ISMRM 2016 basis each block equals
  ``fft(r_[raw_fid, zeros(N)]) / sqrt(2 N)`` of the matching ``.RAW`` FID: an orthonormal DFT of
  the FID zero-filled to twice its length, checked numerically against the ``.RAW`` files. So the
  FID is ``ifft(block, norm="ortho")``, truncated to ``NDATAB / 2`` points when the second half is
  the zero fill. A non-zero ``ISHIFT`` is undone by rolling the spectrum by ``-ISHIFT`` points, as
  FSL-MRS's ``lcm_io.readLCModelBasis`` does.

Convention
----------
LCModel stores the complex conjugate of the internal orientation of
:mod:`scaloquant.signal.axes`: with ``fid = conj(file_fid)`` a peak at ``+f`` Hz appears at
``ppm_reference + f / MHz``. The reader and writer below conjugate; nothing else in scaloquant
knows about it. 0 Hz is 4.65 ppm (LCModel's ``PPMCEN`` default and the ISMRM 2016 basis).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError, InvalidDataError
from ..signal import axes
from ..types import FID, BasisSet
from ._common import (
    interleaved_to_complex,
    parse_floats,
    read_text,
    recorded_grid,
    require_count,
    require_finite,
    require_fixed_width_lines,
    require_grid,
    sequence_provenance,
    unique_keys,
)
from .atomic import atomic_path

_GROUP_START = re.compile(r"[$&]([A-Za-z]\w*)")
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"")
_KEY = re.compile(r"([A-Za-z]\w*)\s*=")
_DWELL_KEYS = ("DELTAT", "BADELT", "DWELLTIME")

#: A zero-filled half whose largest sample is below this fraction of the FID's largest is
#: taken as LCModel's zero fill (the ISMRM 2016 basis: ~1e-7, at the 6-digit print precision).
_ZERO_FILL_TOLERANCE = 1e-4


@dataclass(frozen=True)
class _Namelist:
    name: str
    fields: dict[str, str]
    start: int
    end: int


def _namelists(text: str, path: Path) -> list[_Namelist]:
    """Every namelist group of ``text`` with its fields (raw strings) and character span."""
    groups: list[_Namelist] = []
    pos = 0
    while (m := _GROUP_START.search(text, pos)) is not None:
        name = m.group(1).upper()
        if name == "END":  # a stray terminator: nothing to read
            pos = m.end()
            continue
        body_end, end = _group_end(text, m.end(), path, name)
        groups.append(
            _Namelist(name, _fields(text[m.end() : body_end], path, name), m.start(), end)
        )
        pos = end
    return groups


def _group_end(text: str, start: int, path: Path, name: str) -> tuple[int, int]:
    """Position of the group terminator (``$END``, ``&END`` or ``/``) outside quotes."""
    quote = ""
    for i in range(start, len(text)):
        c = text[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "$&" and text[i + 1 : i + 4].upper() == "END":
            return i, i + 4
        elif c == "/":
            return i, i + 1
    raise InputFileError(f"{path}: header group ${name} has no $END; the file is truncated")


def _fields(body: str, path: Path, group: str) -> dict[str, str]:
    """``key = value, ...`` -> {KEY: value} with quotes removed (``''`` inside quotes is ``'``).

    A key given twice with two values is refused: Fortran takes the last, a reader may take
    either, and which one the writer meant is unknown (``HZPPPM`` twice: the last was taken, a
    plausible spectrum on another field's axis)."""
    strings: list[str] = []

    def stash(m: re.Match[str]) -> str:
        strings.append(m.group(0)[1:-1].replace(m.group(0)[0] * 2, m.group(0)[0]))
        return f"\x00{len(strings) - 1}\x00"

    masked = _QUOTED.sub(stash, body)
    keys = list(_KEY.finditer(masked))
    pairs = []
    for key, nxt in zip(keys, [*keys[1:], None], strict=True):
        raw = masked[key.end() : nxt.start() if nxt else len(masked)].strip().rstrip(",").strip()
        value = re.sub("\x00(\\d+)\x00", lambda m: strings[int(m.group(1))], raw).strip()
        pairs.append((key.group(1).upper(), value))
    return unique_keys(pairs, path, f"header group ${group} gives {{key}} twice")


def _float_field(groups: list[_Namelist], keys: tuple[str, ...], path: Path) -> float | None:
    """The first of ``keys`` given a value in any group, as float (Fortran ``D`` exponents
    accepted). An empty value (``ECHOT = ,`` as spant writes it) is a Fortran namelist null,
    which leaves the variable unset: it counts as absent."""
    for key in keys:
        given = [g for g in groups if g.fields.get(key, "").strip()]
        values = [_number(g.fields[key], key, path) for g in given]
        other = next((i for i, v in enumerate(values) if not _same(v, values[0])), None)
        if other is not None:  # two groups (two $SEQPAR) that disagree: as a key twice
            raise InputFileError(
                f"{path}: header groups ${given[0].name} and ${given[other].name} give {key} "
                f"as {given[0].fields[key]!r} and {given[other].fields[key]!r}; fix the header "
                "(keep the right one)"
            )
        if values:
            return values[0]
    return None


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _number(text: str, key: str, path: Path) -> float:
    try:
        return float(text.replace("D", "E").replace("d", "e"))
    except ValueError:
        raise InputFileError(
            f"{path}: header value {key} = {text!r} is not a number; fix the header"
        ) from None


def _numbers(text: str, path: Path, fmt: str | None = None) -> np.ndarray:
    """The complex numbers of a data section; ``fmt`` (``FMTDAT``/``FMTBAS``) lets a number cut
    off at the end be told from a whole one (:func:`require_fixed_width_lines`)."""
    require_fixed_width_lines(text.splitlines(), fmt, path)
    return interleaved_to_complex(parse_floats(text.split(), path), path)


def read_lcmodel_raw(
    path: str | os.PathLike,
    *,
    dwell_time_s: float | None = None,
    spectrometer_freq_mhz: float | None = None,
    ppm_reference: float = axes.DEFAULT_PPM_REFERENCE_1H,
) -> FID:
    """Read an LCModel ``.RAW`` / ``.H2O`` FID.

    Parameters
    ----------
    path : the file.
    dwell_time_s, spectrometer_freq_mhz : override (or supply, when the header lacks them) the
        dwell time in s and the spectrometer frequency in MHz.
    ppm_reference : chemical shift of 0 Hz, ppm.

    Returns
    -------
    FID with samples of shape ``(n_points,)`` in the internal convention; ``provenance["name"]``
    is the file name without extension (LCModel ``ID`` fields are often malformed);
    ``provenance["sequence"]`` / ``["echo_time_s"]`` hold ``$SEQPAR``'s ``SEQ`` / ``ECHOT``
    (ms in the file, s here) when stated.
    """
    text = read_text(path)
    path = Path(path)
    groups = _namelists(text, path)
    if not any(g.name == "NMID" for g in groups):
        if any(g.name in ("BASIS1", "BASIS") for g in groups):
            # a basis set renamed (or exported) as .RAW: say what it is, not only what it is not
            raise InputFileError(
                f"{path} is an LCModel basis set ($BASIS1 header), not a .RAW/.H2O FID; give it "
                "as --basis (a .BASIS name), and the spectrum as the input"
            )
        raise InputFileError(f"{path} has no $NMID header; it is not an LCModel .RAW/.H2O file")
    recorded = recorded_grid(
        dwell_time_s=_float_field(groups, _DWELL_KEYS, path),
        spectrometer_freq_mhz=_float_field(groups, ("HZPPPM",), path),
    )
    dwell_time_s, spectrometer_freq_mhz = require_grid(
        dwell_time_s, spectrometer_freq_mhz, path, recorded
    )
    nmid = next(g.fields for g in groups if g.name == "NMID")
    file_fid = require_finite(_numbers(text[groups[-1].end :], path, nmid.get("FMTDAT")), path)
    n_stated = _float_field(groups, ("NUNFIL",), path)
    if n_stated is not None:
        require_count(file_fid.size, int(n_stated), path, what="points (NUNFIL)")
    header = {f"{g.name}.{k}": v for g in groups for k, v in g.fields.items()}
    seqpar = [g for g in groups if g.name == "SEQPAR"]
    echo_time_ms = _float_field(seqpar, ("ECHOT",), path)
    stated = sequence_provenance(
        next((g.fields.get("SEQ", "") for g in seqpar), ""),
        None if echo_time_ms is None else echo_time_ms * 1e-3,
    )
    return FID(
        samples=np.conj(file_fid),  # LCModel sign -> internal convention
        dwell_time_s=dwell_time_s,
        spectrometer_freq_mhz=spectrometer_freq_mhz,
        ppm_reference=ppm_reference,
        provenance={
            "source": str(path),
            "format": "lcmodel-raw",
            "name": path.stem,
            "header": header,
            "recorded": recorded,
            **stated,
        },
    )


def read_lcmodel_basis(
    path: str | os.PathLike,
    *,
    dwell_time_s: float | None = None,
    spectrometer_freq_mhz: float | None = None,
    ppm_reference: float = axes.DEFAULT_PPM_REFERENCE_1H,
) -> BasisSet:
    """Read an LCModel ``.BASIS`` file into a basis set, metabolites in file order.

    Parameters
    ----------
    path : the ``.BASIS`` file.
    dwell_time_s, spectrometer_freq_mhz : override ``BADELT`` / ``HZPPPM``.
    ppm_reference : chemical shift of 0 Hz, ppm.

    Returns
    -------
    BasisSet with ``fids`` of shape ``(n_metabolites, NDATAB / 2)`` (or ``NDATAB`` when the basis
    was not zero-filled); ``metadata`` holds ``echo_time_ms`` and ``sequence`` when recorded.
    """
    text = read_text(path)
    path = Path(path)
    groups = _namelists(text, path)
    blocks = [i for i, g in enumerate(groups) if g.name == "BASIS"]
    if not blocks:
        raise InputFileError(f"{path} has no $BASIS blocks; it is not an LCModel .BASIS file")
    header = [g for g in groups if g.name in ("SEQPAR", "BASIS1")]
    n_data = _float_field(header, ("NDATAB",), path)
    if n_data is None or n_data < 2 or n_data != int(n_data):
        raise InputFileError(f"{path}: $BASIS1 lacks a valid NDATAB; the header is damaged")
    recorded = recorded_grid(
        dwell_time_s=_float_field(header, ("BADELT",), path),
        spectrometer_freq_mhz=_float_field(header, ("HZPPPM",), path),
    )
    if recorded.get("dwell_time_s", 1.0) <= 0:
        raise InputFileError(
            f"{path} is an encrypted LCModel basis (BADELT <= 0) and cannot be read; "
            "use an unencrypted basis for your sequence"
        )
    dwell_time_s, spectrometer_freq_mhz = require_grid(
        dwell_time_s, spectrometer_freq_mhz, path, recorded
    )

    names, fids = [], []
    for i in blocks:
        group = groups[i]
        name = group.fields.get("METABO", "").strip()
        if not name:
            raise InputFileError(f"{path}: a $BASIS block has no METABO name; fix the file")
        stop = groups[i + 1].start if i + 1 < len(groups) else len(text)
        fmt = next((g.fields.get("FMTBAS") for g in header if "FMTBAS" in g.fields), None)
        spec = require_finite(_numbers(text[group.end : stop], path, fmt), path)
        require_count(spec.size, int(n_data), path, what=f"points for {name} (NDATAB)")
        ishift = _float_field([group], ("ISHIFT",), path) or 0.0
        names.append(name)
        fids.append(np.fft.ifft(np.roll(spec, -int(ishift)), norm="ortho"))
    fids = np.array(fids)
    half = fids.shape[1] // 2
    if np.abs(fids[:, half:]).max() <= _ZERO_FILL_TOLERANCE * np.abs(fids[:, :half]).max():
        fids = fids[:, :half]

    seqpar = next((g.fields for g in groups if g.name == "SEQPAR"), {})
    metadata: dict[str, object] = {}
    echo_time_ms = _float_field([g for g in groups if g.name == "SEQPAR"], ("ECHOT",), path)
    if echo_time_ms is not None and echo_time_ms > 0:
        metadata["echo_time_ms"] = echo_time_ms
    if seqpar.get("SEQ", "").strip():
        metadata["sequence"] = seqpar["SEQ"].strip()
    return BasisSet(
        names=tuple(names),
        fids=np.conj(fids),  # LCModel sign -> internal convention
        dwell_time_s=dwell_time_s,
        spectrometer_freq_mhz=spectrometer_freq_mhz,
        ppm_reference=ppm_reference,
        metadata=metadata,
        provenance={"source": str(path), "format": "lcmodel-basis", "recorded": recorded},
    )


def _single_fid(fid: FID, path: Path) -> np.ndarray:
    if int(np.prod(fid.batch_shape)) != 1:
        raise InvalidDataError(
            f"an LCModel .RAW file holds one FID but the data have shape {fid.samples.shape}; "
            f"select one FID or write NIfTI-MRS instead of {path.name}"
        )
    return fid.samples.reshape(-1)


def write_lcmodel_raw(
    path: str | os.PathLike, fid: FID, *, name: str, overwrite: bool = False
) -> Path:
    """Write one FID as an LCModel ``.RAW`` file (atomically).

    The header carries ``$SEQPAR`` with ``HZPPPM`` and ``DELTAT`` (LCModel reads ``$NMID`` only;
    ``$SEQPAR`` is informative, as in FSL-MRS's ``.RAW`` files) and ``$NMID`` with ``ID``,
    ``FMTDAT = '(2E16.8)'`` (9 significant digits), ``VOLUME`` and ``TRAMP``.

    Parameters
    ----------
    path : output file; refused if it exists unless ``overwrite``.
    fid : samples of shape ``(n_points,)`` (or any shape holding a single FID).
    name : the metabolite/data ID written to ``$NMID``.
    """
    path = Path(path)
    samples = np.conj(_single_fid(fid, path))  # internal convention -> LCModel sign
    quoted_name = name.replace("'", "''")
    header = (
        " $SEQPAR\n"
        f" HZPPPM = {fid.spectrometer_freq_mhz!r},\n"
        f" DELTAT = {fid.dwell_time_s!r}\n"
        " $END\n"
        " $NMID\n"
        f" ID = '{quoted_name}',\n"
        " FMTDAT = '(2E16.8)',\n"
        " VOLUME = 1.,\n"
        " TRAMP = 1.\n"
        " $END\n"
    )
    rows = "".join(f"{z.real:16.8E}{z.imag:16.8E}\n" for z in samples)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(header + rows)
    return path
