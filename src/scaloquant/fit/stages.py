"""The continuation stages of the batched fit (:func:`continuation`): data and basis broadened
alike by ``exp(-L t)`` for each ``L`` of ``FitConfig.continuation_broadening_per_s``, coarse to
fine, each fitted on the FID's first samples while ``exp(-L t)`` is above 0.1
(:func:`~scaloquant.fit.problem.stage_points`), with the shift bounds re-centred after each
stage on the groups' amplitude-weighted median shift (:func:`weighted_median_shift`) for the
per-metabolite model; :func:`prior_weight`, the noise variance that weighs the priors before the
fit knows its noise level; and :data:`TRIAL_DTYPE`, the dtype of the columns in every
Levenberg–Marquardt run of the fit. Used by the driver (:mod:`scaloquant.fit.batched`), the
global moves (:mod:`scaloquant.fit.search`) and the physics-head models.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..types import BasisSet
from .config import FitConfig
from .evaluation import evaluate, noise_var_from_residual, times_matrix
from .lm import levenberg_marquardt
from .problem import (
    Problem,
    data_window,
    kernel_bins,
    make_problem,
    parameter_bounds,
    stage_points,
)

#: Relative cost decrease ending a continuation stage (it only has to reach the right basin):
#: 1e-4 (was 1e-5) took 14 -> 11 and 12 -> 10 stage iterations on tissue-like and challenge
#: spectra with the same errors against the truth; 1e-3 (was 1e-4; 64 SNR-30 spectra of
#: ``bench_fit_engine.py``, seed 1): ``invivo`` 13.0 -> 9.6 stage iterations on the default
#: simulator's spectra, 11.5 -> 8.8 on tissue-like ones (ratio-to-tCr MAE 0.2129 -> 0.2130),
#: the per-metabolite model's two stages 40.2 -> 32.8 (MAE 0.0679 -> 0.0682).
STAGE_COST_RTOL = 1e-3
#: Iterations of a continuation stage. 12 (was 25; the same spectra): the per-metabolite
#: model's two stages 40.2 -> 23.3 iterations (most of its spectra ran to 25 in each; MAE
#: 0.0679 -> 0.0673, and the main pass after them no longer), tissue-like ratio MAE 0.2129 ->
#: 0.2124; 8 cost accuracy on tissue-like spectra (ratio MAE 0.2280).
STAGE_ITERATIONS = 12
#: Complex dtype of the modulated FIDs and their FFTs in the fit's Levenberg–Marquardt
#: iterations (the stages here, the final pass of :mod:`scaloquant.fit.batched`, the moves of
#: :mod:`scaloquant.fit.search`; the columns are rounded once and every product with them stays
#: float64). Rounding the columns to single precision (relative error ~1e-7) perturbs an SNR-30
#: cost by ~1e-8 of itself, three decades below :data:`~scaloquant.fit.lm.COST_RTOL`; half the
#: memory traffic and FFT work of an evaluation. The evaluation a fit ends with (amplitudes, CRLBs,
#: residual) is formed again in float64 at the final parameters.
TRIAL_DTYPE = torch.complex64


def continuation(
    stages: list[Problem],
    config: FitConfig,
    fids: torch.Tensor,
    theta: torch.Tensor,
    centre: torch.Tensor,
    prior_var: torch.Tensor,
    recentre: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The continuation stages from ``theta`` ``(B, P)`` for FIDs ``fids`` ``(B, N)``, shift
    bounds about ``centre`` ``(B,)``: ``(theta, centre)`` after the last. ``prior_var``
    ``(B,)``: the noise variance that weighs the stages' priors (a stage has no deviations; the
    one prior it can hold is ``FitConfig.mm_shift_prior_sd_hz``'s), in the data's units:
    :func:`prior_weight`. ``recentre``: the bounds of each next stage are centred on the
    amplitude-weighted median shift of the groups found (:func:`weighted_median_shift`)."""
    for stage in stages:
        lower, upper = parameter_bounds(stage, centre, config)
        sol = levenberg_marquardt(
            stage,
            theta,
            data_window(stage, fids),
            prior_var,
            lower,
            upper,
            max_iterations=STAGE_ITERATIONS,
            cost_rtol=STAGE_COST_RTOL,
            column_dtype=TRIAL_DTYPE,
            final_derivatives=False,
        )
        theta = sol.theta
        if recentre:
            centre = weighted_median_shift(stage, theta, sol.evaluation.amplitudes, centre)
    return theta, centre


def prior_weight(
    problem: Problem,
    theta: torch.Tensor,
    y: torch.Tensor,
    region_var: torch.Tensor | None,
    stiffness: torch.Tensor | None = None,
) -> torch.Tensor:
    """The noise variance ``(B,)`` that weighs the priors of the passes that run before the fit
    knows its noise level (the continuation stages, the first pass): the signal-free region's
    ``region_var`` ``(B,)``, or without one the residual's of ``problem`` at ``theta``
    ``(B, P)`` for the data window ``y`` (:func:`~scaloquant.fit.evaluation.noise_var_from_residual`;
    above the noise by the start's misfit, so those priors hold harder, as the stages only
    have to reach the right basin); ones where ``problem`` has no priors, which leaves its
    passes as they were. A prior weighed by 1 instead scales with the data's units: 1e7 times
    the noise-weighted strength on spant's Philips spectrum (region SD 3e-4), 2e-6 times on the
    tissue-like simulation (SD 726): the same spectrum times 1e-3 moved its amplitudes by up
    to 17 % of the largest (docs/history/fit-log.md "The MM shift prior's cost and weight
    (session 29, mm29)")."""
    ones = torch.ones(theta.shape[0], dtype=torch.float64, device=theta.device)
    if not (problem.penalty_active or bool((problem.prior_precision > 0).any())):
        return ones
    if region_var is not None:
        return region_var
    ev = evaluate(problem, theta, y, ones, derivatives=False, stiffness=stiffness)
    return noise_var_from_residual(problem, ev)


def stage_problem(
    basis: BasisSet, config: FitConfig, broadening_per_s: float, device: torch.device
) -> Problem:
    """The :class:`~scaloquant.fit.problem.Problem` of a continuation stage, on
    :func:`~scaloquant.fit.problem.stage_points` samples, or twice, four times... as many where the
    truncated window would hold too few points for the model."""
    keep = stage_points(basis.n_points, basis.dwell_time_s, broadening_per_s)
    half = kernel_bins(basis, config)
    while keep < basis.n_points:
        try:
            return make_problem(
                basis.truncated(keep),
                config,
                broadening_per_s=broadening_per_s,
                deviations=False,
                device=device,
                half_kernel_bins=half,
            )
        except ConfigError:
            keep *= 2
    return make_problem(
        basis, config, broadening_per_s=broadening_per_s, deviations=False, device=device
    )


def weighted_median_shift(
    problem: Problem, theta: torch.Tensor, amplitudes: torch.Tensor, previous: torch.Tensor
) -> torch.Tensor:
    """``(B,)`` amplitude-weighted median of the group shifts of ``theta`` ``(B, P)``
    (amplitudes ``(B, M)``); ``previous`` ``(B,)`` where every amplitude is 0. Weighted, so that
    small metabolites, whose shifts are poorly determined in noisy data, do not move it."""
    shift = theta[:, problem.slices()["shift"]]
    weight = times_matrix(amplitudes.to(shift.dtype), problem.group_matrix)
    order = torch.argsort(shift, dim=-1)
    cumulative = torch.cumsum(torch.gather(weight, 1, order), dim=-1)
    half = cumulative[:, -1:] / 2
    index = torch.searchsorted(cumulative.contiguous(), half.contiguous()).clamp_max(
        shift.shape[1] - 1
    )
    median = torch.gather(torch.gather(shift, 1, order), 1, index)[:, 0]
    return torch.where(cumulative[:, -1] > 0, median, previous)
