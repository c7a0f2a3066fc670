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

Before these steps, :func:`basis_reference_from_singlets` checks the basis' *own* ppm reference:
formats such as LCModel's ``.BASIS`` do not record it (4.65 ppm is assumed), and some tools
write their bases with 0 Hz at another value (Osprey's at 4.68 ppm). The NAA (2.008 ppm) and
Cr (3.027 ppm) CH3 singlets of the basis are located; when both sit more than
:data:`SINGLET_REFERENCE_MIN_PPM` away from where they belong, by the same amount (within
:data:`SINGLET_REFERENCE_AGREE_PPM`), the basis' reference is corrected by that amount.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..metabolites import REFERENCE_SINGLETS, canonical
from ..signal import axes
from ..signal.match import (
    distinct_numbers,
    fitted_length,
    relabelled,
    require_same_field,
    to_grid,
)
from ..types import Acquisition, BasisSet


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
    IncompatibleDataError : another nucleus, or a spectrometer frequency more than 5 % away
        (:func:`scaloquant.signal.match.require_same_field`, the check of ``quantify``).
    """
    src = basis.acquisition
    require_same_field(target, src, source="the data", target_what="the basis set")
    dwell_s = src.dwell_time_s
    rescaled = target.spectrometer_freq_mhz != src.spectrometer_freq_mhz
    if rescaled:  # step 3, for any difference (the data's frequency is the truth)
        dwell_s = dwell_s * src.spectrometer_freq_mhz / target.spectrometer_freq_mhz
    fids, steps = to_grid(basis.fids, src, target, dwell_time_s=dwell_s)
    conversions: list[str] = []
    if steps.shift_hz is not None:
        conversions.append(
            f"basis shifted by {steps.shift_hz:+.4g} Hz so that 0 Hz is "
            f"{target.ppm_reference:g} ppm"
        )
    if rescaled:
        f_from, f_to = distinct_numbers(src.spectrometer_freq_mhz, target.spectrometer_freq_mhz)
        d_from, d_to = distinct_numbers(src.dwell_time_s * 1e3, dwell_s * 1e3)
        conversions.append(
            f"basis rescaled from {f_from} to {f_to} MHz keeping chemical shifts (dwell time "
            f"re-labelled {d_from} -> {d_to} ms)"
        )
    if steps.resampled is not None:
        _, n_before, n_after = steps.resampled
        conversions.append(
            f"basis Fourier-resampled to the data's dwell time {target.dwell_time_s * 1e3:g} ms "
            f"({1 / dwell_s:.6g} -> {1 / target.dwell_time_s:g} Hz): {n_before} -> "
            f"{n_after} points"
        )
    if steps.fitted_from_points is not None:
        conversions.append(f"basis {fitted_length(steps.fitted_from_points, target.n_points)}")
    if not conversions:
        return basis, ()
    provenance = {**basis.provenance, "conversions": [*conversions]}
    return relabelled(basis, target, provenance, fids=fids), tuple(conversions)


def basis_for_data(basis: BasisSet, target: Acquisition) -> tuple[BasisSet, tuple[str, ...]]:
    """The basis as the fit brings it to data on ``target``: its own ppm reference corrected
    from its singlets where needed (:func:`basis_reference_from_singlets`), then on ``target``'s
    grid (:func:`basis_on_grid`); with one sentence per conversion. What the fit's model
    starts from (:func:`scaloquant.fit.spectra.prepared_on_grid`) and what ``simulate
    --grid-from`` renders.

    Raises
    ------
    IncompatibleDataError : as :func:`basis_on_grid`.
    """
    referenced, corrected = basis_reference_from_singlets(basis)
    on_grid, conversions = basis_on_grid(referenced, target)
    return on_grid, (*corrected, *conversions)


#: The singlets that locate a basis' reference and their chemical shifts, ppm: NAA's and Cr's
#: methyls of :data:`~scaloquant.metabolites.REFERENCE_SINGLETS` (2.008, 3.027).
BASIS_REFERENCE_SINGLETS = ("NAA", "Cr")
#: Smallest offset of the singlets that is corrected, ppm: simulated bases place them within
#: 0.003 ppm (line shape of the simulation, digital resolution); 0.01 ppm is 1.3 Hz at 3 T.
SINGLET_REFERENCE_MIN_PPM = 0.01
#: The singlets must agree on the offset within this, ppm (else the basis is left alone).
SINGLET_REFERENCE_AGREE_PPM = 0.005
#: Largest offset corrected, ppm (beyond it the singlets are not where a 1H basis has them).
SINGLET_REFERENCE_MAX_PPM = 0.2


def _singlet_ppm(basis: BasisSet, index: int, expected_ppm: float) -> float:
    """Position (ppm) of the tallest point of the basis spectrum ``index`` within 0.25 ppm of
    ``expected_ppm``, with 1 Hz Lorentzian broadening, 8-fold zero-filling and a parabola."""
    n = basis.n_points
    t = axes.time_axis_s(n, basis.dwell_time_s)
    fid = basis.fids[index] * np.exp(-np.pi * t)
    spec = np.fft.fftshift(np.fft.fft(fid, 8 * n)).real
    freq = np.fft.fftshift(np.fft.fftfreq(8 * n, basis.dwell_time_s))
    ppm = basis.ppm_reference + freq / basis.spectrometer_freq_mhz
    near = np.flatnonzero(np.abs(ppm - expected_ppm) <= 0.25)
    if near.size < 3:
        return math.nan
    k = near[np.argmax(spec[near])]
    if 0 < k < spec.size - 1:
        left, mid, right = spec[k - 1], spec[k], spec[k + 1]
        curv = left - 2 * mid + right
        offset = 0.5 * (left - right) / curv if curv < 0 else 0.0
    else:
        offset = 0.0
    return float(ppm[k] + offset * (ppm[1] - ppm[0]))


def basis_reference_from_singlets(basis: BasisSet) -> tuple[BasisSet, tuple[str, ...]]:
    """The basis with its ppm reference corrected from its NAA and Cr singlets (module
    docstring), and the sentence saying so; the basis as it is (and ``()``) when it lacks
    either singlet, when they sit where they belong, or when they disagree."""
    names = [canonical(n) for n in basis.names]
    offsets = []
    for name in BASIS_REFERENCE_SINGLETS:
        expected = REFERENCE_SINGLETS[name]
        if name not in names:
            return basis, ()
        offsets.append(_singlet_ppm(basis, names.index(name), expected) - expected)
    if not all(math.isfinite(o) for o in offsets):
        return basis, ()
    offset = float(np.mean(offsets))
    if (
        abs(offset) < SINGLET_REFERENCE_MIN_PPM
        or abs(offset) > SINGLET_REFERENCE_MAX_PPM
        or max(offsets) - min(offsets) > SINGLET_REFERENCE_AGREE_PPM
    ):
        return basis, ()
    reference = round(basis.ppm_reference - offset, 3)
    return replace(basis, ppm_reference=reference), (
        f"basis reference taken as {reference:g} ppm (its NAA and Cr singlets sat "
        f"{offset:+.3f} ppm from "
        + " and ".join(f"{REFERENCE_SINGLETS[n]:g}" for n in BASIS_REFERENCE_SINGLETS)
        + f" ppm with 0 Hz at {basis.ppm_reference:g} ppm)",
    )
