"""The start of the batched fit: the nonlinear parameters before the first Levenberg–Marquardt
step (:func:`start_theta`).

A cross-correlation start for the shift (:func:`cross_correlation_shift_hz`: the window's
magnitude against that of the basis' main singlets, each less its running mean, refined by a
parabola; the reference is built with the problem,
:func:`scaloquant.fit.problem._reference_magnitude`) and a least-squares start for ``phi0``
(:func:`phase0_start`; with amplitudes given, :func:`phase0_given_amplitudes`). Measured in
``docs/fit.md`` ("Solver and bounds") and at :data:`XCORR_HIGHPASS_PPM`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..physics.model import in_whole_blocks
from .config import FitConfig
from .evaluation import batched_matmul, columns, times_fixed, times_matrix
from .problem import Problem

#: Width (ppm) of the running mean removed from the magnitudes before the cross-correlation.
XCORR_HIGHPASS_PPM = 0.2


def _highpass(mag: torch.Tensor, half: int) -> torch.Tensor:
    """``mag`` ``(R, K)`` less its running mean over ``2 half + 1`` bins (shorter at the ends)."""
    smooth = torch.nn.functional.avg_pool1d(
        mag[:, None, :], 2 * half + 1, stride=1, padding=half, count_include_pad=False
    )[:, 0, :]
    return mag - smooth


def cross_correlation_shift_hz(
    problem: Problem, y: torch.Tensor, shift_range_hz: tuple[float, float], dwell_time_s: float
) -> torch.Tensor:
    """One shift per spectrum (Hz) from the cross-correlation of the window's magnitude with
    that of the basis' main singlets (:func:`~scaloquant.fit.problem._reference_magnitude`), over
    integer bins of ``shift_range_hz``, refined by a parabola: ``(B,)``."""
    n = problem.apodisation.shape[-1]
    bin_hz = 1.0 / (n * dwell_time_s)
    lo, hi = shift_range_hz
    lags = torch.arange(
        int(math.ceil(lo / bin_hz)), int(math.floor(hi / bin_hz)) + 1, device=y.device
    )
    ref = problem.reference_magnitude[(problem.data_fft_index[None, :] - lags[:, None]) % n]
    # only the lines count, not broad signal (residual water's tail, lipids, baseline), which
    # would pull the basis' mass towards it: each magnitude less its running mean over
    # XCORR_HIGHPASS_PPM
    ppm_step = float(abs(problem.ppm[1] - problem.ppm[0]))
    half = max(1, int(round(0.5 * XCORR_HIGHPASS_PPM / ppm_step)))
    ref = _highpass(ref, half)
    score = times_matrix(_highpass(y.abs(), half), ref.T) / ref.norm(dim=1).clamp_min(1e-300)
    best = score.argmax(-1)
    inner = best.clamp(1, lags.numel() - 2)
    rows = torch.arange(y.shape[0], device=y.device)
    left, mid, right = (score[rows, inner + k] for k in (-1, 0, 1))
    curv = left - 2 * mid + right
    refine = (best == inner) & (curv < 0)
    offset = torch.where(refine, 0.5 * (left - right) / torch.where(refine, curv, -1.0), 0.0)
    return ((lags[best] + offset) * bin_hz).clamp(lo, hi)


def phase0_start(problem: Problem, theta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``phi0`` from an unconstrained complex least-squares fit of the columns (at
    ``phi0 = 0``) with the baseline: the energy-weighted angle of the complex amplitudes."""
    sl = problem.slices()
    at_zero = theta.clone()
    at_zero[:, sl["phase0"]] = 0.0
    cols = columns(problem, at_zero)[0]
    c_mat = problem.baseline_whiten.to(cols.dtype)
    gram = cols.mH @ cols
    rhs = batched_matmul(cols.mH, y[..., None])
    if c_mat.shape[0]:
        c_cols = times_fixed(cols.mT, c_mat.T).mT  # C S, per spectrum (times_fixed)
        gram = gram - c_cols.mH @ c_cols
        rhs = rhs - batched_matmul(c_cols.mH, times_matrix(y, c_mat.T)[..., None])
    m = cols.shape[-1]
    ridge = 1e-10 * torch.diagonal(gram, dim1=-2, dim2=-1).real.amax(-1)
    coef = torch.linalg.solve(gram + ridge[:, None, None] * torch.eye(m, device=y.device), rhs)
    energy = torch.diagonal(gram, dim1=-2, dim2=-1).real
    return in_whole_blocks(torch.angle, (coef[..., 0] * energy).sum(-1))


def start_theta(
    problem: Problem, config: FitConfig, y: torch.Tensor, dwell_time_s: float, start
) -> torch.Tensor:
    sl = problem.slices()
    b = y.shape[0]
    theta = torch.zeros(b, problem.size, dtype=torch.float64, device=y.device)
    theta[:, sl["damping"]] = config.initial_damping_per_s if problem.lorentzian else 0.0
    theta[:, sl["gauss"]] = config.initial_gauss_per_s2 if problem.gaussian else 0.0
    if config.initial_shift == "xcorr":
        shift = cross_correlation_shift_hz(problem, y, config.global_shift_range_hz, dwell_time_s)
        theta[:, sl["shift"]] = shift[:, None]
    counts = problem.group_matrix.sum(0)

    def tensor(value) -> torch.Tensor:
        return torch.as_tensor(np.array(value, dtype=np.float64), device=y.device)

    for name, key in (("damping_per_s", "damping"), ("shift_hz", "shift")):
        if name in start:  # (B, M) per metabolite: averaged within each group
            theta[:, sl[key]] = tensor(start[name]) @ problem.group_matrix / counts
    for name, key in (("phase1_rad_per_ppm", "phase1"), ("gauss_per_s2", "gauss")):
        if name in start:  # (B,)
            theta[:, sl[key]] = tensor(start[name])[:, None]
    return theta


def phase0_given_amplitudes(
    problem: Problem, theta: torch.Tensor, y: torch.Tensor, amplitudes: torch.Tensor
) -> torch.Tensor:
    """``phi0`` ``(B,)`` that aligns the model ``S a`` of the given ``amplitudes`` ``(B, M)``
    (at ``theta`` with ``phi0 = 0``) with the data windows ``y`` ``(B, K)``: the angle of
    ``<S a, y>_W``, the baseline's span removed: it minimises ``|y - exp(i phi0) S a|_W^2``
    over ``phi0`` exactly (only ``-2 Re(exp(-i phi0) <S a, y>_W)`` depends on it)."""
    at_zero = theta.clone()
    at_zero[:, problem.slices()["phase0"]] = 0.0
    model = batched_matmul(columns(problem, at_zero)[0], amplitudes.to(y.dtype)[..., None])[..., 0]
    inner = (model.conj() * y).sum(-1)
    c_mat = problem.baseline_whiten.to(y.dtype)
    if c_mat.shape[0]:
        inner = inner - (times_matrix(model, c_mat.T).conj() * times_matrix(y, c_mat.T)).sum(-1)
    return in_whole_blocks(torch.angle, inner)
