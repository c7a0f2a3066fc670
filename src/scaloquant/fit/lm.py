"""The Levenberg–Marquardt solver of the batched fit (:func:`levenberg_marquardt` ->
:class:`Solution`): the normal equations with the priors, the damped step, the stopping rules.

Nonlinear parameters. Levenberg–Marquardt (Marquardt's diagonal scaling; for the
per-metabolite model Levenberg's in the parameters scaled by typical sizes, see
:data:`~scaloquant.fit.problem.SCALING_FLOOR_PER_METABOLITE`), one damping factor per
spectrum, on the variable-projection functional (:mod:`scaloquant.fit.evaluation`) with
Kaufman's Jacobian (BIT 15:49, 1975) in the ``W`` metric: with ``D = (dS/dtheta) a`` ``(K, P)``
and ``E = <S_F, D>_W`` over the passive set ``F``, ``J^T J = <D, D>_W - E^T G_FF^-1 E`` and the
gradient ``-<D, r>_W``, plus the priors' diagonal. Bounds are enforced by projection. Spectra
that have converged leave the batch.

The measured choices (tolerances, damping factors, dtypes) are documented at their constants
and in ``docs/history/fit-log.md`` ("Fewer iterations", sessions 8, 9 and 13). Measured and not
adopted: geodesic acceleration (Transtrum & Sethna 2012) and NL2SOL's structured secant term
(Dennis, Gay & Welsch 1981), "Geodesic acceleration and a structured secant for the in-vivo
default (session 29, geo29)" there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import torch

from .evaluation import (
    Evaluation,
    Jacobian,
    add_prior_curvature,
    evaluate,
    noise_var_from_residual,
    objective,
    pair_products,
    residual_cost,
    spd_solve,
    times_matrix,
    with_derivatives,
)
from .problem import Problem

#: Relative cost decrease below which an accepted LM step ends a spectrum's fit. At a good fit
#: the cost is about ``2K sigma^2`` (``K`` ~ 250 window bins), and moving an estimate by one
#: standard deviation changes it by about ``sigma^2``; a last gain of 1e-5 of the cost
#: (~5e-3 ``sigma^2``, with about as much left when LM converges linearly) leaves the estimates
#: within ~0.1 SD of the minimum. Measured against 1e-6 (64 tissue-like ``invivo`` spectra, 64
#: default-simulator spectra with ``simulated-batched``, the 28 challenge spectra): mean
#: iterations of the final run 13.3 -> 9.9, 23.5 -> 17.8, 14.2 -> 9.7, mean absolute errors
#: against the truth unchanged (3.668 -> 3.666 mM, 0.1104 -> 0.1105).
COST_RTOL = 1e-5
#: The noise-scaled stopping rule (``levenberg_marquardt(stop_var=...)``, the per-metabolite
#: model's passes): an accepted step ends a spectrum's run when it lowered the cost by less than
#: ``COST_NOISE_TOL`` noise variances and the undamped step predicts no more than that. In the
#: quadratic model the cost above its minimum, in noise variances, is the squared Mahalanobis
#: distance of the parameters from it in CRLB units, so 0.03 leaves every parameter within
#: ~0.17 CRLB SD (most far closer). The noise variance is the smaller of the signal-free
#: region's and the current residual's (``cost / 2K``): on noiseless spectra, whose region
#: holds the lines' tails, the latter keeps the rule relative (~6e-5 of the cost) and strict.
#: Measured on the trajectories of 64 SNR-30 spectra of ``bench_fit_engine.py`` (seed 1) run
#: to a strict end, cost left above the strict minimum at the stop, in noise variances (median
#: / 90th percentile): the per-metabolite main pass 21.9 -> 16.7 iterations, 0.001 / 0.004 ->
#: 0.007 / 0.045; its last pass 15.5 -> 10.6, 0.001 / 0.005 -> 0.008 / 0.029. The grouped
#: models keep the relative rule: with the noise rule the in-vivo model took more iterations
#: on the default simulator's spectra (23.7 -> 27.2; it does not fit them, and the region's
#: noise is far below the residual) and as many on tissue-like ones (9.8 -> 10.0).
COST_NOISE_TOL = 0.03
#: LM damping factor: start, and the factors after a rejected / accepted step. LM_DOWN 0.5
#: (was 0.3; the same spectra): rejected steps per spectrum (trials that cost an evaluation and
#: move nothing) 7.0 -> 4.7 (``invivo`` final pass), 8.0 -> 4.4 (per-metabolite main passes),
#: 2.5 -> 2.0 (tissue-like), and fewer iterations in all (23.7 -> 22.1, 37.4 -> 34.0, 9.8 ->
#: 9.7); LM_UP 4 (was 10) took more (28.5). Session 9 measured the gain-ratio rule (lower the
#: damping by 1/3 only after a step whose gain ratio is >= 0.75; Madsen, Nielsen & Tingleff
#: 2004, sec. 3.1): 1-3 % fewer iterations (``invivo`` 34.2 -> 33.3, tissue-like 18.6 -> 18.5),
#: but with the band-limited water removal it took the spant Philips spectrum to a worse
#: minimum (relative residual 0.0955 -> 0.0960, Glx/tCr 1.371 -> 1.219 against LCModel's
#: 1.510), so the fixed factor stays (docs/history/fit-log.md "Fewer iterations, again
#: (session 9)").
LM_START, LM_UP, LM_DOWN = 1e-3, 10.0, 0.5
#: Above this damping factor a spectrum is taken as converged (no step lowers its cost).
LM_MAX = 1e10
#: The stopping rule of the per-metabolite model (``Problem.gauss_newton_stop``): an accepted
#: step's relative gain below ``cost_rtol`` ends a run only where the undamped (Gauss-Newton)
#: step predicts a relative decrease below it too. With Levenberg's damping (the scaling floor
#: of 1) the damping is set by the largest scaled curvature, so the parameters of a small
#: metabolite move by tiny steps of tiny gain far from their minimum, and the gain alone
#: stopped there: 200 SNR-30 draws (``benchmarks/validate_fit_crlb.py``, seed 0), the cost
#: with this rule lower by > 0.1 (> 1) noise variances in 31 (17) draws, higher in 10 (other
#: basins), the same within 0.01 in 146; model evaluations 63.6 -> 84.0 per spectrum
#: (``bench_fit_engine.py``: 3.46 -> 2.63 spectra per CPU-s; docs/history/fit-log.md "SD over
#: noise draws against the CRLB" has a looser variant). The
#: grouped models keep the gain alone (Marquardt's scaling moves every parameter by its own
#: curvature). Where a noise variance is given (``stop_var``, the per-metabolite model's passes
#: in :func:`~scaloquant.fit.batched.solve`) both thresholds are :data:`COST_NOISE_TOL` noise
#: variances instead.

#: Real dtype of the derivative columns and of their products (``J^T J``, ``E``) in the
#: Levenberg–Marquardt iterations that run in :data:`~scaloquant.fit.stages.TRIAL_DTYPE` (the
#: evaluation they return, whose covariance :func:`~scaloquant.fit.crlb.crlb` forms, is formed again
#: in float64; the gradient and the Schur complement with the Gram block stay float64 in any case).
#: float32 (the columns hold single-precision values already, so ``J^T J`` moves by ~1e-6 of its
#: largest element) took the normal equations from 41 to 29 ms per accepted step (128 ``invivo``
#: spectra, 1 thread), but the changed steps ended the relative stopping rule elsewhere on 1-2 of
#: 128 default-simulator spectra (up to 0.2 CRLB SD; with float64 the fit is main's to 1e-6 SD)
#: and, measured end to end on a loaded machine, paid nothing visible: float64.
NORMAL_EQUATIONS_DTYPE = torch.float64


def _normal_equations(
    problem: Problem, ev: Evaluation, theta: torch.Tensor, noise_var: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss–Newton matrix ``(B, P_free, P_free)`` and gradient ``(B, P_free)`` over the free
    parameters (Kaufman, ``W`` metric)."""
    jtj, grad = _data_normal_equations(problem, ev)
    return _with_priors(problem, jtj, grad, theta, noise_var)


def _data_normal_equations(problem: Problem, ev: Evaluation) -> tuple[torch.Tensor, torch.Tensor]:
    """The data's part of :func:`_normal_equations` (no priors): ``J^T J`` ``(B, P_free,
    P_free)`` and gradient ``(B, P_free)``, from ``ev``'s columns and its compact derivative
    columns (``ev.jacobian``, :class:`~scaloquant.fit.evaluation.Jacobian`). ``J^T J`` and
    ``E`` are formed in the derivative columns' dtype (:data:`NORMAL_EQUATIONS_DTYPE` in the
    iterations), the gradient and the Schur complement in the Gram's (float64).

    Every product is one of the base columns' real and imaginary parts
    (:func:`~scaloquant.fit.evaluation.pair_products`): ``<D_p, D_p'> = c_p c_p' <J^s U_j,
    J^s' U_j'>`` with ``<J U, J V> = <U, V>`` and ``<J U, V> = -<U, J V>``."""
    jac = ev.jacobian
    wide = ev.gram.dtype
    b, q, _, k = jac.base.shape
    u2 = jac.base.reshape(b, 2 * q, k)  # interleaved rows: Re U_0, Im U_0, Re U_1, ...
    cu2 = jac.w_base.reshape(b, 2 * q, -1)
    idx, coef = jac.index, jac.coef.to(wide)
    gh = pair_products(u2 @ u2.mT - cu2 @ cu2.mT).to(wide)  # [<U, U>, <U, J U>] (B, q, 2q)
    turned = torch.cat([-gh[..., q:], gh[..., :q]], dim=-1)  # [<J U, U>, <J U, J U>]
    every = torch.cat([gh, turned], dim=1)  # (B, 2q, 2q)
    jtj = every[:, idx][:, :, idx] * (coef[:, None] * coef)
    # the gradient in the Gram's precision: it sets where the iterations end (a noiseless fit
    # of a nearly collinear pair, Cr and PCr, stopped 4e-5 off with a single-precision one)
    u2w, cu2w = u2.to(wide), cu2.to(wide)
    r2, cr2 = ev.residual.reshape(b, 2, k), ev.w_residual.reshape(b, 2, -1)
    grad = -pair_products(r2 @ u2w.mT - cr2 @ cu2w.mT)[:, 0, idx] * coef
    m = ev.columns.shape[-1]
    s2 = ev.columns.to(u2.dtype).mT.reshape(b, 2 * m, k)
    cs2 = ev.w_columns.to(u2.dtype).mT.reshape(b, 2 * m, -1)
    e = pair_products(s2 @ u2.mT - cs2 @ cu2.mT).to(wide)[:, :, idx] * coef  # (B, M, P_free)
    f = ev.passive
    both = f[:, :, None] & f[:, None, :]
    masked = torch.where(both, ev.gram, torch.zeros_like(ev.gram)) + torch.diag_embed(
        (~f).to(ev.gram.dtype)
    )
    e_f = e * f[..., None]
    jtj = jtj - e_f.mT @ spd_solve(masked, e_f)
    return jtj, grad


def _with_priors(
    problem: Problem,
    jtj: torch.Tensor,
    grad: torch.Tensor,
    theta: torch.Tensor,
    noise_var: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_data_normal_equations`' ``(jtj, grad)`` with the priors' terms at ``theta``
    ``(B, P)`` and the noise variance ``(B,)`` added (new tensors; the curvature's by
    :func:`~scaloquant.fit.evaluation.add_prior_curvature`, as the CRLB's)."""
    jtj = jtj.clone()
    prior = add_prior_curvature(problem, jtj, noise_var)
    grad = grad + prior * theta[:, problem.free_index]
    if problem.penalty_active:
        half_grad = times_matrix(theta, problem.kernel_penalty) + problem.kernel_linear
        grad = grad + noise_var[:, None] * half_grad[:, problem.free_index]
    return jtj, grad


def _step(
    problem: Problem, jtj: torch.Tensor, grad: torch.Tensor, lam: torch.Tensor, held: torch.Tensor
) -> torch.Tensor:
    """LM step ``-(J^T J + lam diag)^-1 g`` over the free parameters, ``(B, P_free)``, with
    those ``held`` ``(B, P_free)`` (on a bound) kept at 0."""
    scale = problem.scale[problem.free_index]
    diag = torch.diagonal(jtj, dim1=-2, dim2=-1)
    # the floor (SCALING_FLOOR_*): keeps unidentifiable parameters (a group with no amplitude)
    # still; at 1 it is the scaling itself, the same damping of every theta_j / s_j
    floor = problem.scaling_floor * (diag * scale**2).amax(-1, keepdim=True) / scale**2
    scaling = torch.maximum(diag, floor.clamp_min(1e-300))
    a = jtj + torch.diag_embed(lam[:, None] * scaling + 1e-12 * scaling)
    move = ~held
    both = move[:, :, None] & move[:, None, :]
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    a = torch.where(both, a, eye)
    g = torch.where(move, grad, torch.zeros_like(grad))
    return -spd_solve(a, g[..., None])[..., 0]


def _held(
    problem: Problem, th: torch.Tensor, grad: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
) -> torch.Tensor:
    """The free parameters ``(B, P_free)`` of ``th`` ``(B, P)`` on a bound that the gradient
    ``grad`` pushes outwards: held there (projected LM)."""
    fi = problem.free_index
    current = th[:, fi]
    return ((current <= lo[:, fi]) & (grad > 0)) | ((current >= hi[:, fi]) & (grad < 0))


def _trial(
    problem: Problem,
    th: torch.Tensor,
    jtj: torch.Tensor,
    grad: torch.Tensor,
    lam: torch.Tensor,
    held: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
) -> torch.Tensor:
    """``th`` ``(B, P)`` moved by the damped step (:func:`_step`), within ``lo``, ``hi``."""
    trial = th.clone()
    trial[:, problem.free_index] += _step(problem, jtj, grad, lam, held)
    return torch.minimum(torch.maximum(trial, lo), hi)


def _gauss_newton_decrease(
    problem: Problem, jtj: torch.Tensor, grad: torch.Tensor, held: torch.Tensor
) -> torch.Tensor:
    """The cost decrease ``(B,)`` that the undamped (Gauss-Newton) step predicts, for the
    stopping rule of ``problem.gauss_newton_stop`` and ``levenberg_marquardt(give_up=...)``."""
    undamped = _step(problem, jtj, grad, torch.zeros_like(grad[:, 0]), held)
    return -(grad * undamped).sum(-1)


def _formed_again(
    problem: Problem, column_dtype: torch.dtype | None
) -> tuple[bool, torch.dtype | None]:
    """Whether the iterations' evaluations (``column_dtype``, e.g.
    :data:`~scaloquant.fit.stages.TRIAL_DTYPE`) are in another dtype than the basis', the
    returned one then formed again in the basis' dtype, and the dtype of the iterations'
    derivative columns and normal equations: :data:`NORMAL_EQUATIONS_DTYPE` where they are,
    else ``None`` (the columns')."""
    again = column_dtype is not None and column_dtype != problem.fids.dtype
    return again, NORMAL_EQUATIONS_DTYPE if again else None


def _judged(
    cost: torch.Tensor,
    new_cost: torch.Tensor,
    lam: torch.Tensor,
    tolerance: torch.Tensor,
    predicted: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Levenberg-Marquardt rules after a trial step from ``cost`` to ``new_cost``
    ``(B,)`` at damping ``lam`` ``(B,)``: ``(better, damping, done)``. A step is accepted
    (``better``) where it lowers the cost; the damping is lowered by :data:`LM_DOWN` after an
    accepted step and raised by :data:`LM_UP` after a rejected one; a spectrum is done where an
    accepted step gained less than ``tolerance`` ``(B,)`` (and, where ``predicted`` ``(B,)``
    is given, the undamped step predicts less too) or its damping passed :data:`LM_MAX`."""
    better = new_cost < cost
    lam = torch.where(better, lam * LM_DOWN, lam * LM_UP)
    stalled = better & (cost - new_cost < tolerance)
    if predicted is not None:
        stalled &= predicted < tolerance
    return better, lam, stalled | (lam > LM_MAX)


def _weighed_anew(
    problem: Problem, ev: Evaluation, theta: torch.Tensor, noise_var: torch.Tensor
) -> torch.Tensor:
    """The objective ``(B,)`` of the evaluation ``ev`` at ``theta`` ``(B, P)`` (its rows) with
    the priors weighed by ``noise_var`` ``(B,)`` instead of the variance it was formed with: its
    data cost (:func:`~scaloquant.fit.evaluation.residual_cost`; no amplitude prior) plus the
    priors (:func:`~scaloquant.fit.evaluation.objective`), as
    :func:`~scaloquant.fit.evaluation.evaluate` weighs them."""
    data_cost = residual_cost(ev.residual, ev.w_residual)
    return objective(problem, theta, data_cost, noise_var)


_STORED = tuple(
    f for f in Evaluation.__dataclass_fields__ if f not in ("pending", "jacobian", "stiffness")
)


@dataclass
class Solution:
    theta: torch.Tensor  # (B, P)
    evaluation: Evaluation
    iterations: torch.Tensor  # (B,)
    converged: torch.Tensor  # (B,)


def take_rows(ev: Evaluation, idx: torch.Tensor) -> Evaluation:
    out = Evaluation(*(getattr(ev, f)[idx] for f in _STORED))
    if ev.pending is not None:
        out.pending = tuple(t[idx] for t in ev.pending)
    if ev.jacobian is not None:
        out.jacobian = ev.jacobian.take(idx)
    if ev.stiffness is not None:
        out.stiffness = ev.stiffness[idx]
    return out


@overload
def _with_copy(t: torch.Tensor) -> torch.Tensor: ...
@overload
def _with_copy(t: None) -> None: ...
def _with_copy(t: torch.Tensor | None) -> torch.Tensor | None:
    """``t`` ``(B, ...)`` with its last row once more at the end (``None`` stays ``None``): the
    solver's rule for every evaluation of a batch (:func:`evaluate_copied`, and
    :func:`take_rows_with_copy` for rows of one), whose copy's results are dropped
    (:func:`first_rows`).

    Why: torch's elementwise kernels take a whole array two SIMD vectors at a time and the few
    elements past the last whole block (at the end of the last row) one by one, by scalar code
    that rounds otherwise (the complex product's fused multiply-adds): the spectrum last in its
    batch (or alone in it) got other steps in their last bits than in another place, by the
    batch's size (the worst of 256 ``simulated`` spectra in chunks of 16 were the last of
    theirs: 239, 223, 15). With the copy last, the tail falls on the copy, and a spectrum's
    numbers do not depend on its batch's size; a row more per evaluation (docs/history/fit-log.md
    "The fit's chunk-size dependence (session 19, `chunk19`)")."""
    return None if t is None else torch.cat([t, t[-1:]])


def evaluate_copied(
    problem: Problem,
    theta: torch.Tensor,
    y: torch.Tensor,
    noise_var: torch.Tensor,
    passive: torch.Tensor | None = None,
    *,
    amplitude_prior: torch.Tensor | None = None,
    fixed_amplitudes: torch.Tensor | None = None,
    stiffness: torch.Tensor | None = None,
    **options,
) -> Evaluation:
    """:func:`~scaloquant.fit.evaluation.evaluate` (``options`` its keywords) of the batch with
    its last spectrum once more at the end (:func:`_with_copy`, which says why); ``B + 1``
    rows, the copy's dropped by :func:`first_rows`."""
    return evaluate(
        problem,
        _with_copy(theta),
        _with_copy(y),
        _with_copy(noise_var),
        _with_copy(passive),
        amplitude_prior=_with_copy(amplitude_prior),
        fixed_amplitudes=_with_copy(fixed_amplitudes),
        stiffness=_with_copy(stiffness),
        **options,
    )


def take_rows_with_copy(ev: Evaluation, rows: torch.Tensor) -> Evaluation:
    """:func:`take_rows` of ``ev`` at ``rows`` ``(R,)`` with the last of them once more at the
    end (:func:`_with_copy`): ``R + 1`` rows, as :func:`evaluate_copied`'s of those spectra
    (e.g. :func:`levenberg_marquardt`'s ``start``), the copy's dropped by :func:`first_rows`."""
    return take_rows(ev, _with_copy(rows))


def first_rows(ev: Evaluation, n: int) -> Evaluation:
    """The first ``n`` rows of ``ev``, as views (:func:`take_rows` copies)."""
    out = Evaluation(*(getattr(ev, f)[:n] for f in _STORED))
    if ev.stiffness is not None:
        out.stiffness = ev.stiffness[:n]
    if ev.pending is not None:
        out.pending = tuple(t[:n] for t in ev.pending)
    if ev.jacobian is not None:
        jac = ev.jacobian
        out.jacobian = Jacobian(jac.base[:n], jac.w_base[:n], jac.index, jac.coef)
    return out


def put_rows(ev: Evaluation, idx: torch.Tensor, new: Evaluation, *, jacobian: bool = False) -> None:
    """``new``'s rows written into ``ev`` at ``idx``; ``ev``'s compact derivative columns
    (``ev.jacobian``) dropped, or with ``jacobian`` written too (both must have them)."""
    for name in _STORED:
        getattr(ev, name)[idx] = getattr(new, name)
    if ev.stiffness is not None:
        ev.stiffness[idx] = new.stiffness
    if jacobian:
        ev.jacobian.base[idx], ev.jacobian.w_base[idx] = new.jacobian.base, new.jacobian.w_base
    else:
        ev.jacobian = None  # the rows written hold full columns only


def _accepted(
    problem: Problem,
    new_copy: Evaluation,
    rows: torch.Tensor | None,
    dtype: torch.dtype | None,
    *,
    full: bool,
    equations: bool = True,
) -> tuple[Evaluation, torch.Tensor | None, torch.Tensor | None]:
    """The accepted trials ``rows`` (``None``: all) of the trial evaluation ``new_copy`` (its
    last row a copy, :func:`_with_copy`) with their derivatives (:func:`with_derivatives`,
    ``dtype``, ``full``) and the data's normal equations :func:`_data_normal_equations` that
    the next step starts from: ``(evaluation, J^T J, gradient)`` of the rows (``equations=False``:
    no next step, ``None`` for both)."""
    subset = new_copy if rows is None else take_rows_with_copy(new_copy, rows)
    count = subset.cost.shape[0] - 1
    accepted = with_derivatives(problem, subset, dtype, full=full)
    jtj = grad = None
    if equations:
        jtj, grad = (t[:count] for t in _data_normal_equations(problem, accepted))
    return first_rows(accepted, count), jtj, grad


def levenberg_marquardt(
    problem: Problem,
    theta: torch.Tensor,
    y: torch.Tensor,
    noise_var: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    *,
    max_iterations: int,
    cost_rtol: float = COST_RTOL,
    amplitude_prior: torch.Tensor | None = None,
    column_dtype: torch.dtype | None = None,
    fixed_amplitudes: torch.Tensor | None = None,
    stop_var: torch.Tensor | None = None,
    give_up: torch.Tensor | None = None,
    final_derivatives: bool = True,
    stiffness: torch.Tensor | None = None,
    start: Evaluation | None = None,
) -> Solution:
    """Minimise the objective for every spectrum from ``theta`` ``(B, P)`` within ``lower``,
    ``upper`` ``(B, P)``; spectra leave the batch as they converge. ``amplitude_prior``
    ``(B, M, M)``, ``fixed_amplitudes`` ``(B, M)``: see :func:`~scaloquant.fit.evaluation.evaluate`.
    ``column_dtype``: the iterations' (:func:`~scaloquant.fit.evaluation.columns`; e.g.
    :data:`~scaloquant.fit.stages.TRIAL_DTYPE`), the returned evaluation formed again in the basis'
    dtype. ``stop_var`` ``(B,)``: a noise variance per real part of the data (a signal-free
    region's) for the noise-scaled stopping rule (:data:`COST_NOISE_TOL`);
    ``None``: the relative rule (``cost_rtol``). ``give_up`` ``(B,)``: a cost; a spectrum
    whose Gauss-Newton model predicts no minimum below it (the cost less the undamped step's
    predicted decrease is at least this) stops there, counted as converged (a global move that
    cannot beat the fit it would replace, :mod:`scaloquant.fit.search`).
    ``final_derivatives=False``: the evaluation formed again at the end (``column_dtype``) is
    left without its derivative columns, for callers that read only its cost and amplitudes.
    ``stiffness`` ``(B,)`` long: each spectrum's baseline stiffness
    (:func:`~scaloquant.fit.evaluation.evaluate`); None: the problem's for all. ``start``: the
    evaluation at ``theta`` (within the bounds) that the caller has, its rows with the last
    once more at the end (``B + 1``, as :func:`evaluate_copied`'s; :func:`take_rows_with_copy`
    takes an evaluation's rows so), formed as this call's first would be (``column_dtype``,
    derivatives in :data:`NORMAL_EQUATIONS_DTYPE` where it differs from the basis' dtype, the
    compact ones kept, ``ev.jacobian``; e.g. the last accepted step of
    :func:`reweighted_steps`), without ``amplitude_prior``, ``fixed_amplitudes`` or
    ``stiffness``: taken instead of forming it again, its cost weighed anew with
    ``noise_var``."""
    theta = torch.minimum(torch.maximum(theta, lower), upper)
    # the returned evaluation is formed again at the end (other dtype): the iterations keep
    # only each spectrum's passive set, not its evaluation, and their normal equations are
    # formed in NORMAL_EQUATIONS_DTYPE
    again, normal_dtype = _formed_again(problem, column_dtype)
    b = theta.shape[0]
    # every evaluation with its last spectrum once more, as a last row whose results are
    # dropped (_with_copy)
    if start is None:
        ev_copy = evaluate_copied(
            problem,
            theta,
            y,
            noise_var,
            amplitude_prior=amplitude_prior,
            fixed_amplitudes=fixed_amplitudes,
            column_dtype=column_dtype,
            derivative_dtype=normal_dtype,
            full_derivatives=not again,  # the full columns only where ev (or its rows) is returned
            stiffness=stiffness,
        )
    else:
        if amplitude_prior is not None or fixed_amplitudes is not None or stiffness is not None:
            raise ValueError(
                "a given start evaluation takes no amplitude prior, fixed amplitudes or stiffness"
            )
        # the objective weighed with this call's noise variance, as its own evaluation's
        ev_copy = start
        ev_copy.cost = _weighed_anew(problem, ev_copy, _with_copy(theta), _with_copy(noise_var))
    ev = first_rows(ev_copy, b)
    lam = torch.full((b,), LM_START, dtype=theta.dtype, device=theta.device)
    iterations = torch.zeros(b, dtype=torch.long, device=theta.device)
    converged = torch.zeros(b, dtype=torch.bool, device=theta.device)
    passive_all = ev.passive.clone()
    # the spectra still running, compacted, with what the next step needs of their current
    # evaluation: the data's normal equations (formed once per accepted step, not again after
    # a rejected one), cost and passive set. The evaluations' (B, 2K, .) arrays are never
    # compacted; an accepted one is written into ``ev`` (at its rows of the whole batch) only
    # where ``ev`` is returned
    active = torch.arange(b, device=theta.device)
    jtj_d, grad_d = (t[:b] for t in _data_normal_equations(problem, ev_copy))
    cost, passive = ev.cost.clone(), ev.passive.clone()
    th, yy, nv, lo, hi = theta.clone(), y, noise_var, lower, upper
    sv = stop_var
    prior, fixed, gu, st = amplitude_prior, fixed_amplitudes, give_up, stiffness

    def finish(done: torch.Tensor) -> None:
        """The spectra ``done`` (a mask over ``active``) leave the batch."""
        nonlocal active, th, jtj_d, grad_d, cost, passive, yy, nv, lo, hi, sv, prior, fixed, gu
        nonlocal st
        finished = active[done]
        converged[finished] = True
        theta[finished] = th[done]
        keep = ~done
        active, th, jtj_d, grad_d = active[keep], th[keep], jtj_d[keep], grad_d[keep]
        cost, passive = cost[keep], passive[keep]
        yy, nv, lo, hi = yy[keep], nv[keep], lo[keep], hi[keep]
        sv = None if sv is None else sv[keep]
        prior = None if prior is None else prior[keep]
        fixed = None if fixed is None else fixed[keep]
        gu = None if gu is None else gu[keep]
        st = None if st is None else st[keep]

    for iteration in range(max_iterations):
        if active.numel() == 0:
            break
        jtj, grad = _with_priors(problem, jtj_d, grad_d, th, nv)
        held = _held(problem, th, grad, lo, hi)
        predicted = None
        if problem.gauss_newton_stop or gu is not None:
            predicted = _gauss_newton_decrease(problem, jtj, grad, held)
            if gu is not None:
                hopeless = cost - predicted >= gu
                if bool(hopeless.any()):
                    finish(hopeless)
                    if active.numel() == 0:
                        break
                    keep = ~hopeless
                    jtj, grad, held, predicted = jtj[keep], grad[keep], held[keep], predicted[keep]
        trial = _trial(problem, th, jtj, grad, lam[active], held, lo, hi)
        new_copy = evaluate_copied(
            problem,
            trial,
            yy,
            nv,
            passive,
            derivatives=False,
            amplitude_prior=prior,
            column_dtype=column_dtype,
            fixed_amplitudes=fixed,
            stiffness=st,
        )
        new = first_rows(new_copy, trial.shape[0])
        iterations[active] += 1
        if sv is None:
            tolerance = cost_rtol * cost.abs()
        else:  # the smaller of two noise estimates: the region's and the residual's (2K reals)
            tolerance = COST_NOISE_TOL * torch.minimum(sv, cost.abs() / (2 * yy.shape[-1]))
        rule = predicted if problem.gauss_newton_stop else None
        better, lam[active], done = _judged(cost, new.cost, lam[active], tolerance, rule)
        if bool(better.any()):
            every = bool(better.all())
            rows = None if every else torch.nonzero(better)[:, 0]
            if every:
                th, cost, passive = trial, new.cost.clone(), new.passive.clone()
                passive_all[active] = new.passive
            else:
                th[rows], cost[rows], passive[rows] = trial[rows], new.cost[rows], new.passive[rows]
                passive_all[active[rows]] = new.passive[rows]
            # the derivatives (and normal equations) of an accepted step serve the next step,
            # and the returned evaluation where it is not formed again: where it is, a spectrum
            # that ends here (or at the last iteration) does not need them, unless the others'
            # are formed from the whole trial batch (no subset copied)
            need = better
            if again:
                last = iteration + 1 == max_iterations
                need = torch.zeros_like(better) if last else better & ~done
            if every and bool(need.any()):
                need = better  # all of them: one copy of a subset would cost more
            if bool(need.any()):
                if not every:
                    rows = torch.nonzero(need)[:, 0]
                accepted, jtj_new, grad_new = _accepted(
                    problem, new_copy, None if every else rows, normal_dtype, full=not again
                )
                if every:
                    jtj_d, grad_d = jtj_new, grad_new
                else:
                    jtj_d[rows], grad_d[rows] = jtj_new, grad_new
                if not again:
                    where = active if every else active[rows]
                    if every and where.numel() == b:
                        ev = accepted
                    else:
                        put_rows(ev, where, accepted)
        if bool(done.any()):
            finish(done)
    if active.numel():
        theta[active] = th
    if again:
        ev = evaluate_copied(
            problem,
            theta,
            y,
            noise_var,
            passive_all,
            derivatives=final_derivatives,
            amplitude_prior=amplitude_prior,
            fixed_amplitudes=fixed_amplitudes,
            stiffness=stiffness,
        )
        ev = first_rows(ev, b)
        if not final_derivatives:
            ev.pending = None  # the modulated FIDs, kept for derivatives nobody asks for
    return Solution(theta, ev, iterations, converged)


def reweighted_steps(
    problem: Problem,
    theta: torch.Tensor,
    y: torch.Tensor,
    noise_var: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    *,
    steps: int,
    cost_rtol: float = COST_RTOL,
    column_dtype: torch.dtype | None = None,
    formed_again: bool = True,
) -> tuple[Solution, torch.Tensor]:
    """``steps`` Levenberg-Marquardt trials from ``theta`` ``(B, P)`` within ``lower``,
    ``upper`` ``(B, P)`` for data windows ``y`` ``(B, K)``, the priors weighed by the noise
    variance of the current evaluation (:func:`~scaloquant.fit.evaluation.noise_var_from_residual`;
    ``noise_var`` ``(B,)`` weighs the first trial; the physics-head models' polish).

    Each spectrum keeps its damping from one trial to the next, by :func:`levenberg_marquardt`'s
    rules (:func:`_judged`): from :data:`LM_START`, lowered after an accepted step and raised
    after a rejected one, which the spectrum then tries again, shorter; it leaves the batch where
    an accepted step gained less than ``cost_rtol`` of its cost (0: never) or its damping passed
    :data:`LM_MAX`. After the first trial every spectrum's noise variance is taken from its
    evaluation, after the later ones that of the spectra that moved (the others' is unchanged),
    and the cost of the current parameters weighed with it: the cost a step must lower is
    the objective with the priors weighed anew. Where the priors do not depend on the noise
    variance (none, ``problem.prior_precision`` 0), this is ``levenberg_marquardt(...,
    max_iterations=steps, cost_rtol=cost_rtol)``, to the bit (with the same ``column_dtype``).

    ``column_dtype``: the trials' (as :func:`levenberg_marquardt`'s, e.g.
    :data:`~scaloquant.fit.stages.TRIAL_DTYPE`; the derivative columns and normal equations in
    :data:`NORMAL_EQUATIONS_DTYPE`): the noise variances that weigh the priors are taken from
    the trials' residuals, and the returned evaluation is formed again in the basis' dtype at
    the final parameters, weighed with the variance its trial was, and its noise variance from
    it; ``formed_again=False``: not formed again, the trials' evaluation and noise variances
    returned (their derivative columns in :data:`NORMAL_EQUATIONS_DTYPE`, the compact ones,
    ``ev.jacobian``, kept: :func:`levenberg_marquardt`'s ``start``), for a caller that fits
    some spectra on from there and forms the others' again.

    Returns the solution (its evaluation in the basis' dtype, or the trials' with
    ``formed_again=False``, with the full derivative columns; ``iterations`` the trials,
    ``converged`` where a spectrum left the batch) and the noise variance ``(B,)`` of its
    evaluation."""
    theta = torch.minimum(torch.maximum(theta, lower), upper)
    b = theta.shape[0]
    again, normal_dtype = _formed_again(problem, column_dtype)
    ev_copy = evaluate_copied(
        problem, theta, y, noise_var, column_dtype=column_dtype, derivative_dtype=normal_dtype
    )
    ev = first_rows(ev_copy, b)
    jtj_d, grad_d = (t[:b] for t in _data_normal_equations(problem, ev_copy))
    weighed = noise_var.clone()  # the variance each spectrum's current evaluation is weighed with
    noise_var = noise_var.clone()
    cost = ev.cost.clone()  # at theta, weighed with noise_var
    lam = torch.full_like(noise_var, LM_START)
    iterations = torch.zeros(b, dtype=torch.long, device=theta.device)
    converged = torch.zeros(b, dtype=torch.bool, device=theta.device)
    active = torch.arange(b, device=theta.device)
    for step in range(steps):
        if active.numel() == 0:
            break
        th, nv, lo, hi = theta[active], noise_var[active], lower[active], upper[active]
        jtj, grad = _with_priors(problem, jtj_d[active], grad_d[active], th, nv)
        held = _held(problem, th, grad, lo, hi)
        rule = (
            _gauss_newton_decrease(problem, jtj, grad, held) if problem.gauss_newton_stop else None
        )
        trial = _trial(problem, th, jtj, grad, lam[active], held, lo, hi)
        passive = ev.passive[active]
        new_copy = evaluate_copied(
            problem, trial, y[active], nv, passive, derivatives=False, column_dtype=column_dtype
        )
        now = cost[active]
        new_cost = first_rows(new_copy, active.numel()).cost
        better, lam[active], done = _judged(now, new_cost, lam[active], cost_rtol * now.abs(), rule)
        iterations[active] += 1
        last = step + 1 == steps  # no next step to form the normal equations for
        where, accepted = active[:0], ev
        if bool(better.any()):
            every = bool(better.all())
            rows = None if every else torch.nonzero(better)[:, 0]
            accepted, jtj_new, grad_new = _accepted(
                problem, new_copy, rows, normal_dtype, full=True, equations=not last
            )
            where = active if every else active[rows]
            theta[where] = trial if every else trial[rows]
            weighed[where] = nv if every else nv[rows]
            if not last:
                jtj_d[where], grad_d[where] = jtj_new, grad_new
            if where.numel() == b:
                ev = accepted
            else:  # the compact derivative columns kept where the evaluation is handed on
                put_rows(ev, where, accepted, jacobian=not formed_again)
        # the priors weighed anew with the noise variance of the current evaluation
        if step == 0:  # every spectrum's (the first trial's was the caller's)
            moved, current = active, ev
        else:  # the moved spectra's (the others' evaluation is unchanged)
            moved, current = where, accepted
        if moved.numel():
            noise_var[moved] = noise_var_from_residual(problem, current)
            cost[moved] = _weighed_anew(problem, current, theta[moved], noise_var[moved])
        if bool(done.any()):
            converged[active[done]] = True
            active = active[~done]
    if again and formed_again:
        ev = first_rows(evaluate_copied(problem, theta, y, weighed, ev.passive), b)
        if steps:  # each spectrum's from its current evaluation, as in the trials
            noise_var = noise_var_from_residual(problem, ev)
    return Solution(theta, ev, iterations, converged), noise_var
