"""Cramér–Rao lower bounds of the fitted amplitudes and the noise estimates they need.

For white complex Gaussian noise of variance ``sigma^2`` in each of the real and imaginary parts
of every spectral point, the Fisher information of the real parameter vector ``p`` is
``F = J^T J / sigma^2``, with ``J`` the derivative of the real-stacked model ``[Re; Im]`` by ``p``;
its inverse bounds the covariance of any unbiased estimator (Cavassila et al., NMR Biomed 2001;
the bound behind LCModel's %SD and FSL-MRS's CRLB). ``p`` holds every amplitude, every fitted
nonlinear parameter and the baseline coefficients, so the bound includes the cost of estimating
all of them. With the unnormalised FFT of the internal convention, a time-domain noise of SD
``s`` per part gives ``sigma = s sqrt(n_points)`` in the spectrum.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .model import Design, stack_complex
from .varpro import SingleFit


def full_jacobian(design: Design, fit: SingleFit) -> tuple[np.ndarray, np.ndarray]:
    """Derivatives of the real-stacked model by all parameters at the fitted point.

    Returns ``J`` ``(2K, M + P_id + n_baseline)``, amplitude columns first, and the boolean mask
    over the fitted nonlinear parameters ``(P,)`` that are identifiable. The damping and shift of
    a group whose amplitudes are all 0 (at the bound) do not change the model: they are
    unidentifiable, and are left out, which treats them as known at their fitted values.
    """
    cols, z, phase = design.columns(fit.parameters)
    a = fit.amplitudes
    derivs = stack_complex(design.model_derivatives(a, z, phase, cols))
    identifiable = np.any(derivs != 0, axis=0)
    jac = np.concatenate(
        [stack_complex(cols), derivs[:, identifiable], design.baseline_real], axis=1
    )
    return jac, identifiable


def covariance_bound(jacobian: np.ndarray, noise_sd: float) -> np.ndarray:
    """``sigma^2 (J^T J)^-1``, ``(P, P)``; all ``inf`` when ``J^T J`` is singular.

    The columns are scaled to unit norm before the inversion, so parameters in Hz, 1/s, rad and
    amplitude units do not spoil the conditioning.
    """
    norms = np.linalg.norm(jacobian, axis=0)
    p = jacobian.shape[1]
    if np.any(norms == 0):
        return np.full((p, p), np.inf)
    scaled = jacobian / norms
    try:
        inv = np.linalg.inv(scaled.T @ scaled)
    except np.linalg.LinAlgError:
        return np.full((p, p), np.inf)
    return noise_sd**2 * inv / np.outer(norms, norms)


def residual_noise_sd(fit: SingleFit, n_free: int) -> float:
    """Noise SD per real part from the fit residual: ``sqrt(|r|^2 / (2K - n_free))``."""
    dof = fit.residual.size - n_free
    return float(np.sqrt(np.sum(fit.residual**2) / dof))


def region_noise_sd(
    spectra: np.ndarray, ppm: np.ndarray, ppm_range: tuple[float, float]
) -> np.ndarray:
    """Noise SD per real part from a signal-free region, ``(B, N)`` spectra -> ``(B,)``.

    A straight complex line is removed first (two complex parameters), so a slowly varying
    residual baseline or water tail does not count as noise.
    """
    lo, hi = ppm_range
    sel = np.flatnonzero((ppm >= lo) & (ppm <= hi))
    if sel.size < 8:
        raise ConfigError(
            f"noise_ppm_range ({lo:g}, {hi:g}) holds {sel.size} spectral points of the data "
            f"(axis {ppm[0]:.2f} to {ppm[-1]:.2f} ppm); pick a signal-free range with at least 8"
        )
    design = np.stack([np.ones(sel.size), ppm[sel] - ppm[sel].mean()], axis=1)
    region = spectra[:, sel].T
    coef = np.linalg.lstsq(design, region, rcond=None)[0]
    res = region - design @ coef
    dof = 2 * sel.size - 4
    return np.sqrt((np.abs(res) ** 2).sum(axis=0) / dof)
