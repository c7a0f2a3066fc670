"""Residual water removed from FIDs by HLSVD before the fit, as Osprey, FSL-MRS and TARQUIN do.

A water-suppressed spectrum keeps a residual water line near 4.7 ppm that is often tens of times
the NAA singlet (the suspect Siemens PRESS spectrum: 25 times). Its tails reach into the fit's
window (to 4.2 ppm and below), where the penalised baseline, stiff by design, cannot follow them
and the metabolites and macromolecules absorb them instead. HLSVD (Barkhuijsen et al., J Magn
Reson 73:553, 1987; Pijnappel et al., J Magn Reson 97:122, 1992) models the FID as a sum of
:data:`HLSVD_COMPONENTS` damped complex exponentials from the SVD of its Hankel matrix; the
components whose frequency lies in the water band (:data:`WATER_BAND_PPM`) are subtracted from the
whole FID. Only those are touched: a metabolite line below the band stays in the data.
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
        freq_hz, (amps, poles) = hlsvd_components(out[b], dwell_time_s)
        ppm = axes.hz_to_ppm(freq_hz, spectrometer_freq_mhz, ppm_reference)
        water = (ppm >= band_ppm[0]) & (ppm <= band_ppm[1])
        if water.any():
            out[b] -= (amps[water][None, :] * poles[water][None, :] ** steps[:, None]).sum(-1)
    return out
