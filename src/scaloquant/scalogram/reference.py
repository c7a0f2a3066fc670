"""A plain float64 numpy scalogram: MATLAB's algorithm written out directly, for checking.

It pads, takes the full FFT, multiplies by the untruncated filter bank on the full DFT grid,
inverts at full length, crops and subsamples; none of the shortcuts of
:mod:`scaloquant.scalogram.transform`. Slow and memory-hungry (``(n_scales, N_pad)`` per FID):
tests and benchmarks use it as the oracle the torch transform must match.
"""

from __future__ import annotations

import numpy as np

from . import morse
from .config import ScalogramConfig, scales


def reference_scalogram(
    fid: np.ndarray, config: ScalogramConfig, dwell_time_s: float | None = None
) -> np.ndarray:
    """Scalogram of one or more FIDs in float64, without normalisation or log.

    Parameters
    ----------
    fid : complex array, shape ``(..., n_points_in)``; the first ``config.n_points`` are used.

    Returns
    -------
    float64 array, shape ``(..., C, S, T)`` as :func:`scaloquant.scalogram.scalogram`.
    """
    x = np.asarray(fid, dtype=np.complex128)[..., : config.n_points]
    pad = config.pad_before
    mode = {"reflection": "symmetric", "zeros": "constant", "periodic": "constant"}
    widths = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
    x = np.pad(x, widths, mode=mode[config.padding])
    n_pad = x.shape[-1]
    omega = 2 * np.pi * np.fft.fftfreq(n_pad)
    # fftfreq puts an even length's Nyquist bin at -0.5; MATLAB's grid counts it as positive.
    if n_pad % 2 == 0:
        omega[n_pad // 2] = np.pi
    s = scales(config, dwell_time_s)[:, None]
    positive = morse.morse_frequency_response(s * omega, config.gamma, config.beta)
    if config.channels == "pos_neg":
        negative = morse.morse_frequency_response(-s * omega, config.gamma, config.beta)
        spec = np.fft.fft(x / 2, axis=-1)[..., None, :]
        pages = [spec * positive, spec * negative]
    else:
        pages = [np.fft.fft(part, axis=-1)[..., None, :] * positive for part in (x.real, x.imag)]
    keep = slice(pad, pad + config.n_points, config.decimation)
    coeffs = np.stack([np.fft.ifft(p, axis=-1)[..., keep] for p in pages], axis=-3)
    if config.channels == "complex":
        parts = np.stack([coeffs.real, coeffs.imag], axis=-3)  # (..., 2, part, S, T)
        return parts.reshape(*parts.shape[:-4], 4, *parts.shape[-2:])
    return np.abs(coeffs)
