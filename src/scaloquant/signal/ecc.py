"""Eddy-current correction of FIDs by the phase of their unsuppressed water reference (Klose,
Magn Reson Med 14:26, 1990).

Eddy currents left by the sequence's gradients add a time-dependent phase ``phi_ec(t)``
(often ``A exp(-t / tau)``) to every signal of the voxel alike: the lines are distorted near
t = 0 (asymmetric feet, a dispersive part no zero-/first-order phase removes). The water
reference, acquired with the same gradients, carries the same phase under a signal hundreds of
times stronger, so the metabolite FID multiplied by ``conj(w) / |w|`` loses it. This is what
the field's tools do: LCModel's ``DOECC`` (``ecc_truncate`` in LCModel.f: ``DATAT * conj(H2OT)
/ |H2OT|``, skipping points where the water is exactly zero), FSL-MRS's
``fsl_mrs.utils.preproc.eddycorrect.eddy_correct`` (the water's angle subtracted from the
data's), Osprey's ``op_eccKlose`` (FID-A: ``exp(-i unwrap(angle(w)))``) and spant's ``ecc()``.

Like all four, the correction takes the water's whole phase, so the water's own frequency
offset from the receiver (its distance from the ppm reference, a few Hz in a shimmed scan) and
its zero-order phase go with it: the corrected spectra have the water at the ppm reference and
the phase the water had (LCModel's ``DOECC`` references and phases the data from the water the
same way). Like them, it needs the water on the data's grid: the same number of points and
dwell time (LCModel reads both with one ``NUNFIL``; FSL-MRS and FID-A multiply the arrays
sample by sample), and is refused otherwise rather than resampled (a resampled water would
not carry the eddy phase at the data's sample times).

Unlike them, the phase is taken only where the water is above its noise: from the first
sample where ``|w|`` falls below :data:`RELIABLE_OVER_NOISE` times the water's noise SD on,
its phase is noise (the tools multiply the data by a random phase there); there the correction
continues the straight line fitted (weighted by ``|w|^2``) to the water's unwrapped phase over
the second half of its reliable samples: its frequency and phase once the eddy current has
decayed (what the eddy current still changes after that is not followed).
"""

from __future__ import annotations

import numpy as np

from ..errors import NeedsOption, Option
from . import noise

#: The water's phase is taken where ``|w|`` is at least this many times its noise SD per
#: sample (the phase's error is then at most ~1/10 rad, one standard deviation).
RELIABLE_OVER_NOISE = 10.0
#: The water's phase is continued beyond its reliable samples only where they are at least
#: twice this many (the line is fitted to the second half of them).
MIN_SLOPE_SAMPLES = 16


def eddy_current_phase(
    water: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The correction's phase ``(..., N)`` (rad, unwrapped) from water FIDs ``(..., N)``, and
    the number of samples ``(...)`` over which it is the water's own (above its noise, see the
    module docstring; beyond them it continues the line fitted to the water's reliable phase)."""
    water = np.asarray(water, dtype=np.complex128)
    n = water.shape[-1]
    flat = water.reshape(-1, n)
    # the noise SD of one sample's real part: the spectral SD (unnormalised FFT) / sqrt(N)
    sd = noise.noise_sd(flat, dwell_time_s, spectrometer_freq_mhz, ppm_reference) / np.sqrt(n)
    # no noise region in the band (NaN): the water's phase is taken throughout, as the tools do
    sd = np.where(np.isfinite(sd), sd, 0.0)
    below = np.abs(flat) < RELIABLE_OVER_NOISE * sd[:, None]
    reliable = np.where(below.any(axis=-1), np.argmax(below, axis=-1), n)
    phase = np.unwrap(np.angle(flat), axis=-1)
    for row in np.flatnonzero(reliable < n):
        k = int(reliable[row])
        if k < 2 * MIN_SLOPE_SAMPLES:
            continue  # too little water above its noise to follow: its phase as it is
        # the water's phase line over the second half of its reliable samples, weighted by
        # |w|^2 (the eddy phase has decayed by then; the phase's noise falls as 1/|w|)
        index = np.arange(k // 2, k)
        weight = np.abs(flat[row, index]) ** 2
        slope, intercept = np.polyfit(index, phase[row, index], 1, w=np.sqrt(weight))
        phase[row, k:] = intercept + slope * np.arange(k, n)
    return phase.reshape(water.shape), reliable.reshape(water.shape[:-1])


def eddy_current_corrected(
    fids: np.ndarray,
    water: np.ndarray,
    *,
    dwell_time_s: float,
    water_dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
) -> tuple[np.ndarray, np.ndarray]:
    """FIDs ``(..., N)`` corrected by the phase of their water reference (Klose 1990).

    Parameters
    ----------
    fids : complex FIDs ``(..., N)``.
    water : complex water FIDs, broadcastable to ``fids`` (one per voxel, or one for all).
    dwell_time_s, water_dwell_time_s : the two grids' dwell times, s (must be equal).
    spectrometer_freq_mhz, ppm_reference : the water's axis (for its noise regions).

    Returns
    -------
    ``fids * exp(-i phi_w)`` ``(..., N)`` with ``phi_w`` from :func:`eddy_current_phase`, and
    the water's reliable sample count ``water.shape[:-1]``.

    Raises
    ------
    NeedsOption
        (an :class:`~scaloquant.errors.IncompatibleDataError`) the water has another number of
        points or dwell time than the data; the message names the option by its key.
    """
    fids = np.asarray(fids)
    water = np.asarray(water)
    if water.shape[-1] != fids.shape[-1] or not np.isclose(
        water_dwell_time_s, dwell_time_s, rtol=1e-6, atol=0.0
    ):
        raise NeedsOption(
            f"eddy-current correction needs the water reference on the data's grid: it has "
            f"{water.shape[-1]} points at {water_dwell_time_s * 1e6:.4g} us, the data "
            f"{fids.shape[-1]} at {dwell_time_s * 1e6:.4g} us; give the water reference "
            "acquired with the data's points and bandwidth, or leave out ",
            Option("ecc"),
        )
    phase, reliable = eddy_current_phase(
        water, water_dwell_time_s, spectrometer_freq_mhz, ppm_reference
    )
    return fids * np.exp(-1j * phase), reliable
