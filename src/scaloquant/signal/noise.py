"""The noise of a spectrum: its SD in the signal-free regions.

:func:`noise_sd` is the SD of the real spectrum's noise, from :data:`NOISE_REGIONS_PPM` (a complex
quadratic removed in each region, the regions pooled; the band's edges,
:data:`BAND_EDGE_FRACTION`, left out): what the SNR (:func:`~.quality.snr`), the fit residual
over the noise (:func:`~.quality.residual_over_noise`), the singlets' strength
(:func:`~.quality.singlet_shift`) and the HLSVD's rank (:mod:`.water`) divide by. The spectra it
reads are :mod:`.qc_spectra`'s.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from . import axes
from .qc_spectra import _columns, _Spectra

#: Signal-free regions where the noise is measured, ppm: upfield of every metabolite and lipid
#: (Osprey's and LCModel's -2..0 ppm) and downfield of the amide protons (9-10 ppm). Both are
#: pooled where the spectral width covers them.
NOISE_REGIONS_PPM = ((-2.0, 0.0), (9.0, 10.0))


#: Fraction of the band left out at each edge when looking for noise: the anti-alias filter of
#: the receiver attenuates the last few per cent.
BAND_EDGE_FRACTION = 0.02


#: A noise region with fewer spectral points than this is not used (the SD of fewer is too
#: uncertain: 16 points give it to about 18 %).
MIN_NOISE_POINTS = 16


def _band_mask(ppm: np.ndarray, region: tuple[float, float]) -> np.ndarray:
    edge = BAND_EDGE_FRACTION * (ppm.max() - ppm.min())
    lo, hi = max(region[0], ppm.min() + edge), min(region[1], ppm.max() - edge)
    return (ppm >= lo) & (ppm <= hi)


def _noise_sd(s: _Spectra) -> np.ndarray:
    sum_sq = np.zeros(s.raw.shape[0])
    dof = 0
    for region in NOISE_REGIONS_PPM:
        sel = np.flatnonzero(_band_mask(s.ppm, region))
        if sel.size < MIN_NOISE_POINTS:
            continue
        x = s.ppm[sel] - s.ppm[sel].mean()
        design = np.stack([np.ones_like(x), x, x**2], axis=1)
        values = _columns(s.raw, sel).T.astype(np.complex128)
        coef = np.linalg.lstsq(design, values, rcond=None)[0]
        sum_sq += (np.abs(values - design @ coef) ** 2).sum(axis=0)
        dof += 2 * sel.size - 6
    if dof == 0:
        return np.full(s.raw.shape[0], np.nan)
    return np.sqrt(sum_sq / dof)


def noise_sd(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
) -> np.ndarray:
    """Noise SD of each real part of the spectrum, from the signal-free regions.

    Each region of :data:`NOISE_REGIONS_PPM` inside the band (less :data:`BAND_EDGE_FRACTION`
    at each edge) with at least :data:`MIN_NOISE_POINTS` points has a complex quadratic
    removed (a baseline or water tail is not noise); the residuals of all regions are pooled:
    ``sd = sqrt(sum |r|^2 / (2 K - 6 R))`` for ``K`` points in ``R`` regions.

    Parameters
    ----------
    fids : complex FIDs, ``(..., n_points)``.
    dwell_time_s, spectrometer_freq_mhz, ppm_reference : the acquisition grid.

    Returns
    -------
    ``(...)`` SDs on the scale of ``axes.spectrum`` (unnormalised FFT, no zero-filling); NaN
    where no region is covered.
    """
    fids = np.asarray(fids)
    n = fids.shape[-1]
    ppm = axes.ppm_axis(n, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    raw = scipy.fft.fft(fids.reshape(-1, n), axis=-1)
    return _noise_sd(_Spectra(ppm, raw, ppm, raw)).reshape(fids.shape[:-1])
