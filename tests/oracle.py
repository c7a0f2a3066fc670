"""The float64 numpy rendering of the physics model: the tests' oracle.

The package evaluates the signal model once, in torch (:mod:`scaloquant.physics.model`, used by
the simulator and the fit). Here the same formula is written the plain way, one spectrum at a
time, an ``exp`` of every sample and the full ``fftshift(fft(.))``: slow, but with nothing to
get wrong but the formula. For metabolite ``m`` in group ``g(m)``::

    z_m(t) = X_m(t) exp((-(alpha_g + da_m) + 2 pi i (df_g + dd_m)) t - beta_g t^2)
    S(t)   = sum_m a_m z_m(t)
    C_km   = exp(i (phi0 + phi1 (ppm_k - pivot))) fftshift(fft(z_m))_k      (k in the window)

The seed paper's Eq. 1 (the simulator) is one group per metabolite with the Gaussian
``exp(-(g t)^2)``, i.e. ``beta = g^2``. Import it as ``import oracle`` (``tests/`` is on the
path of every test, as the folder of ``tests/conftest.py``).
"""

from __future__ import annotations

import numpy as np

from scaloquant.signal import axes


def modulated_fids(
    basis_fids: np.ndarray,
    dwell_time_s: float,
    damping_per_s: np.ndarray,
    shift_hz: np.ndarray,
    gauss_per_s2: np.ndarray | None = None,
    group_of: np.ndarray | None = None,
    damping_dev_per_s: np.ndarray | None = None,
    shift_dev_hz: np.ndarray | None = None,
) -> np.ndarray:
    """``z_m(t)`` of one spectrum, ``(M, N)`` complex128.

    ``basis_fids`` ``(M, N)``; ``damping_per_s``, ``shift_hz``, ``gauss_per_s2`` ``(G,)`` per
    group (``group_of`` ``(M,)``, default one group per metabolite); deviations ``(M,)`` or None.
    """
    x = np.asarray(basis_fids, dtype=np.complex128)
    n_met, n_points = x.shape
    group_of = np.arange(n_met) if group_of is None else np.asarray(group_of)
    t = np.arange(n_points, dtype=np.float64) * float(dwell_time_s)
    damping = np.asarray(damping_per_s, dtype=np.float64)[group_of]
    shift = np.asarray(shift_hz, dtype=np.float64)[group_of]
    if damping_dev_per_s is not None:
        damping = damping + damping_dev_per_s
    if shift_dev_hz is not None:
        shift = shift + shift_dev_hz
    exponent = (-damping[:, None] + 2j * np.pi * shift[:, None]) * t
    if gauss_per_s2 is not None:
        exponent = exponent - np.asarray(gauss_per_s2, dtype=np.float64)[group_of, None] * t**2
    return x * np.exp(exponent)


def fid(
    basis_fids: np.ndarray, dwell_time_s: float, amplitudes: np.ndarray, *args, **kwargs
) -> np.ndarray:
    """``S(t) = sum_m a_m z_m(t)`` of one spectrum, ``(N,)``; ``amplitudes`` ``(M,)``, the rest
    as :func:`modulated_fids`."""
    z = modulated_fids(basis_fids, dwell_time_s, *args, **kwargs)
    return np.asarray(amplitudes, dtype=np.float64) @ z


def eq1_fids(basis_fids: np.ndarray, params, dwell_time_s: float) -> np.ndarray:
    """The simulator's Eq. 1 for a batch of :class:`~scaloquant.simulate.SimulationParameters`
    ``params``, spectrum by spectrum: ``(B, N)`` complex128."""
    gauss = params.gaussian_damping_per_s
    return np.array(
        [
            fid(
                basis_fids,
                dwell_time_s,
                params.amplitudes[b],
                params.damping_per_s[b],
                params.shift_hz[b],
                None if gauss is None else np.square(gauss[b]),
            )
            for b in range(params.n_signals)
        ]
    ).reshape(params.n_signals, np.shape(basis_fids)[1])


def window_columns(
    z: np.ndarray,
    window: np.ndarray,
    ppm: np.ndarray,
    phase0_rad: float = 0.0,
    phase1_rad_per_ppm: float = 0.0,
    pivot_ppm: float = 4.65,
) -> np.ndarray:
    """``C_km``: the phased spectra of ``z`` ``(M, N)`` in the bins ``window`` ``(K,)`` of the
    shifted spectrum, whose ppm are ``ppm`` ``(K,)``: ``(K, M)``."""
    spec = axes.spectrum(z)[:, window]
    return (spec * np.exp(1j * (phase0_rad + phase1_rad_per_ppm * (ppm - pivot_ppm)))).T


def hlsvd_full_svd(
    fid: np.ndarray, dwell_time_s: float, n_components: int = 25, n_points: int = 512
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HLSVD of one FID ``(N,)`` the textbook way (Barkhuijsen 1987; Pijnappel 1992): the full
    SVD of the ``(n/2, n/2 + 1)`` Hankel matrix of its first ``n_points`` samples, the poles
    from the shift invariance of the leading ``n_components`` left singular vectors, the
    amplitudes by least squares over the samples (numpy's complex power for the Vandermonde
    matrix). ``(frequencies Hz (K,), amplitudes (K,), poles (K,))``; growing poles are put on
    the unit circle, as the package does (:func:`scaloquant.signal.water.hlsvd_components`,
    which takes the subspace from the Gram matrix instead)."""
    n = min(fid.shape[-1], n_points)
    x = np.asarray(fid[:n], dtype=np.complex128)
    rows = n // 2
    hankel = np.lib.stride_tricks.sliding_window_view(x, n - rows + 1)[:rows]
    u, _, _ = np.linalg.svd(hankel, full_matrices=False)
    uk = u[:, : min(n_components, u.shape[1])]
    poles = np.linalg.eigvals(np.linalg.lstsq(uk[:-1], uk[1:], rcond=None)[0])
    poles = np.where(np.abs(poles) > 1.0, poles / np.abs(poles), poles)
    amps = np.linalg.lstsq(poles[None, :] ** np.arange(n)[:, None], x, rcond=None)[0]
    return np.angle(poles) / (2 * np.pi * dwell_time_s), amps, poles


def hlsvd_band_fid(
    fid: np.ndarray,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    band_ppm: tuple[float, float],
) -> np.ndarray:
    """The FID ``(N,)`` of the :func:`hlsvd_full_svd` components of ``fid`` with a frequency
    in ``band_ppm`` (what the package's ``remove_water`` subtracts with ``max_fwhm_hz=inf``; with
    its default bound too where none is broader: the scanner spectra's are at most 51 Hz wide),
    over all ``N`` samples."""
    freq_hz, amps, poles = hlsvd_full_svd(fid, dwell_time_s)
    ppm = axes.hz_to_ppm(freq_hz, spectrometer_freq_mhz, ppm_reference)
    inside = (ppm >= band_ppm[0]) & (ppm <= band_ppm[1]) & (np.abs(poles) > 0)
    steps = np.arange(fid.shape[-1])[:, None]
    return (amps[inside] * poles[inside] ** steps).sum(-1)


def half_max_width(axis: np.ndarray, real_spectrum: np.ndarray, peak: int) -> float:
    """Full width at half maximum of the line at index ``peak`` of a real spectrum ``(n,)``, in
    the units of its increasing ``axis`` ``(n,)``: the half-maximum crossings on each side of
    the peak, interpolated linearly between points. No baseline, phase or window: a clean line
    measured the plain way."""
    spec = real_spectrum
    half = spec[peak] / 2
    lo = peak
    while spec[lo] > half:
        lo -= 1
    hi = peak
    while spec[hi] > half:
        hi += 1
    left = axis[lo] + (half - spec[lo]) / (spec[lo + 1] - spec[lo]) * (axis[lo + 1] - axis[lo])
    right = axis[hi - 1] + (half - spec[hi - 1]) / (spec[hi] - spec[hi - 1]) * (
        axis[hi] - axis[hi - 1]
    )
    return right - left
