"""The physics head's pure functions (:mod:`scaloquant.models.physics`' functional core): the
network's outputs as the fit's parameters and back, the differentiable least-squares amplitudes of
the training loss, and the figures measured on the fit's model at a ``theta``: the amplitudes'
CRLB SDs, the relative fit residual, the metabolites over the data, the network SD's calibration.

Network outputs (``3 G + 3`` for ``G`` lineshape groups), each mapped into a documented range
(:class:`~scaloquant.models.physics_config.PhysicsQuantifierConfig`) by a logistic function, so
every prediction is a valid start: ``u = sigmoid(z)`` for damping ``(G)``, shift ``(G)``,
Gaussian ``(G)`` and ``phi1``, ``value = low + (high - low) u``; ``phi0 = atan2(z_sin, z_cos)``
(the full circle, no wrap-around).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from ..fit.crlb import crlb_amplitude_covariance, crlb_variances
from ..fit.evaluation import (
    Evaluation,
    Workspace,
    columns,
    complex_residual,
    residual_and_baseline,
    stack,
    w_inner,
)
from ..fit.problem import Problem
from .physics_config import PhysicsQuantifierConfig


def n_outputs(n_groups: int) -> int:
    """Network outputs for ``n_groups`` lineshape groups: damping, shift and Gaussian per group,
    ``phi1``, and ``cos``/``sin`` of ``phi0``."""
    return 3 * n_groups + 3


def output_ranges(
    config: PhysicsQuantifierConfig, n_groups: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Low and high ``(3 G + 1,)`` of damping, shift, Gaussian (per group) and ``phi1``."""
    g = n_groups
    pairs = (
        [config.damping_range_per_s] * g
        + [config.shift_range_hz] * g
        + [config.gauss_range_per_s2] * g
        + [config.phase1_range_rad_per_ppm]
    )
    lo, hi = zip(*pairs, strict=True)
    return torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64)


def theta_from_outputs(
    problem: Problem, outputs: torch.Tensor, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """The fit's ``theta`` ``(B, P)`` (float64; deviations 0) from network outputs ``(B, 3 G +
    3)`` (module docstring); ``low``, ``high`` ``(3 G + 1,)``."""
    z = outputs.to(torch.float64)
    g = problem.n_groups
    ranged = low + (high - low) * torch.sigmoid(z[:, : 3 * g + 1])
    phi0 = torch.atan2(z[:, 3 * g + 2], z[:, 3 * g + 1])
    deviations = z.new_zeros(z.shape[0], 2 * problem.n_metabolites, dtype=torch.float64)
    theta = torch.cat([ranged[:, : 3 * g], phi0[:, None], ranged[:, 3 * g :], deviations], dim=1)
    if not problem.lorentzian:
        theta = theta.index_fill(1, torch.arange(g, device=theta.device), 0.0)
    if not problem.gaussian:
        theta = theta.index_fill(1, torch.arange(2 * g, 3 * g, device=theta.device), 0.0)
    return theta


def normalised_theta(
    problem: Problem, theta: torch.Tensor, low: torch.Tensor, high: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``theta`` ``(B, P)`` in the network's units: ``(u (B, 3 G + 1)`` in ``[0, 1]`` for the
    ranged parameters, ``phi0 (B,)`` in rad)`` (the inverse of :func:`theta_from_outputs` before
    its logistic function)."""
    g = problem.n_groups
    ranged = torch.cat([theta[:, : 3 * g], theta[:, 3 * g + 1 : 3 * g + 2]], dim=1)
    return (ranged - low) / (high - low), theta[:, 3 * g]


def least_squares_amplitudes(
    problem: Problem, theta: torch.Tensor, y: torch.Tensor, *, ridge: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable amplitudes for training: the unconstrained least-squares solution in the
    fit's baseline-eliminating metric ``W`` (:mod:`scaloquant.fit.evaluation`), clamped at 0, and
    the relative residual ``|y - S a|_W^2 / |y|_W^2`` ``(B,)`` with those clamped amplitudes.

    ``theta`` ``(B, P)``, ``y`` ``(B, K)`` -> ``(a (B, M), relative residual (B,))``, computed
    in ``problem``'s precision (:func:`problem_in`: single precision halves the cost of the
    training loss). ``ridge`` is relative to the Gram matrix' largest diagonal (keeps
    unidentifiable columns solvable, and the single-precision solve stable).
    """
    dtype = problem.time_s.dtype
    theta = theta.to(dtype)
    cols = stack(columns(problem, theta)[0])
    ys = stack(y.to(problem.fids.dtype)[..., None])
    gram = w_inner(problem, cols, cols)
    h = w_inner(problem, cols, ys)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    scale = torch.diagonal(gram, dim1=-2, dim2=-1).amax(-1).clamp_min(1e-300)
    a = torch.linalg.solve(gram + ridge * scale[:, None, None] * eye, h)[..., 0].clamp_min(0.0)
    r = ys - cols @ a[..., None]
    cost = w_inner(problem, r, r)[:, 0, 0]
    norm = w_inner(problem, ys, ys)[:, 0, 0].clamp_min(1e-300)
    return a, cost / norm


def problem_in(problem: Problem, dtype: torch.dtype) -> Problem:
    """``problem`` with its real tensors in ``dtype`` and its complex ones in the matching
    complex type (integer and boolean tensors as they are)."""
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    changes = {}
    for name in problem.__dataclass_fields__:
        value = getattr(problem, name)
        if isinstance(value, torch.Tensor) and value.is_complex():
            changes[name] = value.to(cdtype)
        elif isinstance(value, torch.Tensor) and value.is_floating_point():
            changes[name] = value.to(dtype)
    return replace(problem, **changes)


def crlb_sd(
    problem: Problem,
    ev: Evaluation,
    noise_var: torch.Tensor,
    workspace: Workspace | None = None,
):
    """CRLB standard deviations ``(B, M)`` of the amplitudes of evaluation ``ev``: the fit's
    bound (:func:`scaloquant.fit.crlb.crlb`, priors included), its diagonal alone
    (:func:`scaloquant.fit.crlb.crlb_variances`; ``workspace`` its)."""
    var, _ = crlb_variances(problem, ev, noise_var, workspace=workspace)
    return _amplitude_sd(problem, var)


def crlb_sd_and_covariance(
    problem: Problem, ev: Evaluation, noise_var: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`crlb_sd`'s SDs ``(B, M)`` (the same numbers) and the amplitudes' covariance bound
    ``(B, M, M)`` (:func:`scaloquant.fit.crlb.crlb_amplitude_covariance`): what the polish's
    pair correlations are read from, as the fit's."""
    var, _, cov = crlb_amplitude_covariance(problem, ev, noise_var)
    return _amplitude_sd(problem, var), cov


def _amplitude_sd(problem: Problem, var: torch.Tensor) -> torch.Tensor:
    """The amplitudes' SDs ``(B, M)`` of the bound's variances ``var`` ``(B, M + P_free)``
    (:func:`crlb_sd` and :func:`crlb_sd_and_covariance`: one reading of them)."""
    return var[:, : problem.n_metabolites].clamp_min(0).sqrt()


def fit_residual_checks(
    problem: Problem, ev: Evaluation, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(relative residual, residual SD)`` ``(B,)`` each of evaluation ``ev`` over the fit
    window ``y`` ``(B, K)``, from one residual ``r = y - S a - B c``, the baseline ``B c``
    solved from the residual by the fit's own code
    (:func:`~scaloquant.fit.evaluation.residual_and_baseline`, at the stiffness ``ev``'s
    amplitudes were solved at):

    - ``|r| / |y|`` (Euclidean norms over the window; NaN for an empty window): the definition
      of the fit's ``fit_residual`` quality column (``scaloquant.quantify.checks.fit_checks``);
    - the SD of each real part, ``sqrt(mean |r|^2 / 2)``, as
      :func:`scaloquant.signal.noise.residual_sd` of the fit's rebuilt residual (what
      :func:`~scaloquant.signal.noise.residual_over_noise` divides by the data's noise SD:
      the ``residual_over_noise`` quality column).

    The polish solves at its fit model's fixed stiffness (its problems have no per-spectrum
    ``stiffnesses``, so ``ev.stiffness`` is None), and so does this residual. ``quantify``'s
    adaptive baseline does not change the polish's stiffness: it fits the spectra its screen
    flags again (``fit_spectra``), and their rows take that fit's amplitudes and residual
    (docs/history/physics-models-log.md "The physics-head residual's baseline stiffness
    (session 31, `resid31`)")."""
    r, _ = residual_and_baseline(problem, ev)
    sd = r.abs().square().mean(-1).div(2).sqrt()
    return _over_data(r, y), sd


def metabolite_fraction(ev: Evaluation, y: torch.Tensor) -> torch.Tensor:
    """``|S a| / |y|`` ``(B,)`` over the fit window ``y`` ``(B, K)`` of evaluation ``ev``: the
    fitted metabolites (macromolecules and lipids included, the baseline not) against the data,
    as the fit's :attr:`scaloquant.fit.FitResult.metabolite_fraction` (the quality checks
    ``baseline_cancels`` and ``no_metabolites``); NaN for an empty window."""
    return _over_data(y - complex_residual(ev), y)


def _over_data(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``|x| / |y|`` ``(B,)`` of windows ``(B, K)``; NaN where ``y`` is all zeros."""
    data = torch.linalg.vector_norm(y, dim=-1)
    ratio = torch.linalg.vector_norm(x, dim=-1) / data.clamp_min(1e-300)
    return torch.where(data > 0, ratio, torch.full_like(ratio, math.nan))


def network_sd_factors(
    amplitudes: np.ndarray, sd: np.ndarray, truth: np.ndarray, *, floor: float = 1e-3
) -> tuple[float, ...]:
    """Per-amplitude calibration factors ``(M,)`` of the network's SD: the RMS over spectra of
    the z-scores ``(a - a_true) / sd`` (bias included), so that the scaled z-scores have unit
    RMS on the spectra given (``(n, M)`` each: the validation set at training time). Amplitudes
    whose SD is 0 (no signal in the window) get factor 1; factors are at least ``floor``."""
    sd = np.asarray(sd, dtype=np.float64)
    ok = sd > 0
    z = np.where(ok, (np.asarray(amplitudes) - np.asarray(truth)) / np.where(ok, sd, 1.0), 0.0)
    count = ok.sum(0)
    rms = np.sqrt((z**2).sum(0) / np.maximum(count, 1))
    rms = np.where((count > 0) & np.isfinite(rms), rms, 1.0)
    return tuple(float(f) for f in np.maximum(rms, floor))
