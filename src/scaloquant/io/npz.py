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
    """Read a basis ``.npz`` from an open binary file (``source`` names it in messages)."""
    try:
        with np.load(file, allow_pickle=False) as npz:
            names, fids, info = npz["names"], npz["fids"], json.loads(str(npz["info"][()]))
        if info.get("format_version") != FORMAT_VERSION:
            raise KeyError("format_version")
        acquisition = {
            k: info[k]
            for k in ("dwell_time_s", "spectrometer_freq_mhz", "ppm_reference", "nucleus")
        }
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise InputFileError(
            f"{source} is not a scaloquant basis .npz (format {FORMAT_VERSION}): {err!s:.60}; "
            "re-create it with scaloquant"
        ) from None
    return BasisSet(
        names=tuple(str(n) for n in names),
        fids=require_finite(fids.astype(np.complex128), Path(source)),
        metadata=info.get("metadata", {}),
        provenance={**info.get("provenance", {}), "file": source},
        **acquisition,
    )
