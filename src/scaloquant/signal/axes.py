"""The one place where scaloquant's frequency and ppm convention lives.

Internal orientation (FSL-MRS's internal one)
---------------------------------------------
* A FID is sampled at ``t_n = n * dwell_time_s``, ``n = 0 .. N-1``; the first point is not scaled.
* Its spectrum is ``fftshift(fft(fid))`` (numpy's forward FFT, ``exp(-2 pi i k n / N)``, no
  normalisation).  A component ``exp(+2 pi i f t)`` therefore appears at frequency ``+f``.
* The frequency axis is ``fftshift(fftfreq(N, dwell_time_s))`` in Hz, relative to the receiver.
* ``ppm = ppm_reference + f / spectrometer_freq_mhz``: ppm *increases* with the frequency index.
  (Spectra are drawn with the ppm axis reversed, as MRS users expect, only when plotting.)
* ``ppm_reference`` is the chemical shift of the receiver frequency, 4.65 ppm for the ISMRM 2016
  basis and 4.65 for 1H by default (the water resonance near body temperature).

Files store the other orientation
---------------------------------
The NIfTI-MRS specification (Appendix A, Levitt's convention) stores the complex conjugate of the
internal samples: on disk, with ``fftshift(fft(fid))`` the chemical shift *decreases* with the
index, ``ppm = ppm_reference - f / spectrometer_freq_mhz``. LCModel ``.RAW``/``.H2O``/``.BASIS``,
the ISMRM 2016 text files and spec2nii's vendor conversions are in that orientation too; jMRUI
text files and FSL-MRS's internal arrays are in the internal one. Each reader and writer in
:mod:`scaloquant.io` converts its format (see the table in its package docstring), nowhere else;
a file that arrives the other way can be read with ``conjugate=True`` (``--conjugate``), and
:func:`scaloquant.signal.mirror.mirror_ratio` and
:func:`~scaloquant.signal.mirror.looks_mirrored` flag spectra that look mirrored.
"""

from __future__ import annotations

import numpy as np

#: Default receiver reference for 1H MRS, ppm (ISMRM 2016 challenge basis: 0 Hz = 4.65 ppm).
DEFAULT_PPM_REFERENCE_1H = 4.65
#: The chemical-shift window of 1H metabolites, ppm (low, high): the fit's default range
#: (:class:`scaloquant.fit.FitConfig`), what a 1H model or basis needs the data to cover
#: (:mod:`scaloquant.signal.match`, rule 4) and what the report's fit figures draw.
WINDOW_PPM_1H = (0.2, 4.2)


def time_axis_s(n_points: int, dwell_time_s: float) -> np.ndarray:
    """Sample times ``n * dwell_time_s`` in seconds, shape ``(n_points,)``."""
    return np.arange(n_points) * float(dwell_time_s)


def frequency_axis_hz(n_points: int, dwell_time_s: float) -> np.ndarray:
    """Frequencies of ``spectrum(fid)`` bins in Hz, increasing, shape ``(n_points,)``."""
    return np.fft.fftshift(np.fft.fftfreq(n_points, float(dwell_time_s)))


def ppm_axis(
    n_points: int, dwell_time_s: float, spectrometer_freq_mhz: float, ppm_reference: float
) -> np.ndarray:
    """Chemical shift of each ``spectrum(fid)`` bin in ppm, increasing, shape ``(n_points,)``."""
    return ppm_reference + frequency_axis_hz(n_points, dwell_time_s) / float(spectrometer_freq_mhz)


def hz_to_ppm(freq_hz, spectrometer_freq_mhz: float, ppm_reference: float):
    """Receiver-relative frequency in Hz -> chemical shift in ppm."""
    return ppm_reference + np.asarray(freq_hz) / float(spectrometer_freq_mhz)


def ppm_to_hz(shift_ppm, spectrometer_freq_mhz: float, ppm_reference: float):
    """Chemical shift in ppm -> receiver-relative frequency in Hz."""
    return (np.asarray(shift_ppm) - ppm_reference) * float(spectrometer_freq_mhz)


def spectrum(fid: np.ndarray, n_fft: int | None = None) -> np.ndarray:
    """Spectrum of ``fid`` on the axes above: ``fftshift(fft(fid, n_fft))`` along the last axis.

    ``fid`` has shape ``(..., n_points)``; ``n_fft > n_points`` zero-fills.
    """
    return np.fft.fftshift(np.fft.fft(fid, n=n_fft, axis=-1), axes=-1)


def fid_from_spectrum(spec: np.ndarray) -> np.ndarray:
    """Inverse of :func:`spectrum` (without zero-filling): ``ifft(ifftshift(spec))``."""
    return np.fft.ifft(np.fft.ifftshift(spec, axes=-1), axis=-1)
