"""Residual water removed from FIDs by HLSVD before the fit, as Osprey, FSL-MRS and TARQUIN do.

A water-suppressed spectrum keeps a residual water line near 4.7 ppm that is often tens of times
the NAA singlet (the suspect Siemens PRESS spectrum: 25 times). Its tails reach into the fit's
window (to 4.2 ppm and below), where the penalised baseline, stiff by design, cannot follow them
and the metabolites and macromolecules absorb them instead. HLSVD (Barkhuijsen et al., J Magn
Reson 73:553, 1987; Pijnappel et al., J Magn Reson 97:122, 1992) models the FID as a sum of
:data:`HLSVD_COMPONENTS` damped complex exponentials from the SVD of its Hankel matrix; the
components whose frequency lies in the water band (:data:`WATER_BAND_PPM`) are subtracted from the
whole FID. Only those are touched: a metabolite line below the band stays in the data.

The same decomposition measures a line's signal at t = 0 apart from the rest of the FID
(:func:`band_amplitude`): the singlet metabolite of a simulated basis set whose FID also holds a
reference peak (the ISMRM 2016 basis' 0 ppm singlet) or a first point that is not the signal's
value at t = 0 (LCModel's makebasis halves it). Not for in-vivo water references: their lines are
no sum of a few exponentials and their first samples are altered, and on the Philips ones the
value at t = 0 moved by 10-30 % with the samples the decomposition started from
(:func:`scaloquant.quantify.water.water_area` extrapolates their magnitude instead).
"""

from __future__ import annotations

import numpy as np

from . import axes

#: Damped exponentials of the HLSVD model (Osprey and FSL-MRS use 20-25).
HLSVD_COMPONENTS = 25
#: Samples of the FID the Hankel matrix is built from (the signal has decayed by then).
HLSVD_POINTS = 512
#: Components with a frequency in this band (ppm) are taken as water and removed: above the
#: fit's window (LCModel's and FSL-MRS's end at 4.0-4.2 ppm; the highest brain metabolite line
#: in it, Ins/Cr near 4.05-4.1 ppm, lies well below), up to beyond any referencing error.
WATER_BAND_PPM = (4.4, 5.2)


def hlsvd_components(
    fid: np.ndarray, dwell_time_s: float, n_components: int = HLSVD_COMPONENTS
) -> tuple[np.ndarray, np.ndarray]:
    """HLSVD of one FID ``(N,)`` (its first :data:`HLSVD_POINTS` samples) as
    ``sum_k c_k z_k^n``: ``(frequencies Hz (K,), stacked (c, z) (2, K))``."""
    n = min(fid.shape[-1], HLSVD_POINTS)
    x = fid[:n]
    rows = n // 2
    hankel = np.lib.stride_tricks.sliding_window_view(x, n - rows + 1)[:rows]
    u, _, _ = np.linalg.svd(hankel, full_matrices=False)
    k = min(n_components, u.shape[1])
    uk = u[:, :k]
    poles = np.linalg.eigvals(np.linalg.lstsq(uk[:-1], uk[1:], rcond=None)[0])
    # growing components (noise, truncation) are given no growth, so the powers stay finite
    poles = np.where(np.abs(poles) > 1.0, poles / np.abs(poles), poles)
    vander = poles[None, :] ** np.arange(n)[:, None]
    amps = np.linalg.lstsq(vander, x, rcond=None)[0]
    freq_hz = np.angle(poles) / (2 * np.pi * dwell_time_s)
    return freq_hz, np.stack([amps, poles])


def band_components(
    fid: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    band_ppm: tuple[float, float],
    n_points: int = HLSVD_POINTS,
    skip: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The HLSVD components of one FID ``(N,)`` whose frequency lies in ``band_ppm``, as
    ``sum_k c_k z_k^n`` over the FID's samples ``n``: ``(c (K,), z (K,))``. The decomposition
    uses samples ``skip .. skip + n_points`` only (``skip = 1`` leaves out a first point that is
    not the signal's value at t = 0) and its amplitudes are carried back to ``n = 0``."""
    start = min(skip, fid.shape[-1] - 1)
    freq_hz, (amps, poles) = hlsvd_components(fid[start : start + n_points], dwell_time_s)
    ppm = axes.hz_to_ppm(freq_hz, spectrometer_freq_mhz, ppm_reference)
    inside = (ppm >= band_ppm[0]) & (ppm <= band_ppm[1]) & (np.abs(poles) > 0)
    return amps[inside] * poles[inside] ** (-start), poles[inside]


def band_amplitude(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    band_ppm: tuple[float, float],
    n_points: int = HLSVD_POINTS,
) -> np.ndarray:
    """The value at t = 0 of the lines of FIDs ``(..., N)`` in ``band_ppm``: the sum of their
    HLSVD components' amplitudes (:func:`band_components`, first point left out: it is the
    extrapolation of samples 1, 2, ... back to t = 0). The integral of those lines' spectrum,
    whatever their shape, without the signal outside the band. Shape ``(...)``, complex; 0 for
    an all-zero FID."""
    x = np.asarray(fids, dtype=np.complex128)
    flat = x.reshape(-1, x.shape[-1])
    out = np.zeros(flat.shape[0], dtype=np.complex128)
    for b, fid in enumerate(flat):
        if np.any(fid):
            amps, _ = band_components(
                fid, dwell_time_s, spectrometer_freq_mhz, ppm_reference, band_ppm, n_points, skip=1
            )
            out[b] = amps.sum()
    return out.reshape(x.shape[:-1])


def remove_water(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    band_ppm: tuple[float, float] = WATER_BAND_PPM,
) -> np.ndarray:
    """FIDs ``(B, N)`` (the orientation of :mod:`scaloquant.signal.axes`) less their HLSVD
    components in ``band_ppm``."""
    out = np.array(fids, dtype=np.complex128, copy=True)
    n = out.shape[-1]
    steps = np.arange(n)
    for b in range(out.shape[0]):
        if not np.any(out[b]):
            continue
        amps, poles = band_components(
            out[b], dwell_time_s, spectrometer_freq_mhz, ppm_reference, band_ppm
        )
        if amps.size:
            out[b] -= (amps[None, :] * poles[None, :] ** steps[:, None]).sum(-1)
    return out
