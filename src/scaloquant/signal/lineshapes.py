"""Time-domain decay envelopes of MRS lines and their widths in Hz.

A line decaying as ``exp(-damping_per_s * t)`` is Lorentzian in the spectrum, one decaying as
``exp(-(gaussian_damping_per_s * t) ** 2)`` is Gaussian, and the product of both is a Voigt line
(e.g. de Graaf, *In Vivo NMR Spectroscopy*, 3rd ed., Wiley 2019, ch. 1). The full widths at half
maximum follow from the Fourier transforms of the envelopes:

* Lorentzian: FT of ``exp(-a|t|)`` is ``2a / (a^2 + (2 pi f)^2)``, so FWHM = ``a / pi`` Hz.
* Gaussian: FT of ``exp(-(g t)^2)`` is ``(sqrt(pi)/g) exp(-(pi f / g)^2)``, so
  FWHM = ``2 sqrt(ln 2) g / pi`` Hz.
"""

from __future__ import annotations

import numpy as np

from . import axes

_GAUSSIAN_FWHM_PER_DAMPING = 2.0 * np.sqrt(np.log(2.0)) / np.pi


def lorentzian_decay(damping_per_s, time_s):
    """``exp(-damping_per_s * time_s)``, broadcast over both arguments."""
    return np.exp(-np.asarray(damping_per_s) * np.asarray(time_s))


def gaussian_decay(gaussian_damping_per_s, time_s):
    """``exp(-(gaussian_damping_per_s * time_s) ** 2)``, broadcast over both arguments."""
    return np.exp(-np.square(np.asarray(gaussian_damping_per_s) * np.asarray(time_s)))


def lorentzian_fwhm_hz(damping_per_s):
    """Full width at half maximum in Hz of the line of ``exp(-damping_per_s * t)``."""
    return np.asarray(damping_per_s) / np.pi


def gaussian_fwhm_hz(gaussian_damping_per_s):
    """Full width at half maximum in Hz of the line of ``exp(-(g t)^2)``."""
    return np.asarray(gaussian_damping_per_s) * _GAUSSIAN_FWHM_PER_DAMPING


def gaussian_damping_from_fwhm_hz(fwhm_hz):
    """Inverse of :func:`gaussian_fwhm_hz`: ``g`` in 1/s of a Gaussian line ``fwhm_hz`` wide."""
    return np.asarray(fwhm_hz) / _GAUSSIAN_FWHM_PER_DAMPING


def gaussian_absorption_peak(gaussian_damping_per_s, dwell_time_s: float):
    """Height of the real spectrum, at its centre, of the sampled FID ``exp(-(g n dT)^2)``.

    The unnormalised DFT at the line's own frequency is ``sum_n exp(-(g n dT)^2)``. By the
    Euler-Maclaurin formula this equals ``sqrt(pi) / (2 g dT) + 1/2``: every odd derivative of
    the Gaussian vanishes at ``t = 0``, so the correction terms are exponentially small as long as
    the FID has decayed within the acquisition (``g * n_points * dT`` above about 5).
    """
    g = np.asarray(gaussian_damping_per_s, dtype=np.float64)
    return np.sqrt(np.pi) / (2.0 * g * float(dwell_time_s)) + 0.5


def singlet_fid(
    n_points: int,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    shift_ppm: float,
    *,
    amplitude: float = 1.0,
    damping_per_s: float = 0.0,
    gaussian_damping_per_s: float = 0.0,
) -> np.ndarray:
    """An analytic singlet at ``shift_ppm``: ``a exp(2 pi i f t) exp(-alpha t) exp(-(g t)^2)``.

    Internal convention (:mod:`scaloquant.signal.axes`), so its spectrum peaks at ``shift_ppm``.
    Returns shape ``(n_points,)`` complex128.
    """
    t = axes.time_axis_s(n_points, dwell_time_s)
    freq_hz = axes.ppm_to_hz(shift_ppm, spectrometer_freq_mhz, ppm_reference)
    envelope = lorentzian_decay(damping_per_s, t) * gaussian_decay(gaussian_damping_per_s, t)
    return amplitude * envelope * np.exp(2j * np.pi * freq_hz * t)
