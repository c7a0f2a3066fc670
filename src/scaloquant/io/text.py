"""Plain-text FIDs: one row per time point, whitespace-separated columns.

Format
------
* 2 columns: ``re im`` of one FID (the ISMRM 2016 basis ``text/`` files).
* 4 columns: ``re im`` of the water-suppressed FID, then ``re im`` of the water reference FID
  (the ISMRM 2016 fitting-challenge data layout).

Lines starting with ``#`` or ``%`` are comments. The files record no dwell time or frequency:
the caller supplies them.

Convention
----------
Like LCModel files, the ISMRM text files hold the complex conjugate of the internal
convention of :mod:`scaloquant.signal.axes` (checked: NAA lands at 2.006 ppm only after
conjugation). The reader conjugates; nothing else in scaloquant knows about it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ConfigError, InputFileError
from ..signal import axes
from ..types import FID
from ._common import parse_floats, read_text, require_finite, require_grid

_COLUMNS = {"metabolite": 0, "water": 2}


def read_text_fid(
    path: str | os.PathLike,
    *,
    dwell_time_s: float | None = None,
    spectrometer_freq_mhz: float | None = None,
    ppm_reference: float = axes.DEFAULT_PPM_REFERENCE_1H,
    signal: Literal["metabolite", "water"] = "metabolite",
) -> FID:
    """Read a 2- or 4-column text FID.

    Parameters
    ----------
    path : the file.
    dwell_time_s, spectrometer_freq_mhz : required (the format does not record them), s and MHz.
    ppm_reference : chemical shift of 0 Hz, ppm.
    signal : ``"water"`` reads columns 3-4 of a 4-column file (the water reference FID).

    Returns
    -------
    FID with samples of shape ``(n_points,)`` in the internal convention.
    """
    if signal not in _COLUMNS:
        raise ConfigError(f"signal must be one of {', '.join(_COLUMNS)}, got {signal!r}")
    text = read_text(path)
    path = Path(path)
    dwell_time_s, spectrometer_freq_mhz = require_grid(dwell_time_s, spectrometer_freq_mhz, path)
    rows = [
        line.split()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "%"))
    ]
    widths = {len(r) for r in rows}
    if not rows or len(widths) != 1 or widths.pop() not in (2, 4):
        raise InputFileError(
            f"{path} is not a text FID: every row must have 2 (re im) or 4 (re im water_re "
            "water_im) columns; the file is truncated, garbled or in another format"
        )
    values = parse_floats([t for r in rows for t in r], path).reshape(len(rows), -1)
    if signal == "water" and values.shape[1] != 4:
        raise InputFileError(
            f"{path} has 2 columns and no water FID; the water reference needs a 4-column file"
        )
    col = _COLUMNS[signal]
    file_fid = require_finite(values[:, col] + 1j * values[:, col + 1], path)
    return FID(
        samples=np.conj(file_fid),  # ISMRM text sign -> internal convention
        dwell_time_s=dwell_time_s,
        spectrometer_freq_mhz=spectrometer_freq_mhz,
        ppm_reference=ppm_reference,
        provenance={
            "source": str(path),
            "format": "text",
            "name": path.stem,
            "signal": signal,
            "n_columns": int(values.shape[1]),
        },
    )
