"""The basis set resampled to the data's grid, as FSL-MRS resamples its basis (``core/basis.py``).

A fit compares data with basis spectra bin by bin, so both must share one grid. Converting the
*basis* rather than the data keeps the measured samples and their noise untouched: the basis is
noiseless, so interpolating it costs nothing but a tiny Gibbs ripple near ``t = 0``
(:func:`scaloquant.signal.match.resample_fid`). The steps, in order:

1. **Nucleus** must match and the **spectrometer frequency** must be within
   :data:`~scaloquant.signal.match.SAME_FIELD_RTOL` (5 %, the same nominal field): otherwise
   :class:`~scaloquant.errors.IncompatibleDataError` (a 7 T spectrum needs a 7 T basis).
2. **ppm reference**: the basis FIDs are multiplied by ``exp(2 pi i (r_b - r_d) F_b t)`` so that
   0 Hz is the data's reference ``r_d`` (an exact shift; every peak keeps its ppm).
3. **Vendor frequency** ``F_d != F_b``: the basis dwell time is re-labelled
   ``dwell_b * F_b / F_d``, which multiplies every frequency in Hz by ``F_d / F_b``: a peak at
   ``(p - r_d) F_b`` Hz moves to ``(p - r_d) F_d`` Hz, i.e. stays at ``p`` ppm on the data's
   scale, and keeps its width in ppm. J-coupling splittings (fixed in Hz) are scaled by the
   same 3-4 %, far below a linewidth at 3 T.
4. **Dwell time**: band-limited Fourier resampling of the basis FIDs to the data's dwell time
   over the same duration (:func:`~scaloquant.signal.match.resample_fid`).
5. **Points**: truncation or zero-filling at the end to the data's number of points.

Each step that changed something is reported in one sentence.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..errors import IncompatibleDataError
from ..types import Acquisition, BasisSet
from . import axes
from .match import DWELL_RTOL, PPM_REFERENCE_ATOL, SAME_FIELD_RTOL, fit_length, resample_fid


def basis_on_grid(basis: BasisSet, target: Acquisition) -> tuple[BasisSet, tuple[str, ...]]:
    """The basis set on the data's acquisition grid ``target`` (module docstring).

    Parameters
    ----------
    basis : basis FIDs ``(M, N_b)`` on their own grid.
    target : the data's grid.

    Returns
    -------
    ``(basis on target, conversions)``: a new :class:`BasisSet` whose acquisition equals
    ``target`` exactly, and one sentence per conversion applied (empty when none).

    Raises
    ------
    IncompatibleDataError : another nucleus, or a spectrometer frequency more than 5 % away.
    """
    src = basis.acquisition
    if src.nucleus != target.nucleus:
        raise IncompatibleDataError(
            f"the data are {target.nucleus} and the basis set {src.nucleus}; use a basis set "
            f"for {target.nucleus}"
        )
    freq_rel = abs(target.spectrometer_freq_mhz - src.spectrometer_freq_mhz) / (
        src.spectrometer_freq_mhz
    )
    if freq_rel > SAME_FIELD_RTOL:
        raise IncompatibleDataError(
            f"the data were acquired at {target.spectrometer_freq_mhz:g} MHz and the basis set "
            f"is for {src.spectrometer_freq_mhz:g} MHz ({100 * freq_rel:.0f}% apart, another "
            "field strength): use a basis set simulated for the data's field"
        )
    fids = basis.fids
    dwell_s = src.dwell_time_s
    conversions: list[str] = []
    shift_ppm = src.ppm_reference - target.ppm_reference
    if abs(shift_ppm) > PPM_REFERENCE_ATOL:
        shift_hz = shift_ppm * src.spectrometer_freq_mhz
        fids = fids * np.exp(2j * np.pi * shift_hz * axes.time_axis_s(fids.shape[-1], dwell_s))
        conversions.append(
            f"basis shifted by {shift_hz:+.4g} Hz so that 0 Hz is {target.ppm_reference:g} ppm"
        )
    if target.spectrometer_freq_mhz != src.spectrometer_freq_mhz:
        dwell_s = dwell_s * src.spectrometer_freq_mhz / target.spectrometer_freq_mhz
        conversions.append(
            f"basis rescaled from {src.spectrometer_freq_mhz:g} to "
            f"{target.spectrometer_freq_mhz:g} MHz keeping chemical shifts (dwell time "
            f"re-labelled {src.dwell_time_s * 1e3:.6g} -> {dwell_s * 1e3:.6g} ms)"
        )
    if not math.isclose(dwell_s, target.dwell_time_s, rel_tol=DWELL_RTOL):
        n_before = fids.shape[-1]
        fids = resample_fid(fids, dwell_s, target.dwell_time_s)
        conversions.append(
            f"basis Fourier-resampled to the data's dwell time {target.dwell_time_s * 1e3:g} ms "
            f"({1 / dwell_s:.6g} -> {1 / target.dwell_time_s:g} Hz): {n_before} -> "
            f"{fids.shape[-1]} points"
        )
    if fids.shape[-1] != target.n_points:
        verb = "zero-filled" if fids.shape[-1] < target.n_points else "truncated"
        conversions.append(f"basis {verb} {fids.shape[-1]} -> {target.n_points} points")
        fids = fit_length(fids, target.n_points)
    if not conversions:
        return basis, ()
    provenance = {**basis.provenance, "conversions": [*conversions]}
    on_grid = replace(
        basis,
        fids=fids,
        dwell_time_s=target.dwell_time_s,
        spectrometer_freq_mhz=target.spectrometer_freq_mhz,
        ppm_reference=target.ppm_reference,
        provenance=provenance,
    )
    return on_grid, tuple(conversions)
