"""The continuation stages of the batched fit (:func:`continuation`): data and basis broadened
alike by ``exp(-L t)`` for each ``L`` of ``FitConfig.continuation_broadening_per_s``, coarse to
fine, each fitted on the FID's first samples while ``exp(-L t)`` is above 0.1
(:func:`~scaloquant.fit.problem.stage_points`), with the shift bounds re-centred after each
stage on the groups' amplitude-weighted median shift (:func:`weighted_median_shift`) for the
per-metabolite model; and :data:`TRIAL_DTYPE`, the dtype of the columns in every
Levenberg–Marquardt run of the fit. Used by the driver (:mod:`scaloquant.fit.batched`), the
global moves (:mod:`scaloquant.fit.search`) and the physics-head models.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..types import BasisSet
from .config import FitConfig
from .evaluation import times_matrix
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
    recentre: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The continuation stages from ``theta`` ``(B, P)`` for FIDs ``fids`` ``(B, N)``, shift
    bounds about ``centre`` ``(B,)``: ``(theta, centre)`` after the last. ``recentre``: the
    bounds of each next stage are centred on the amplitude-weighted median shift of the groups
    found (:func:`weighted_median_shift`)."""
    ones = torch.ones(fids.shape[0], dtype=torch.float64, device=fids.device)
    for stage in stages:
        lower, upper = parameter_bounds(stage, centre, config)
        sol = levenberg_marquardt(
            stage,
            theta,
            data_window(stage, fids),
            ones,
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
