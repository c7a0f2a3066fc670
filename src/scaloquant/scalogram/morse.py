"""Generalized Morse wavelets and MATLAB's default scale rule, in float64 numpy.

Everything here is a pure function of ``(gamma, beta)`` and the signal length; nothing knows about
torch, files or configs. Frequencies are angular, in radians per sample, unless a name says
otherwise (``_cycles`` = cycles per sample).

The formulas follow the public description of MATLAB's ``cwt``/``cwtfilterbank`` (Wavelet Toolbox,
R2018a and later), written out in ``docs/morse-cwt.md`` of this project, and the generalized Morse
wavelet of Olhede & Walden, "Generalized Morse wavelets", IEEE Trans. Signal Process. 50(11), 2002,
and Lilly & Olhede, "Generalized Morse wavelets as a superfamily of analytic wavelets", IEEE Trans.
Signal Process. 60(11), 2012:

    psi_hat(w) = 2 * exp(-beta * ln(w_psi) + w_psi**gamma + beta * ln(w) - w**gamma),  w > 0
    psi_hat(w) = 0,                                                                    w <= 0
    w_psi      = (beta / gamma) ** (1 / gamma)        (peak frequency; psi_hat(w_psi) = 2)

This is the L1 ("bandpass") normalisation: a real sinusoid of amplitude A gives coefficients of
modulus A at the scale whose peak frequency it matches. Scale ``s`` means ``psi_hat(s * w)``.
"""

from __future__ import annotations

import math

import numpy as np

#: MATLAB's default Morse wavelet: symmetry gamma = 3, time-bandwidth product P**2 = 60, so
#: beta = P**2 / gamma = 20.
DEFAULT_GAMMA = 3.0
DEFAULT_BETA = 20.0

#: MATLAB's default scale span: the largest scale puts this many time standard deviations of the
#: wavelet in the signal; the smallest puts the wavelet at this fraction of its peak at Nyquist.
DEFAULT_N_STD = 2.0
DEFAULT_NYQUIST_LEVEL = 0.5

#: MATLAB allows at most 48 voices per octave (and at least 1).
MAX_VOICES_PER_OCTAVE = 48


def check_morse_parameters(gamma: float, beta: float) -> None:
    """Raise ``ValueError`` unless ``gamma > 0`` and ``beta > 0`` (finite)."""
    if not (math.isfinite(gamma) and gamma > 0 and math.isfinite(beta) and beta > 0):
        raise ValueError(f"Morse parameters need gamma > 0 and beta > 0, got ({gamma}, {beta})")


def peak_frequency(gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA) -> float:
    """Peak angular frequency ``w_psi = (beta / gamma) ** (1 / gamma)`` in radians per sample."""
    check_morse_parameters(gamma, beta)
    return (beta / gamma) ** (1.0 / gamma)


def morse_frequency_response(
    omega: np.ndarray, gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA
) -> np.ndarray:
    """``psi_hat(omega)`` of the module docstring, float64, same shape as ``omega``.

    Evaluated as ``2 * exp(log-ratio)`` so that large ``beta`` or ``omega`` neither overflow nor
    lose precision; zero for ``omega <= 0`` (the wavelet is analytic).
    """
    omega = np.asarray(omega, dtype=np.float64)
    w_psi = peak_frequency(gamma, beta)
    out = np.zeros_like(omega)
    pos = omega > 0
    w = omega[pos]
    out[pos] = 2.0 * np.exp(beta * np.log(w / w_psi) - (w**gamma - w_psi**gamma))
    return out


def _power_moment(p: float, gamma: float) -> float:
    """``ln integral_0^inf w**p * exp(-2 * w**gamma) dw = ln(Gamma((p+1)/gamma) / (gamma * 2**((p+1)/gamma)))``.

    Substituting ``u = 2 w**gamma`` turns the integral into Euler's Gamma function.
    """
    from scipy import special  # when a filter bank is built, not at every model's import

    a = (p + 1.0) / gamma
    return float(special.gammaln(a) - math.log(gamma) - a * math.log(2.0))


def time_spread(gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA) -> float:
    """Time standard deviation ``sigma_t`` of the wavelet at unit scale, in samples.

    ``sigma_t = w_psi * sqrt(int |psi_hat'(w)|^2 dw / int |psi_hat(w)|^2 dw)`` (MATLAB's measure,
    morse-cwt.md). With ``psi_hat ~ w**beta exp(-w**gamma)``,
    ``psi_hat' = psi_hat * (beta / w - gamma * w**(gamma - 1))``, so both integrals are sums of
    :func:`_power_moment` terms; the constant prefactor cancels. 5.50077 for (3, 20).
    """
    w_psi = peak_frequency(gamma, beta)
    log_den = _power_moment(2 * beta, gamma)
    terms = (
        (beta**2, 2 * beta - 2),
        (-2 * beta * gamma, 2 * beta + gamma - 2),
        (gamma**2, 2 * beta + 2 * gamma - 2),
    )
    ratio = sum(c * math.exp(_power_moment(p, gamma) - log_den) for c, p in terms)
    return w_psi * math.sqrt(ratio)


def nyquist_level_frequency(
    gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA, level: float = DEFAULT_NYQUIST_LEVEL
) -> float:
    """The frequency ``w_c > w_psi`` where ``psi_hat`` falls to ``level`` times its peak.

    Solves ``ln(level) = beta * ln(w / w_psi) - (w**gamma - w_psi**gamma)`` (monotonic above the
    peak); 2.1677 rad/sample for (3, 20) at level 0.5.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    w_psi = peak_frequency(gamma, beta)

    def excess(w: float) -> float:
        return beta * math.log(w / w_psi) - (w**gamma - w_psi**gamma) - math.log(level)

    upper = 2.0 * w_psi
    while excess(upper) > 0:
        upper *= 2.0
    # scipy.optimize only here: importing it eagerly put ~0.5 s (scipy.linalg and more) on the
    # start-up of every command that loads a model
    from scipy import optimize

    return optimize.brentq(excess, w_psi, upper, xtol=1e-15, rtol=4 * np.finfo(float).eps)


def default_scale_span(
    n_points: int,
    gamma: float = DEFAULT_GAMMA,
    beta: float = DEFAULT_BETA,
    *,
    n_std: float = DEFAULT_N_STD,
    nyquist_level: float = DEFAULT_NYQUIST_LEVEL,
) -> tuple[float, float]:
    """MATLAB's default ``(smallest, largest)`` scale for an ``n_points``-sample signal.

    Smallest: ``w_c / pi``, where the wavelet is at ``nyquist_level`` of its peak at Nyquist
    (0.68999 for (3, 20)). Largest: ``n_points / (n_std * sigma_t)`` (139.617 for 1536 points).
    """
    if n_points < 2:
        raise ValueError(f"need at least 2 points, got {n_points}")
    smallest = nyquist_level_frequency(gamma, beta, nyquist_level) / math.pi
    largest = n_points / (n_std * time_spread(gamma, beta))
    return smallest, largest


def octave_scales(smallest: float, largest: float, voices_per_octave: int) -> np.ndarray:
    """MATLAB's scale vector ``smallest * 2**(j / nv)``, ``j = 0 .. floor(nv * log2(largest/smallest))``.

    As in MATLAB, a span shorter than one voice is widened to one voice (two scales).
    """
    if not 1 <= voices_per_octave <= MAX_VOICES_PER_OCTAVE:
        raise ValueError(
            f"voices per octave must be 1 to {MAX_VOICES_PER_OCTAVE}, got {voices_per_octave}"
        )
    if not (smallest > 0 and largest > 0):
        raise ValueError(f"scales must be positive, got {smallest}, {largest}")
    if largest <= smallest * 2.0 ** (1.0 / voices_per_octave):
        j = np.arange(2)  # (widening by log2 could round down to one scale)
    else:
        j = np.arange(math.floor(voices_per_octave * math.log2(largest / smallest)) + 1)
    return smallest * 2.0 ** (j / voices_per_octave)


def log_spaced_scales(smallest: float, largest: float, n_scales: int) -> np.ndarray:
    """``n_scales`` scales log-spaced from ``smallest`` to ``largest``, both ends included."""
    if n_scales < 1:
        raise ValueError(f"need at least one scale, got {n_scales}")
    if not 0 < smallest <= largest:
        raise ValueError(f"need 0 < smallest <= largest scale, got {smallest}, {largest}")
    if n_scales == 1:
        return np.array([smallest])
    return np.geomspace(smallest, largest, n_scales)


def scale_to_frequency_cycles(
    scales: np.ndarray, gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA
) -> np.ndarray:
    """Centre (peak) frequency of each scale in cycles per sample: ``w_psi / (2 pi s)``."""
    return peak_frequency(gamma, beta) / (2.0 * math.pi * np.asarray(scales, dtype=np.float64))


def frequency_cycles_to_scale(
    freq_cycles: np.ndarray, gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA
) -> np.ndarray:
    """Inverse of :func:`scale_to_frequency_cycles`."""
    return peak_frequency(gamma, beta) / (2.0 * math.pi * np.asarray(freq_cycles, np.float64))


def dft_angular_frequencies(n_fft: int) -> np.ndarray:
    """Angular frequencies ``2 pi k / n_fft`` of the non-negative DFT bins ``k = 0 .. n_fft // 2``.

    The Nyquist bin of an even ``n_fft`` counts as positive, as in MATLAB's filter bank, so an
    analytic filter is non-zero there. Shape ``(n_fft // 2 + 1,)``.
    """
    return 2.0 * math.pi * np.arange(n_fft // 2 + 1) / n_fft


def morse_filters(
    scales: np.ndarray, n_fft: int, gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA
) -> np.ndarray:
    """The Morse filter bank ``psi_hat(s_j * w_k)`` on the non-negative DFT bins of ``n_fft``.

    Negative-frequency bins (``k > n_fft // 2``) are zero for an analytic wavelet and are left out.

    Returns
    -------
    ndarray, float64, shape ``(n_scales, n_fft // 2 + 1)``; row ``j`` belongs to ``scales[j]``.
    """
    scales = np.asarray(scales, dtype=np.float64)
    return morse_frequency_response(
        scales[:, None] * dft_angular_frequencies(n_fft)[None, :], gamma, beta
    )
