"""jMRUI text files (``.txt`` starting with ``jMRUI Data Textfile``).

Format
------
A header of ``Key: value`` lines (``PointsInDataset``, ``DatasetsInFile``, ``SamplingInterval`` in
**ms**, ``TransmitterFrequency`` in **Hz**, ``MagneticField`` in T, ...), then for each signal a
line ``Signal k out of n in file`` followed by ``PointsInDataset`` rows of ``re im`` (the FID) or
``re im re_spec im_spec`` (FID and its spectrum; the spectrum columns are ignored).

Convention
----------
jMRUI files are already in the internal orientation of :mod:`scaloquant.signal.axes`:
no conjugation (checked: the ISMRM 2016 ``jmrui/NAA.txt`` equals ``conj(text/NAA.txt)`` and its
NAA singlet lands at 2.006 ppm as stored).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import InputFileError, InvalidDataError
from ..signal import axes
from ..types import FID
from ._common import (
    parse_floats,
    read_text,
    recorded_grid,
    require_complete_last_row,
    require_count,
    require_finite,
    require_grid,
    unique_keys,
)

#: First line of every jMRUI text file; :func:`scaloquant.io.read_fid` sniffs it.
MAGIC = "jMRUI Data Textfile"
_SIGNAL_LINE = re.compile(r"^\s*Signal\s+\d+\s+out\s+of\s+\d+", re.IGNORECASE | re.MULTILINE)


def _header(text: str, path: Path) -> dict[str, str]:
    """The ``Key: value`` lines (a key given twice with two values is refused:
    :func:`~scaloquant.io._common.unique_keys`)."""
    pairs = (
        (key.strip(), value.strip())
        for key, sep, value in (line.partition(":") for line in text.splitlines())
        if sep and key.strip()
    )
    return unique_keys(pairs, path, "header {key} is given twice")


def _header_float(fields: dict[str, str], key: str, path: Path) -> float | None:
    value = fields.get(key, "")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise InputFileError(
            f"{path}: header {key}: {value!r} is not a number; fix the header"
        ) from None


def _header_count(fields: dict[str, str], key: str, path: Path) -> int | None:
    value = _header_float(fields, key, path)
    if value is not None and (value < 1 or value != int(value)):
        raise InputFileError(f"{path}: header {key}: {value:g} is not a positive whole number")
    return None if value is None else int(value)


def read_jmrui_txt(
    path: str | os.PathLike,
    *,
    dwell_time_s: float | None = None,
    spectrometer_freq_mhz: float | None = None,
    ppm_reference: float = axes.DEFAULT_PPM_REFERENCE_1H,
) -> FID:
    """Read a jMRUI text file.

    Parameters
    ----------
    path : the file.
    dwell_time_s, spectrometer_freq_mhz : override the header's ``SamplingInterval`` (ms) and
        ``TransmitterFrequency`` (Hz), in s and MHz.
    ppm_reference : chemical shift of 0 Hz, ppm.

    Returns
    -------
    FID with samples ``(n_points,)`` for one signal or ``(n_signals, n_points)`` for several.
    """
    text = read_text(path)
    path = Path(path)
    if not text.lstrip().startswith(MAGIC):
        raise InputFileError(f"{path} does not start with {MAGIC!r}; it is not a jMRUI text file")
    starts = list(_SIGNAL_LINE.finditer(text))
    if not starts:
        raise InputFileError(
            f"{path} has no 'Signal 1 out of N in file' line; the file is truncated or garbled"
        )
    fields = _header(text[: starts[0].start()], path)
    interval_ms = _header_float(fields, "SamplingInterval", path)
    freq_hz = _header_float(fields, "TransmitterFrequency", path)
    if spectrometer_freq_mhz is None and freq_hz is not None and freq_hz < 1e6:
        raise InvalidDataError(
            f"{path}: TransmitterFrequency {freq_hz:g} Hz is below 1 MHz, so not in Hz as "
            "jMRUI specifies; pass --spectrometer-freq-mhz"
        )
    recorded = recorded_grid(
        dwell_time_s=None if interval_ms is None else interval_ms * 1e-3,
        # a value below 1 MHz is not a frequency in Hz: not taken as recorded
        spectrometer_freq_mhz=None if freq_hz is None or freq_hz < 1e6 else freq_hz * 1e-6,
    )
    dwell_time_s, spectrometer_freq_mhz = require_grid(
        dwell_time_s, spectrometer_freq_mhz, path, recorded
    )

    n_points = _header_count(fields, "PointsInDataset", path)
    n_signals = _header_count(fields, "DatasetsInFile", path)
    if n_signals is not None:
        require_count(len(starts), n_signals, path, what="signals")
    signals = []
    for start, nxt in zip(starts, [*starts[1:], None], strict=True):
        body = text[start.end() : nxt.start() if nxt else len(text)]
        rows = [line.split() for line in body.splitlines()[1:] if line.strip()]
        widths = {len(r) for r in rows}
        if len(widths) != 1 or widths - {2, 4}:
            raise InputFileError(
                f"{path}: every data row must hold 2 (re im) or 4 (re im re_spec im_spec) "
                "numbers, all rows alike; the file is truncated or garbled"
            )
        require_count(len(rows), n_points or len(rows), path)
        require_complete_last_row(rows, path)
        signals.append(parse_floats([t for r in rows for t in r[:2]], path).reshape(-1, 2))
    if len({s.shape[0] for s in signals}) != 1:
        raise InvalidDataError(f"{path}: its signals have different numbers of points")
    values = np.array(signals)
    samples = require_finite(values[..., 0] + 1j * values[..., 1], path)  # already internal
    return FID(
        samples=samples[0] if samples.shape[0] == 1 else samples,
        dwell_time_s=dwell_time_s,
        spectrometer_freq_mhz=spectrometer_freq_mhz,
        ppm_reference=ppm_reference,
        provenance={
            "source": str(path),
            "format": "jmrui-text",
            "name": path.stem,
            "header": fields,
            "recorded": recorded,
        },
    )
