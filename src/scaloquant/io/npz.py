"""scaloquant's own basis-set file: a ``.npz`` holding the FIDs and one JSON string of metadata.

Format (``format_version`` 1)
-----------------------------
* ``names``: unicode array ``(n_metabolites,)``.
* ``fids``: complex array ``(n_metabolites, n_points)`` in the internal orientation of
  :mod:`scaloquant.signal.axes`: no conjugation on read or write.
* ``info``: 0-d unicode array, JSON with ``dwell_time_s``, ``spectrometer_freq_mhz``,
  ``ppm_reference``, ``nucleus``, ``metadata``, ``provenance`` and ``format_version``.

The writer is deterministic (fixed zip timestamps, sorted JSON keys), so the same basis gives a
byte-identical file; the embedded default basis is shipped in this format.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from ..errors import InputFileError
from ..paths import require_file
from ..types import BasisSet
from ._common import require_finite
from .atomic import atomic_path

FORMAT_VERSION = 1
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest zip timestamp: keeps files byte-identical


def _plain(obj: Any) -> Any:
    """Mappings and tuples as JSON-able dicts and lists (provenance is read-only mappings)."""
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def write_basis_npz(
    path: str | os.PathLike,
    basis: BasisSet,
    *,
    dtype: Literal["complex64", "complex128"] = "complex128",
    overwrite: bool = False,
) -> Path:
    """Write ``basis`` to ``path`` (atomically, deterministically).

    ``dtype="complex64"`` halves the size; it keeps 7 significant digits, enough for bases
    printed with 6 (LCModel's ``E13.5``).
    """
    info = {
        "format_version": FORMAT_VERSION,
        "dwell_time_s": basis.dwell_time_s,
        "spectrometer_freq_mhz": basis.spectrometer_freq_mhz,
        "ppm_reference": basis.ppm_reference,
        "nucleus": basis.nucleus,
        "metadata": _plain(basis.metadata),
        "provenance": _plain(basis.provenance),
    }
    arrays = {
        "names": np.array(basis.names, dtype=str),
        "fids": basis.fids.astype(dtype),
        "info": np.array(json.dumps(info, sort_keys=True, indent=1, ensure_ascii=False)),
    }
    with atomic_path(path, overwrite=overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for key, arr in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, arr, allow_pickle=False)
                entry = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
                entry.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(entry, buf.getvalue())
    return Path(path)


def read_basis_npz(path: str | os.PathLike) -> BasisSet:
    """Read a basis written by :func:`write_basis_npz`."""
    path = require_file(path)
    with path.open("rb") as f:
        return load_basis_npz(f, str(path))


def load_basis_npz(file: IO[bytes], source: str) -> BasisSet:
    """Read a basis ``.npz`` from an open binary file (``source`` names it in messages).

    Every part is checked for what :func:`write_basis_npz` writes (complex ``fids`` of two
    dimensions, text ``names``, a JSON object whose acquisition values are numbers): a part
    of another type was a traceback (a string or list for a number, a list for the metadata)
    or a plausible basis (real ``fids``, whose spectra are their own mirror images)."""
    try:
        with np.load(file, allow_pickle=False) as npz:
            names, fids, info = npz["names"], npz["fids"], json.loads(str(npz["info"][()]))
        _require_written_by_us(names, fids, info)
        acquisition = {
            k: info[k]
            for k in ("dwell_time_s", "spectrometer_freq_mhz", "ppm_reference", "nucleus")
        }
    except (
        OSError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        zipfile.BadZipFile,
        json.JSONDecodeError,
    ) as err:
        raise InputFileError(
            f"{source} is not a scaloquant basis .npz (format {FORMAT_VERSION}): "
            f"{_what(err):.80}; re-create it with scaloquant"
        ) from None
    return BasisSet(
        names=tuple(str(n) for n in names),
        fids=require_finite(fids.astype(np.complex128), Path(source)),
        metadata=info.get("metadata", {}),
        provenance={**info.get("provenance", {}), "file": source},
        **acquisition,
    )


def _what(err: Exception) -> str:
    """The error's words; a KeyError of a missing ``info`` key says ``no dwell_time_s`` (its
    text alone is the bare key)."""
    if isinstance(err, KeyError) and err.args and str(err.args[0]).isidentifier():
        return f"no {err.args[0]}"
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)


def _require_written_by_us(names: np.ndarray, fids: np.ndarray, info: Any) -> None:
    """Raise ``TypeError`` (or ``KeyError``) where a part is not what the writer writes."""
    if not isinstance(info, dict):
        raise TypeError(f"info is a JSON {type(info).__name__}, not an object")
    if info.get("format_version") != FORMAT_VERSION:
        raise KeyError("format_version")
    for key in ("dwell_time_s", "spectrometer_freq_mhz", "ppm_reference"):
        value = info[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"info's {key} is {value!r}, not a number")
    if not isinstance(info["nucleus"], str):
        raise TypeError(f"info's nucleus is {info['nucleus']!r}, not a name")
    for key in ("metadata", "provenance"):
        if not isinstance(info.get(key, {}), dict):
            raise TypeError(f"info's {key} is a JSON {type(info[key]).__name__}, not an object")
    if not np.iscomplexobj(fids) or fids.ndim != 2:
        raise TypeError(
            f"fids are {fids.dtype} of shape {fids.shape}, not complex (metabolites, points)"
        )
    if names.dtype.kind != "U" or names.shape != fids.shape[:1]:
        raise TypeError(
            f"names are {names.dtype} of shape {names.shape}, not {fids.shape[0]} names of the fids"
        )
