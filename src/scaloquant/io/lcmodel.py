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
  FSL-MRS's ``lcm_io.readLCModelBasis`` does. :func:`write_lcmodel_basis` writes that layout
  (zero-filled x2, ``ISHIFT = 0``), 0 Hz moved to 4.65 ppm, where LCModel takes a basis' 0 Hz.

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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InputFileError, InvalidDataError
from ..signal import axes
from ..signal.match import to_grid
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
    was not zero-filled); ``metadata`` holds ``echo_time_ms`` and ``sequence`` when recorded,
    and ``fwhm_hz`` (``FWHMBA`` in Hz, one per metabolite, as FSL-MRS's ``basis_width``) when
    ``FWHMBA`` is positive. Each metabolite's FID is scaled by ``TRAMP / (VOLUME * CONC)`` in
    force at its ``$BASIS`` block (a key a block leaves out keeps the value an earlier block
    stated, as LCModel's namelist reads keep it; 1 before any), as LCModel scales its basis spectra
    (``SCALE=TRAMP/(VOLUME*CONC)`` in LCModel.f's basis reading), so that an amplitude is a
    concentration in the units LCModel would report with the same basis (LCModel's GAMMA basis
    states ``CONC = 100``); ``provenance["scaled"]`` names the metabolites whose scale is not 1.

    Raises
    ------
    InputFileError : no ``$BASIS`` block, a damaged header, an encrypted basis, a block without
        ``METABO``, a wrong point count, or a ``CONC``, ``TRAMP`` or ``VOLUME`` that is not
        positive (LCModel stops there too).
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
    scaled: dict[str, float] = {}
    # LCModel reads each $BASIS block as a Fortran namelist into the same variables, so a key a
    # block leaves out keeps the value the block before stated (LCModel.f resets none of them
    # between blocks); a key no block has stated yet is taken as 1 (0 for ISHIFT)
    stated = {"TRAMP": 1.0, "VOLUME": 1.0, "CONC": 1.0, "ISHIFT": 0.0}
    for i in blocks:
        group = groups[i]
        name = group.fields.get("METABO", "").strip()
        if not name:
            raise InputFileError(f"{path}: a $BASIS block has no METABO name; fix the file")
        stop = groups[i + 1].start if i + 1 < len(groups) else len(text)
        fmt = next((g.fields.get("FMTBAS") for g in header if "FMTBAS" in g.fields), None)
        spec = require_finite(_numbers(text[group.end : stop], path, fmt), path)
        require_count(spec.size, int(n_data), path, what=f"points for {name} (NDATAB)")
        for key in stated:
            value = _float_field([group], (key,), path)
            stated[key] = stated[key] if value is None else value
        scale = _basis_scale(stated, name, path)
        if scale != 1.0:
            scaled[name] = scale
        names.append(name)
        fids.append(scale * np.fft.ifft(np.roll(spec, -int(stated["ISHIFT"])), norm="ortho"))
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
    fwhm_ppm = _float_field([g for g in groups if g.name == "SEQPAR"], ("FWHMBA",), path)
    if fwhm_ppm is not None and fwhm_ppm > 0:  # -1: not stated (the ISMRM 2016 basis)
        metadata["fwhm_hz"] = [fwhm_ppm * spectrometer_freq_mhz] * len(names)
    return BasisSet(
        names=tuple(names),
        fids=np.conj(fids),  # LCModel sign -> internal convention
        dwell_time_s=dwell_time_s,
        spectrometer_freq_mhz=spectrometer_freq_mhz,
        ppm_reference=ppm_reference,
        metadata=metadata,
        provenance={
            "source": str(path),
            "format": "lcmodel-basis",
            "recorded": recorded,
            **({"scaled": scaled} if scaled else {}),
        },
    )


def _basis_scale(stated: dict[str, float], name: str, path: Path) -> float:
    """LCModel's scale of a ``$BASIS`` block's spectrum, ``TRAMP / (VOLUME * CONC)`` of the values
    in force at that block (``stated``)."""
    for key in ("TRAMP", "VOLUME", "CONC"):
        if not stated[key] > 0:
            raise InputFileError(
                f"{path}: {key} = {stated[key]:g} for {name}; LCModel needs TRAMP, VOLUME and CONC "
                "above 0 (the basis spectrum is scaled by TRAMP / (VOLUME * CONC)): fix the file"
            )
    return stated["TRAMP"] / (stated["VOLUME"] * stated["CONC"])


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
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(header + _rows(samples, per_line=1))
    return path


#: The data format of what the writers here write: 9 significant digits in 16 characters.
_NUMBER = "{:16.8E}"
#: Below this magnitude a number prints with a 3-digit exponent that fills its 16 characters
#: and runs into the number before it; such values are written as 0 (LCModel prints 6 digits).
_SMALLEST = 1e-99
#: LCModel keeps this many characters of a metabolite name (``MCHMET`` in ``lcmodel.inc``),
#: of a basis' ``IDBASI`` (``MCHIDB`` in ``LCModel.f``) and of a spectrum's ``ID`` (``MCHID``).
LCMODEL_NAME_CHARS = 6
_IDBASI_CHARS = 80
_ID_CHARS = 20
#: LCModel's largest basis (``MDATA`` = 2 ``MUNFIL`` in ``lcmodel.inc``), complex points.
_MAX_NDATAB = 131072
#: LCModel takes 0 Hz of a basis as 4.65 ppm (``LCModel.f``: the basis is shifted by
#: ``(4.65 - PPMCEN) / PPMINC`` points to the data's centre); the writer moves it there.
LCMODEL_BASIS_PPM_REFERENCE = 4.65


def _rows(samples: np.ndarray, *, per_line: int) -> str:
    """Complex ``samples`` ``(n,)`` as interleaved ``re im`` text, ``per_line`` complex numbers
    (``2 per_line`` fields of :data:`_NUMBER`) a line."""
    values = np.column_stack([samples.real, samples.imag]).ravel()
    values = np.where(np.abs(values) < _SMALLEST, 0.0, values)
    fields = 2 * per_line
    return "".join(
        "".join(_NUMBER.format(v) for v in values[i : i + fields]) + "\n"
        for i in range(0, values.size, fields)
    )


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def lcmodel_basis_names(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The names LCModel reads for ``names``: each cut to its first
    :data:`LCMODEL_NAME_CHARS` characters, as LCModel's namelist read of ``METABO`` keeps them.

    Raises
    ------
    InvalidDataError
        Two names that become one, or a name that is empty once cut.
    """
    short = tuple(n.strip()[:LCMODEL_NAME_CHARS] for n in names)
    for name, cut in zip(names, short, strict=True):
        if not cut:
            raise InvalidDataError(f"basis metabolite {name!r} has no name LCModel can use")
        others = [n for n, c in zip(names, short, strict=True) if c == cut and n != name]
        if others:
            raise InvalidDataError(
                f"basis metabolites {name!r} and {others[0]!r} are both {cut!r} to LCModel, "
                f"which keeps {LCMODEL_NAME_CHARS} characters of a name; rename one (or write "
                "a .npz basis instead)"
            )
    return short


def _basis_fwhm_ppm(basis: BasisSet) -> float | None:
    """``FWHMBA``: the basis' one line width in ppm, from ``metadata["fwhm_hz"]`` (one value,
    or a list of one value per metabolite, all equal); None when not recorded or not one."""
    widths = basis.metadata.get("fwhm_hz")
    if widths is None:
        return None
    widths = list(widths) if isinstance(widths, (list, tuple)) else [widths]
    if not widths or any(w is None for w in widths) or len({float(w) for w in widths}) != 1:
        return None
    fwhm_hz = float(widths[0])
    return fwhm_hz / basis.spectrometer_freq_mhz if fwhm_hz > 0 else None


def write_lcmodel_basis(
    path: str | os.PathLike, basis: BasisSet, *, overwrite: bool = False
) -> Path:
    """Write ``basis`` as an LCModel ``.BASIS`` file (atomically), as LCModel's ``makebasis``
    lays one out and LCModel reads it (``LCModel.f``, the ``$BASIS1``/``$BASIS`` reads).

    * ``$SEQPAR``: ``HZPPPM``; ``FWHMBA`` (ppm) from ``metadata["fwhm_hz"]`` when it holds one
      width (else left out: LCModel's default); ``ECHOT`` (ms) and ``SEQ`` when recorded.
    * ``$BASIS1``: ``IDBASI`` (scaloquant's version and the source's name), ``FMTBAS =
      '(6E16.8)'`` (9 significant digits), ``BADELT`` (dwell time, s), ``NDATAB = 2 n_points``.
    * per metabolite ``$NMUSED`` (``FILRAW``, the source) and ``$BASIS`` (``ID``, ``METABO`` as
      :func:`lcmodel_basis_names`, ``CONC = TRAMP = VOLUME = 1``, ``ISHIFT = 0``), then the
      ``NDATAB`` complex points of ``fft(r_[conj(fid), zeros(n_points)], norm="ortho")``: the
      spectrum of the FID in LCModel's orientation zero-filled to twice its length, as
      :func:`read_lcmodel_basis` undoes it (and as the ISMRM 2016 basis is made).

    LCModel takes 0 Hz of a basis as 4.65 ppm; a basis on another ``ppm_reference`` is moved
    there first (:func:`~scaloquant.signal.match.to_grid`, the grid's rule of a ppm reference),
    so its peaks keep their ppm. Concentrations that LCModel fits with the file are in the units of the FIDs.

    Parameters
    ----------
    path : output file; refused if it exists unless ``overwrite``.
    basis : FIDs ``(n_metabolites, n_points)``, internal orientation, ``n_points <= 65536``.

    Raises
    ------
    InvalidDataError
        More points than LCModel holds, or two names LCModel would read as one.
    """
    path = Path(path)
    n_points = basis.n_points
    if 2 * n_points > _MAX_NDATAB:
        raise InvalidDataError(
            f"{path.name}: LCModel holds basis spectra of at most {_MAX_NDATAB // 2} points, "
            f"this basis has {n_points}; truncate it or write a .npz basis instead"
        )
    names = lcmodel_basis_names(basis.names)
    # moved to 4.65 ppm by the grid's own rule of a ppm reference (as a basis goes to data)
    at_lcmodel = replace(basis.acquisition, ppm_reference=LCMODEL_BASIS_PPM_REFERENCE)
    fids, _ = to_grid(basis.fids, basis.acquisition, at_lcmodel, dwell_time_s=basis.dwell_time_s)
    on_disk = np.conj(fids)  # internal convention -> LCModel sign
    spectra = np.fft.fft(
        np.concatenate([on_disk, np.zeros_like(on_disk)], axis=1), axis=1, norm="ortho"
    )
    source = Path(str(basis.provenance.get("source", "") or "")).name
    idbasi = f"scaloquant {__version__}" + (f": {source}" if source else "")
    seqpar = [f" HZPPPM = {basis.spectrometer_freq_mhz!r}"]
    fwhm_ppm = _basis_fwhm_ppm(basis)
    if fwhm_ppm is not None:
        seqpar.insert(0, f" FWHMBA = {fwhm_ppm!r}")
    if basis.metadata.get("echo_time_ms") is not None:
        seqpar.append(f" ECHOT = {float(basis.metadata['echo_time_ms'])!r}")
    if basis.metadata.get("sequence"):
        seqpar.append(f" SEQ = {_quoted(str(basis.metadata['sequence']))}")
    parts = [
        " $SEQPAR\n" + ",\n".join(seqpar) + "\n $END\n",
        " $BASIS1\n"
        f" IDBASI = {_quoted(idbasi[:_IDBASI_CHARS])},\n"
        " FMTBAS = '(6E16.8)',\n"
        f" BADELT = {basis.dwell_time_s!r},\n"
        f" NDATAB = {2 * n_points}\n"
        " $END\n",
    ]
    for name, short, spectrum in zip(basis.names, names, spectra, strict=True):
        parts.append(
            f" $NMUSED\n FILRAW = {_quoted(source or name)}\n $END\n"
            " $BASIS\n"
            f" ID = {_quoted(name[:_ID_CHARS])},\n"
            f" METABO = {_quoted(short)},\n"
            " CONC = 1.,\n TRAMP = 1.,\n VOLUME = 1.,\n ISHIFT = 0\n"
            " $END\n" + _rows(spectrum, per_line=3)
        )
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text("".join(parts))
    return path
