"""Effects beyond the paper's noiseless Eq. 1: baseline, phase and noise (pure numpy); the
``invivo`` preset's residual water (:func:`water_fids`) and eddy-current phase.

Definitions (also in ``docs/simulation-config.yaml``)
-----------------------------------------------------
Reference peak height ``H``
    The largest value of the real part of the spectrum ``fftshift(fft(s))`` (unnormalised FFT,
    :mod:`scaloquant.signal.axes`) of the signal of Eq. 1 *before* baseline, phase and noise,
    over the bins whose ppm lies in ``reference_window_ppm`` (default 1.9-2.1 ppm: the NAA
    singlet). ``H`` is 0 when that maximum is negative.
SNR
    ``H`` divided by the standard deviation of the real part of the noise spectrum. Complex
    white noise with standard deviation ``sigma`` in each of the real and imaginary parts of the
    FID has real spectral noise of standard deviation ``sigma * sqrt(N)``, so the time-domain
    ``noise_sd = H / (SNR * sqrt(N))``.
Phase
    The whole signal (metabolites and baseline) is multiplied in the frequency domain by
    ``exp(i (phase0_deg + phase1_deg_per_ppm * (ppm - phase1_pivot_ppm)) * pi / 180)``; a
    zero-order phase alone is applied in the time domain, where it is the same factor. The
    first-order ramp acts on the discrete spectrum, i.e. as a circular time shift of the FID.
Baseline
    ``sum_h a_h exp(2 pi i f_h t) exp(-(g_h t)^2)`` with ``f_h`` the hump centre in Hz, ``g_h``
    from its FWHM (:func:`scaloquant.signal.lineshapes.gaussian_damping_from_fwhm_hz`) and
    ``a_h`` such that the real spectrum peaks at ``baseline_height * H``
    (:func:`scaloquant.signal.lineshapes.gaussian_absorption_peak`).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import IncompatibleDataError
from ..physics.model import exp_ramp
from ..signal import axes, lineshapes
from ..types import Acquisition


def reference_window_mask(acquisition: Acquisition, window_ppm: tuple[float, float]) -> np.ndarray:
    """(N,) bool mask of the spectrum bins whose ppm lies in ``window_ppm`` (inclusive)."""
    ppm = acquisition.ppm_axis()
    mask = (ppm >= window_ppm[0]) & (ppm <= window_ppm[1])
    if not mask.any():
        raise IncompatibleDataError(
            f"reference window {window_ppm[0]:g}-{window_ppm[1]:g} ppm holds no spectral point "
            f"of the basis ({ppm[0]:.2f} to {ppm[-1]:.2f} ppm); widen reference_window_ppm"
        )
    return mask


def reference_peak_height(fids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(B,) largest real-spectrum value of (B, N) ``fids`` in the bins ``mask``, at least 0."""
    real_spectrum = axes.spectrum(fids).real[:, mask]
    return np.maximum(real_spectrum.max(axis=1), 0.0)


#: A Gaussian envelope ``exp(-x^2)`` is below 1e-16, float64 rounding of the hump amplitude,
#: for ``x > 6.07``; baseline humps are evaluated only up to that time and are 0 after it.
_GAUSSIAN_SUPPORT = 6.07


def baseline_fids(
    acquisition: Acquisition,
    centre_ppm: np.ndarray,
    fwhm_ppm: np.ndarray,
    height: np.ndarray,
    reference_height: np.ndarray,
) -> np.ndarray:
    """(B, N) baseline FIDs from (B, H) hump parameters and the (B,) reference peak height."""
    if np.size(fwhm_ppm) and np.min(fwhm_ppm) <= 0:
        raise ValueError("baseline hump widths must be positive")
    sf = acquisition.spectrometer_freq_mhz
    centre_hz = axes.ppm_to_hz(centre_ppm, sf, acquisition.ppm_reference)
    g = lineshapes.gaussian_damping_from_fwhm_hz(fwhm_ppm * sf)
    amplitude = (
        height
        * reference_height[:, None]
        / lineshapes.gaussian_absorption_peak(g, acquisition.dwell_time_s)
    )
    out = np.zeros((centre_ppm.shape[0], acquisition.n_points), dtype=np.complex128)
    if out.size == 0:
        return out
    # broad humps decay in a few dozen ms: only the first n_support points are not ~0
    n_support = min(
        acquisition.n_points,
        int(np.ceil(_GAUSSIAN_SUPPORT / (g.min() * acquisition.dwell_time_s))) + 1,
    )
    t = acquisition.time_axis_s()[:n_support]
    for h in range(centre_ppm.shape[1]):  # one hump at a time: (B, N), never (B, H, N)
        out[:, :n_support] += amplitude[:, h, None] * np.exp(
            2j * np.pi * centre_hz[:, h, None] * t - np.square(g[:, h, None] * t)
        )
    return out


def apply_phase(
    fids: np.ndarray,
    acquisition: Acquisition,
    phase0_deg: np.ndarray | None,
    phase1_deg_per_ppm: np.ndarray | None,
    pivot_ppm: float,
) -> np.ndarray:
    """(B, N) ``fids`` with per-signal zero- and first-order phase (either may be None)."""
    if phase1_deg_per_ppm is None:
        if phase0_deg is None:
            return fids
        return fids * np.exp(1j * np.deg2rad(phase0_deg))[:, None]
    # the phase is linear in the bin index k: ppm_k = ppm_0 + k * ppm_step, so the factor is
    # exp(i theta_0) * exp(i dtheta k), a geometric ramp (the physics model's, few exponentials)
    ppm = acquisition.ppm_axis()
    n_points = ppm.size
    ppm_step = (ppm[-1] - ppm[0]) / (n_points - 1)
    phase1 = np.asarray(phase1_deg_per_ppm, dtype=np.float64)
    start_deg = phase1 * (ppm[0] - pivot_ppm)
    if phase0_deg is not None:
        start_deg = start_deg + phase0_deg
    step = torch.from_numpy(1j * np.deg2rad(phase1 * ppm_step))  # (B,) per bin
    ramp = exp_ramp(step, torch.arange(n_points, dtype=torch.float64)).numpy()
    ramp *= np.exp(1j * np.deg2rad(start_deg))[:, None]
    return axes.fid_from_spectrum(axes.spectrum(fids) * ramp)


def add_baseline_and_phase(
    fids: np.ndarray,
    acquisition: Acquisition,
    params,
    reference_height: np.ndarray | None,
    pivot_ppm: float,
) -> np.ndarray:
    """(B, N) ``fids`` plus the baseline humps of ``params``, then phased (a new array).

    ``params`` has ``baseline_centre_ppm``, ``baseline_fwhm_ppm``, ``baseline_height`` (None: no
    baseline), ``phase0_deg`` and ``phase1_deg_per_ppm`` (either may be None), as the
    simulator's and the ``invivo`` preset's parameters do.
    """
    if params.baseline_height is not None:
        fids = fids + baseline_fids(
            acquisition,
            params.baseline_centre_ppm,
            params.baseline_fwhm_ppm,
            params.baseline_height,
            reference_height,
        )
    return apply_phase(fids, acquisition, params.phase0_deg, params.phase1_deg_per_ppm, pivot_ppm)


def noise_sd_for_snr(reference_height: np.ndarray, snr: np.ndarray, n_points: int) -> np.ndarray:
    """(B,) time-domain standard deviation per real/imaginary part for the SNR definition."""
    return reference_height / (snr * np.sqrt(n_points))


def complex_noise(sd: np.ndarray, n_points: int, rng: np.random.Generator) -> np.ndarray:
    """(B, N) complex white Gaussian noise, standard deviation ``sd[b]`` in each part."""
    # (re, im) pairs of float64 are laid out exactly as complex128: view, do not copy
    draws = rng.standard_normal((sd.shape[0], n_points, 2)).view(np.complex128)[..., 0]
    draws *= sd[:, None]
    return draws


def water_fids(
    acquisition: Acquisition,
    centre_ppm: np.ndarray,
    damping_per_s: np.ndarray,
    height: np.ndarray,
    phase_deg: np.ndarray,
    reference_height: np.ndarray,
) -> np.ndarray:
    """(B, N) residual water: Lorentzian lines from (B, W) parameters and the (B,) height ``H``.

    Line ``w`` is ``a exp(i phase) exp((-alpha + 2 pi i f) t)``, with ``a`` such that its
    magnitude spectrum peaks at ``height * H``: the DFT at the line's own frequency is the
    geometric sum ``(1 - r^N) / (1 - r)``, ``r = exp(-alpha dT)``.
    """
    r = np.exp(-damping_per_s * acquisition.dwell_time_s)
    peak = (1.0 - r**acquisition.n_points) / (1.0 - r)
    amplitude = height * reference_height[:, None] / peak * np.exp(1j * np.deg2rad(phase_deg))
    freq_hz = axes.ppm_to_hz(
        centre_ppm, acquisition.spectrometer_freq_mhz, acquisition.ppm_reference
    )
    rate = torch.from_numpy(-damping_per_s + 2j * np.pi * freq_hz)  # (B, W), 1/s
    # exp(rate t) by the physics model's ramp (few exponentials); W is a few lines
    ramp = exp_ramp(rate, torch.from_numpy(acquisition.time_axis_s()))  # (B, W, N)
    return torch.einsum("bw,bwn->bn", torch.from_numpy(amplitude), ramp).numpy()


def eddy_current_phase_rad(amplitude_rad, time_constant_s, time_s) -> np.ndarray:
    """(B, N) phase ``A exp(-t / tau)`` of (B,) amplitudes and time constants (Klose 1990)."""
    a = np.asarray(amplitude_rad, dtype=np.float64)[:, None]
    tau = np.asarray(time_constant_s, dtype=np.float64)[:, None]
    return a * np.exp(-np.asarray(time_s)[None, :] / tau)
