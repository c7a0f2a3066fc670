"""Locating the main peak of a spectrum, on the axes of :mod:`scaloquant.signal.axes`."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from . import axes


def main_peak_ppm(
    fids: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    *,
    ppm_range: tuple[float, float] = (0.2, 4.3),
    zero_fill: int = 16,
) -> np.ndarray:
    """Chemical shift of the highest point of the real spectrum within ``ppm_range``.

    The FIDs are zero-filled to ``zero_fill`` times their length and the maximum is refined by
    the vertex of the parabola through it and its two neighbours (exact for a parabola; for a
    Lorentzian 2-10 Hz wide on a 2048-point, 4 kHz grid zero-filled 16x, the error is below
    0.001 Hz).

    Parameters
    ----------
    fids : complex FIDs, shape ``(..., n_points)``, internal convention.
    dwell_time_s, spectrometer_freq_mhz, ppm_reference : the acquisition grid.
    ppm_range : ``(low, high)`` window searched, ppm.
    zero_fill : zero-filling factor (>= 1).

    Returns
    -------
    Peak positions in ppm, shape ``(...)``.
    """
    fids = np.asarray(fids)
    n_fft = fids.shape[-1] * int(zero_fill)
    ppm = axes.ppm_axis(n_fft, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    inside = np.flatnonzero((ppm >= min(ppm_range)) & (ppm <= max(ppm_range)))
    if inside.size < 3:
        raise ConfigError(
            f"the window {ppm_range} ppm holds fewer than 3 spectral points; widen it"
        )
    real = axes.spectrum(fids, n_fft).real
    best = inside[np.argmax(real[..., inside], axis=-1)]
    mid = np.clip(best, 1, n_fft - 2)
    left, centre, right = (
        np.take_along_axis(real, (mid + k)[..., None], -1)[..., 0] for k in (-1, 0, 1)
    )
    curvature = left - 2.0 * centre + right
    offset = np.where(
        curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, 1), 0.0
    )
    return ppm[mid] + offset * (ppm[1] - ppm[0])
