"""Starting values of the nonlinear parameters, one set per spectrum."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidDataError
from .config import FitStart
from .model import Design, NonlinearParameters


def cross_correlation_shift_hz(design: Design, data: np.ndarray) -> np.ndarray:
    """One frequency shift for all metabolites of each spectrum, in Hz, ``(B, K)`` -> ``(B,)``.

    The magnitude of the data over the window is cross-correlated with the magnitude of the
    basis sum; magnitudes make the estimate blind to the unknown phase. The peak over integer
    bins within ``global_shift_range_hz`` is refined by a parabola through its neighbours.
    """
    lo, hi = design.config.global_shift_range_hz
    bin_hz = 1.0 / (design.n_points * design.dwell_time_s)
    lags = np.arange(int(np.ceil(lo / bin_hz)), int(np.floor(hi / bin_hz)) + 1)
    if lags.size < 3:
        return np.full(data.shape[0], np.clip(0.0, lo, hi))
    ref = design.reference_magnitude[(design.fft_index[None, :] - lags[:, None]) % design.n_points]
    # Normalised by the reference's norm in the window: a lag that only brings more of the
    # reference into the window must not win.
    score = (np.abs(data) @ ref.T) / np.linalg.norm(ref, axis=1)
    best = np.argmax(score, axis=1)
    inner = np.clip(best, 1, lags.size - 2)
    rows = np.arange(data.shape[0])
    left, mid, right = (score[rows, inner + k] for k in (-1, 0, 1))
    curvature = left - 2 * mid + right
    refine = (best == inner) & (curvature < 0)
    offset = np.where(refine, 0.5 * (left - right) / np.where(refine, curvature, -1.0), 0.0)
    return np.clip((lags[best] + offset) * bin_hz, lo, hi)


def phase0_estimate_rad(design: Design, data: np.ndarray, p: NonlinearParameters) -> float:
    """Zero-order phase from an unconstrained complex least-squares fit of the basis columns.

    If the data are ``exp(i phi0) sum_m a_m S_m`` with real ``a_m >= 0``, every complex amplitude
    ``c_m`` has the angle ``phi0``; their sum weighted by the column energies is dominated by
    the large, well-determined components, and pairs of near-identical columns (Cr and PCr)
    whose individual estimates swing in opposite directions cancel in it.
    """
    cols = design.columns(
        NonlinearParameters(p.damping_per_s, p.shift_hz, 0.0, p.phase1_rad_per_ppm, p.gauss_per_s2)
    )[0]
    full = np.concatenate([cols, design.baseline_design], axis=1)
    c = np.linalg.lstsq(full, data, rcond=None)[0][: cols.shape[1]]
    energy = np.sum(np.abs(cols) ** 2, axis=0)
    return float(np.angle(np.sum(c * energy)))


def phase0_given_amplitudes_rad(
    design: Design, data: np.ndarray, p: NonlinearParameters, amplitudes: np.ndarray
) -> float:
    """Zero-order phase that best aligns the model of known ``amplitudes`` ``(M,)`` with the
    data ``(K,)``: ``angle(sum_f conj(m(f)) d(f))``, ``m`` the model at phase 0 with the other
    parameters of ``p``.

    It minimises ``|d - exp(i phi0) m|^2`` over ``phi0`` exactly (expand the norm: only
    ``-2 Re(exp(-i phi0) <m, d>)`` depends on it); the baseline is ignored, so with one it is a
    starting value only.
    """
    at_zero = NonlinearParameters(
        p.damping_per_s, p.shift_hz, 0.0, p.phase1_rad_per_ppm, p.gauss_per_s2
    )
    model = design.columns(at_zero)[0] @ amplitudes
    return float(np.angle(np.vdot(model, data)))


def _per_group(name: str, value, batch_shape: tuple[int, ...], design: Design) -> np.ndarray:
    """A start given per spectrum ``(...)`` or per metabolite ``(..., M)`` -> ``(B, n_groups)``."""
    m = len(design.names)
    counts = design.group_matrix.sum(axis=0)
    arr = np.asarray(value)
    if arr.ndim == len(batch_shape) + 1 and arr.shape[-1] == m:
        per_metabolite = np.broadcast_to(arr, (*batch_shape, m)).reshape(-1, m)
        return per_metabolite @ design.group_matrix / counts
    try:
        per_spectrum = np.broadcast_to(arr, batch_shape).reshape(-1)
    except ValueError:
        raise InvalidDataError(
            f"starting value {name} has shape {arr.shape}; give one value per spectrum "
            f"{batch_shape} or per metabolite {(*batch_shape, m)}"
        ) from None
    return np.repeat(per_spectrum[:, None], design.layout.n_groups, axis=1)


def _per_spectrum(name: str, value, batch_shape: tuple[int, ...]) -> np.ndarray:
    try:
        return np.broadcast_to(np.asarray(value), batch_shape).reshape(-1)
    except ValueError:
        raise InvalidDataError(
            f"starting value {name} has shape {np.shape(value)}; give one value per spectrum "
            f"{batch_shape}"
        ) from None


def starting_parameters(
    design: Design, data: np.ndarray, start: FitStart | None, batch_shape: tuple[int, ...]
) -> list[NonlinearParameters]:
    """Starting parameters of each spectrum.

    Parameters
    ----------
    design : the model.
    data : ``(B, K)`` spectra over the window, ``B = prod(batch_shape)``.
    start : given starting values (or ``None``); what is missing is estimated: shifts by
        cross-correlation (or zero, per ``config.initial_shift``), damping from
        ``config.initial_damping_per_s``, the zero-order phase by :func:`phase0_estimate_rad`,
        the first-order phase and the Gaussian from 0.
    batch_shape : leading shape of the data.
    """
    start = start or FitStart()
    cfg = design.config
    n, g = data.shape[0], design.layout.n_groups
    if start.damping_per_s is not None:
        damping = _per_group("damping_per_s", start.damping_per_s, batch_shape, design)
    else:
        damping = np.full((n, g), cfg.initial_damping_per_s)
    if start.shift_hz is not None:
        shift = _per_group("shift_hz", start.shift_hz, batch_shape, design)
    elif cfg.initial_shift == "xcorr":
        shift = np.repeat(cross_correlation_shift_hz(design, data)[:, None], g, axis=1)
    else:
        shift = np.zeros((n, g))

    def scalar(name: str) -> np.ndarray:
        value = getattr(start, name)
        return np.zeros(n) if value is None else _per_spectrum(name, value, batch_shape)

    phase1, gauss = scalar("phase1_rad_per_ppm"), scalar("gauss_per_s2")
    starts = [
        NonlinearParameters(damping[i], shift[i], 0.0, float(phase1[i]), float(gauss[i]))
        for i in range(n)
    ]
    if start.phase0_rad is not None:
        phase0 = _per_spectrum("phase0_rad", start.phase0_rad, batch_shape)
    elif cfg.fit_phase0:
        phase0 = [phase0_estimate_rad(design, d, p) for d, p in zip(data, starts, strict=True)]
    else:
        phase0 = np.zeros(n)
    return [
        NonlinearParameters(
            p.damping_per_s, p.shift_hz, float(ph0), p.phase1_rad_per_ppm, p.gauss_per_s2
        )
        for p, ph0 in zip(starts, phase0, strict=True)
    ]
