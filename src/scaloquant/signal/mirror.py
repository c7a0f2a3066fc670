"""The mirror test: a 1H brain spectrum stored in the wrong orientation.

:func:`mirror_ratio` tells a 1H brain spectrum stored in the wrong orientation (the complex
conjugate: mirrored about the receiver frequency, NAA at 7.3 ppm instead of 2.0) from one stored
correctly. It compares the peak signal in the metabolite window (0.5-4.2 ppm) with that in its
mirror image about ``ppm_reference`` (5.1-8.8 ppm for 4.65 ppm), where a brain spectrum has next
to nothing. Broad features (residual water and its tails, which sit at the reference and are
symmetric under the mirror, and baseline) are removed first by subtracting a running median of
the magnitude spectrum (:data:`~.median.PEAK_WINDOW_PPM` wide), so that only peaks narrower
than that count.

Measured on real and challenge spectra (``tests/unit/test_signal_quality.py``): correctly stored
metabolite spectra give ratios of 0.04-0.54 (the highest for metabolite-nulled macromolecule
spectra and the lowest-SNR challenge spectra), their mirror images 1.85-25, and pure noise about
0.9. Above :data:`MIRRORED_RATIO` a spectrum is flagged as mirrored.

The lines it sums are :mod:`.median`'s; the flags and the map of the quality checks' modules
are :mod:`.quality`'s.
"""

from __future__ import annotations

import numpy as np

from . import axes
from .median import _line_peaks, _read_range

#: Metabolite window of 1H brain spectra, ppm (NAA 2.01, Cr 3.03, Cho 3.2, Ins 3.56, Lac 1.33).
METABOLITE_WINDOW_PPM = (0.5, 4.2)


#: A mirror ratio above this flags a spectrum as mirrored (noise alone gives about 0.9).
MIRRORED_RATIO = 1.5


def mirror_ratio(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    *,
    spectrum: np.ndarray | None = None,
) -> np.ndarray:
    """Peak signal in the mirror image of the metabolite window over that in the window.

    Parameters
    ----------
    fids : complex FIDs in the internal orientation, shape ``(..., n_points)``.
    dwell_time_s, spectrometer_freq_mhz, ppm_reference : the acquisition grid.
    spectrum : their FFT along the last axis, ``(prod(...), n_points)``, where already formed
        (:func:`~.quality.quality_figures`'s single-precision one); else it is formed here.

    Returns
    -------
    Ratios, shape ``(...)``: below 1 for a correctly stored 1H brain spectrum, above
    :data:`MIRRORED_RATIO` for a mirrored one (inf when all peaks are in the mirror window); NaN
    where the spectral width does not cover both windows or the spectrum has no peaks at all
    (an empty FID).
    """
    fids = np.asarray(fids)
    n_points = fids.shape[-1]
    ppm = axes.ppm_axis(n_points, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    low, high = METABOLITE_WINDOW_PPM
    inside = (ppm >= low) & (ppm <= high)
    mirror = (ppm >= 2 * ppm_reference - high) & (ppm <= 2 * ppm_reference - low)
    batch = fids.shape[:-1]
    if ppm.min() > low or ppm.max() < 2 * ppm_reference - low:
        return np.full(batch, np.nan)
    raw = np.fft.fft(fids.reshape(-1, n_points), axis=-1) if spectrum is None else spectrum
    lo, hi = _read_range(inside | mirror, n_points, dwell_time_s, spectrometer_freq_mhz)
    peaks = _line_peaks(raw, lo, hi, n_points, dwell_time_s, spectrometer_freq_mhz)
    return _mirror_from_peaks(peaks, inside[lo:hi], mirror[lo:hi]).reshape(batch)


def _mirror_from_peaks(peaks: np.ndarray, inside: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """:func:`mirror_ratio` ``(B,)`` from :func:`~.median._line_peaks` ``(B, L)`` and the masks
    ``(L,)``
    of the metabolite window and its mirror image."""
    signal = peaks[:, inside].sum(axis=1)
    mirrored = peaks[:, mirror].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(signal > 0, mirrored / signal, np.where(mirrored > 0, np.inf, np.nan))


def looks_mirrored(ratio: np.ndarray | float) -> np.ndarray:
    """Whether :func:`mirror_ratio` flags a spectrum (False where it is NaN)."""
    ratio = np.asarray(ratio, dtype=float)
    return np.nan_to_num(ratio, nan=0.0) > MIRRORED_RATIO
