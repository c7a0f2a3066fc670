"""The global moves of the batched fit for the per-metabolite model, batched.

With a shift and a damping per metabolite (``grouping="per_metabolite"``, the ``simulated``
preset) the residual has many local minima: multiplets a few Hz apart and near-identical
spectra (Cr/PCr, GPC/PCho) let a metabolite settle on a neighbour's line, and no continuous
path leads a local fit out. The measures below escape them (those of the scipy fit this
package had until issue 12, made here for a whole batch at once on
:func:`scaloquant.fit.lm.levenberg_marquardt`):

* Re-centred shift bounds (:func:`~scaloquant.fit.stages.weighted_median_shift`): after every continuation stage the
  shift bounds are centred on the amplitude-weighted median shift of the groups found, not on
  the cross-correlation start, which follows the largest peaks and can miss it by 2-3 Hz.
* Resets (``FitConfig.max_resets``): a group whose shift ends in the outer
  :data:`LOST_MARGIN` of its bounds, or whose damping ends in the top :data:`LOST_MARGIN` of its
  range, has usually wandered onto another line; it restarts from the median damping and shift
  of the others, and the refit is kept for the spectra whose cost drops.
* Twin swaps (``FitConfig.twin_max_separation_hz``, :func:`scaloquant.fit.model.twin_groups`):
  the fit is repeated with the lineshapes of a twin pair exchanged, kept where the cost drops.
  A kept swap moves the other groups too and can leave one on a bound, so the spectra with a
  kept swap that lowered the cost by more than :data:`FOLLOW_MIN` noise variances get the
  resets again (200 SNR-30 draws of ``benchmarks/validate_fit_crlb.py``, seed 0: draw 174
  ended with Glu on its lower shift bound, -6.35 Hz, at a cost of 496.5 noise variances;
  with the reset after the swap at 2.61 Hz and 477.2, the fit from the true parameters at
  2.44 Hz and 461.0; ``tests/unit/test_fit_search.py``).
* A second search (:func:`second_search`): where the residual is clearly larger than an
  independent noise estimate (:data:`MISFIT_RATIO`, the spectrum's signal-free region), the
  whole search is repeated from all groups at the weighted median shift of the first, and the
  better one kept.

A move is a probe of :data:`PROBE_ITERATIONS` LM iterations first; only the spectra whose cost
is by then within ``1 + PROBE_MARGIN`` of their current cost are fitted to the end.
"""

from __future__ import annotations

import numpy as np
import torch

from ..types import BasisSet
from .config import FitConfig
from .evaluation import evaluate
from .lm import Solution, levenberg_marquardt, put_rows, take_rows
from .model import LOST_MARGIN, MISFIT_RATIO, twin_groups
from .problem import Problem, parameter_bounds
from .stages import TRIAL_DTYPE, continuation, prior_weight

#: LM iterations of a move's probe, and the margin over the current cost it must be within.
PROBE_ITERATIONS = 5
PROBE_MARGIN = 0.05
#: A kept move counts as one that moved the fit (and so calls for another round of resets, or,
#: for a swap, the resets after the swaps) only where it lowered the cost by more than this many
#: noise variances (``stop_var``): of the 39 Cr/PCr swaps kept on 128 SNR-30 spectra of
#: ``bench_fit_engine.py`` (seed 1), 30 lowered it by under 0.05, the same minimum found again.
#: 0.5 (was: any decrease): 406 -> 393 probes, LM iterations per spectrum 75.95 -> 74.98, no
#: amplitude moved by more than 0.03 CRLB SD.
FOLLOW_MIN = 0.5
#: A move fitted to the end after its probe gives up where its Gauss-Newton model predicts no
#: minimum below the current cost plus this many noise variances (``stop_var``;
#: :func:`scaloquant.fit.lm.levenberg_marquardt` ``give_up``): it would not be kept. Not in the
#: probes: from a swapped or reset start the model's predicted decrease is far below the one
#: the iterations find (applied there with no margin, 21 of 128 spectra lost a kept move). 128
#: SNR-30 spectra of ``bench_fit_engine.py`` (seed 1), amplitudes against the search without
#: it: margin 5, every amplitude within 1e-5 CRLB SD, LM iterations per spectrum 55.2 -> 52.6
#: (``n_evaluations``); margin 2 and 1 lost a kept move on spectra 12 and 116 (cost 605.6 ->
#: 608.8, 924.3 -> 924.9; 1.7 SD), margin 0 on two more.
GIVE_UP_MARGIN = 5.0


def applies(config: FitConfig) -> bool:
    """The moves serve the per-metabolite model (groups of one metabolite each)."""
    return config.grouping == "per_metabolite"


def twins(basis: BasisSet, config: FitConfig, group_of: np.ndarray) -> tuple:
    """The twin pairs ``(g, h, f_h - f_g)`` of ``basis`` (prepared for the fit) under its
    groups ``group_of`` ``(M,)``: :func:`scaloquant.fit.model.twin_groups` with the basis
    damped by the starting damping."""
    if config.twin_max_separation_hz <= 0:
        return ()
    damped = basis.fids * np.exp(-config.initial_damping_per_s * basis.time_axis_s())
    return twin_groups(basis, config, group_of, damped)


def lost_groups(
    problem: Problem, config: FitConfig, theta: torch.Tensor, centre_hz: torch.Tensor
) -> torch.Tensor:
    """``(B, G)``: groups whose shift lies in the outer :data:`LOST_MARGIN` of its bounds about
    ``centre_hz`` ``(B,)`` or whose damping lies in the top :data:`LOST_MARGIN` of its range."""
    sl = problem.slices()
    lo, hi = config.shift_bounds_hz
    margin = LOST_MARGIN * (hi - lo) / 2
    shift = theta[:, sl["shift"]] - centre_hz[:, None]
    lost = (shift <= lo + margin) | (shift >= hi - margin)
    if problem.lorentzian:
        d_lo, d_hi = config.damping_bounds_per_s
        lost |= theta[:, sl["damping"]] >= d_hi - LOST_MARGIN * (d_hi - d_lo)
    return lost


def _median_of_others(values: torch.Tensor, lost: torch.Tensor) -> torch.Tensor:
    """``(B,)`` median of ``values`` ``(B, G)`` over the groups not ``lost``."""
    return torch.nanmedian(values.masked_fill(lost, float("nan")), dim=-1).values


def global_moves(
    problem: Problem,
    config: FitConfig,
    solution: Solution,
    y: torch.Tensor,
    noise_var: torch.Tensor,
    centre_hz: torch.Tensor,
    twin_pairs: tuple,
    fixed_amplitudes: torch.Tensor | None = None,
    stop_var: torch.Tensor | None = None,
) -> Solution:
    """Resets of lost groups and twin swaps (module docstring) from ``solution`` of the data
    windows ``y`` ``(B, K)``, each kept for the spectra whose cost drops; returns the best fit
    of every spectrum, its iterations counting those of the moves. ``fixed_amplitudes``
    ``(B, M)``: amplitudes held fixed (:func:`scaloquant.fit.evaluation.evaluate`); ``stop_var``
    ``(B,)``: the noise variance of the LM's stopping rule
    (:func:`scaloquant.fit.lm.levenberg_marquardt`)."""
    lower, upper = parameter_bounds(problem, centre_hz, config)
    sl = problem.slices()
    theta = solution.theta.clone()
    cost = solution.evaluation.cost.clone()
    iterations = solution.iterations.clone()

    def attempt(rows: torch.Tensor, trial: torch.Tensor) -> torch.Tensor:
        """Fit ``trial`` ``(R, P)`` for the spectra ``rows`` ``(R,)``; keep it where the cost
        drops. Returns the mask ``(R,)`` of the kept ones that moved the fit
        (:data:`FOLLOW_MIN`)."""
        kept = torch.zeros(rows.numel(), dtype=torch.bool, device=theta.device)
        if rows.numel() == 0:
            return kept

        def fit(
            sub: torch.Tensor, start: torch.Tensor, n_iter: int, give_up: torch.Tensor | None = None
        ) -> Solution:
            r = rows[sub]
            return levenberg_marquardt(
                problem,
                start,
                y[r],
                noise_var[r],
                lower[r],
                upper[r],
                max_iterations=n_iter,
                column_dtype=TRIAL_DTYPE,
                fixed_amplitudes=None if fixed_amplitudes is None else fixed_amplitudes[r],
                stop_var=None if stop_var is None else stop_var[r],
                give_up=give_up,
                final_derivatives=False,
            )

        everyone = torch.arange(rows.numel(), device=theta.device)
        probe = fit(everyone, trial, PROBE_ITERATIONS)
        iterations[rows] += probe.iterations
        final_theta, final_cost = probe.theta, probe.evaluation.cost.clone()
        going = ~probe.converged & (probe.evaluation.cost <= (1 + PROBE_MARGIN) * cost[rows])
        if bool(going.any()):
            sub = torch.nonzero(going)[:, 0]
            # the move gives up where it cannot beat the current fit (GIVE_UP_MARGIN)
            give_up = None
            if stop_var is not None:
                give_up = cost[rows[sub]] + GIVE_UP_MARGIN * stop_var[rows[sub]]
            rest = fit(sub, probe.theta[sub], config.max_iterations, give_up)
            iterations[rows[sub]] += rest.iterations
            final_theta[sub], final_cost[sub] = rest.theta, rest.evaluation.cost
        kept = final_cost < cost[rows]
        moved = kept
        if stop_var is not None:
            moved = kept & (cost[rows] - final_cost > FOLLOW_MIN * stop_var[rows])
        theta[rows[kept]] = final_theta[kept]
        cost[rows[kept]] = final_cost[kept]
        return moved

    def resets(candidates: torch.Tensor) -> None:
        """Up to ``config.max_resets`` rounds of resets for the spectra ``candidates`` ``(B,)``.
        A round after the first only for the spectra whose reset was kept in the round before:
        where it was not, the parameters, the lost groups and so the trial are the same again,
        and so is its fit (64 SNR-30 spectra of ``bench_fit_engine.py``, seed 1: the second
        round 46 -> 20 spectra and the one after the swaps 20 -> 5, 13.0 + 5.2 -> 7.3 + 1.9
        LM iterations per spectrum, the same amplitudes to the bit)."""
        candidates = candidates.clone()
        for _ in range(config.max_resets):
            lost = lost_groups(problem, config, theta, centre_hz)
            rows = torch.nonzero(candidates & lost.any(-1) & ~lost.all(-1))[:, 0]
            if rows.numel() == 0:
                break
            trial = theta[rows].clone()
            lost = lost[rows]
            for key in ("damping", "shift"):
                values = trial[:, sl[key]]
                median = _median_of_others(values, lost)
                trial[:, sl[key]] = torch.where(lost, median[:, None], values)
            kept = attempt(rows, trial)
            if not bool(kept.any()):
                break
            candidates[:] = False
            candidates[rows[kept]] = True

    resets(torch.ones(theta.shape[0], dtype=torch.bool, device=theta.device))
    everyone = torch.arange(theta.shape[0], device=theta.device)
    swapped = torch.zeros(theta.shape[0], dtype=torch.bool, device=theta.device)
    for g, h, offset_hz in twin_pairs:
        trial = theta.clone()
        d, s = sl["damping"].start, sl["shift"].start
        trial[:, [d + g, d + h]] = theta[:, [d + h, d + g]]
        trial[:, s + g] = theta[:, s + h] + offset_hz
        trial[:, s + h] = theta[:, s + g] - offset_hz
        swapped |= attempt(everyone, trial)
    # a swap moves the other groups too: one that the swap left on a bound gets its reset
    resets(swapped)
    # the evaluation (and convergence) at the best parameters: a short polish from there, of
    # the spectra that moved only: polishing every spectrum of the batch where any moved gave
    # a spectrum that did not another fit by its batch (SNR-30 default-simulator spectrum 1 of
    # seed 1, `simulated` preset: 1.9 % of an amplitude, 0.023 CRLB SDs, alone against in any
    # batch; docs/history/fit-log.md "A spectrum's fit and its batch (session 36, batchinv36)")
    rows = torch.nonzero((theta != solution.theta).any(-1))[:, 0]
    if rows.numel() == 0:
        return Solution(theta, solution.evaluation, iterations, solution.converged)
    last = levenberg_marquardt(
        problem,
        theta[rows],
        y[rows],
        noise_var[rows],
        lower[rows],
        upper[rows],
        max_iterations=config.max_iterations,
        fixed_amplitudes=None if fixed_amplitudes is None else fixed_amplitudes[rows],
        column_dtype=TRIAL_DTYPE,
        stop_var=None if stop_var is None else stop_var[rows],
    )
    theta[rows] = last.theta
    iterations[rows] += last.iterations
    converged = solution.converged.clone()
    converged[rows] = last.converged
    # every spectrum's own evaluation: the moved ones' from their polish
    evaluation = take_rows(solution.evaluation, everyone)
    put_rows(evaluation, rows, last.evaluation)
    return Solution(theta, evaluation, iterations, converged)


def second_search(
    stages: list[Problem],
    final: Problem,
    config: FitConfig,
    fids: torch.Tensor,
    y: torch.Tensor,
    solution: Solution,
    centre_hz: torch.Tensor,
    twin_pairs: tuple,
    region_var: torch.Tensor,
) -> tuple[Solution, torch.Tensor]:
    """The search again (continuation, final fit, moves) for the spectra of ``fids`` ``(B, N)``
    whose cost in ``solution`` exceeds :data:`MISFIT_RATIO` squared times that of noise of
    variance ``region_var`` ``(B,)`` (per real part), from every group at the median shift
    ``centre_hz`` ``(B,)`` and the starting damping; kept where the cost drops. Returns the
    solution and the shift bounds' centre ``(B,)``: the search's re-centred one where it won
    (a later pass bounded about ``centre_hz`` would clip the shifts it found)."""
    n_real = 2 * y.shape[-1]
    misfit = solution.evaluation.cost > MISFIT_RATIO**2 * n_real * region_var
    rows = torch.nonzero(misfit)[:, 0]
    if rows.numel() == 0:
        return solution, centre_hz
    sl = final.slices()
    theta = solution.theta[rows].clone()
    theta[:, sl["damping"]] = config.initial_damping_per_s if final.lorentzian else 0.0
    theta[:, sl["shift"]] = centre_hz[rows, None]
    centre = centre_hz[rows]
    prior_var = prior_weight(final, theta, y[rows], region_var[rows])
    theta, centre = continuation(stages, config, fids[rows], theta, centre, prior_var, True)
    lower, upper = parameter_bounds(final, centre, config)
    sol = levenberg_marquardt(
        final, theta, y[rows], prior_var, lower, upper, max_iterations=config.max_iterations,
        column_dtype=TRIAL_DTYPE, stop_var=region_var[rows],
    )  # fmt: skip
    sol = global_moves(
        final, config, sol, y[rows], prior_var, centre, twin_pairs, stop_var=region_var[rows]
    )
    better = sol.evaluation.cost < solution.evaluation.cost[rows]
    if not bool(better.any()):
        return solution, centre_hz
    won = rows[better]
    centre_hz = centre_hz.clone()
    centre_hz[won] = centre[better]
    theta = solution.theta.clone()
    theta[won] = sol.theta[better]
    iterations = solution.iterations.clone()
    iterations[rows] += sol.iterations
    converged = solution.converged.clone()
    converged[won] = sol.converged[better]
    ones = torch.ones(y.shape[0], dtype=torch.float64, device=y.device)
    evaluation = evaluate(final, theta, y, ones)  # at the best of the two, every row
    return Solution(theta, evaluation, iterations, converged), centre_hz
