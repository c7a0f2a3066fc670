"""Variable projection fit of one spectrum.

The amplitudes (non-negative, by NNLS) and the baseline coefficients (free sign, projected out
first) are solved exactly for every value of the nonlinear parameters, and
``scipy.optimize.least_squares`` (trust-region reflective, bounds) minimises the remaining
residual over the nonlinear parameters alone (Golub & Pereyra, SIAM J Numer Anal 1973; in MRS,
van der Veen et al., Radiology 1988). The Jacobian is Golub and Pereyra's exact one for the
active (non-zero) amplitudes ``A`` (``A = Q R``), with the baseline projected out:
``J = -P_perp (dA/dtheta) a - Q R^-T (dA/dtheta)^T r``. Kaufman's approximation (BIT 1975)
drops the second term, which vanishes at zero residual; with noise it does not, and keeping it
costs only one triangular solve. Parameters are scaled by their typical sizes
(:meth:`~scaloquant.fit.model.Design.parameter_scale`) rather than by the Jacobian's column
norms, which vanish for metabolites with near-zero amplitude and made the coarse stages take
twice the evaluations.

Global strategy
---------------
With a shift and a damping per metabolite the residual has many local minima: multiplets a few
Hz apart and near-identical spectra (Cr/PCr, GPC/PCho, NAA/NAAG) let a metabolite settle on a
neighbour's line. The measures below make the fit find the global minimum far more often: on
noiseless spectra of the default simulator, a single local fit recovers the amplitudes to a
mean absolute error below 1e-3 for about half of them, this strategy for all of 300 (seeds 1,
2 and 11 of ``benchmarks/bench_fit.py``'s set-up, 100 spectra each).

* Continuation (``FitConfig.continuation_broadening_per_s``): the fit first runs on data and
  basis both broadened by ``exp(-L t)`` with large ``L``, where multiplets merge and the residual
  is smooth in the shifts, then with smaller ``L``, then unbroadened, each stage starting where
  the previous one ended. A broadened stage is exact, not approximate: the same factor
  multiplies data and model. Its signal has decayed by ``exp(-L t)``, so it is truncated to the
  points that still carry ``1e-4`` of it, which makes the coarse stages cheap, and it stops at
  a loose tolerance (it only has to reach the right basin).
* Re-centred shift bounds: the bounds ``shift_bounds_hz`` are first centred on the starting
  shift (one cross-correlation shift for the whole spectrum), then, after every stage, on the
  amplitude-weighted median shift of the metabolites found. The starting shift follows the
  largest peaks and can miss the median by 2-3 Hz; bounds that stayed there excluded the true
  shift of some metabolite in 5 of 100 noiseless spectra.
* Resets (``FitConfig.max_resets``): a metabolite that ends near a shift bound or the damping's
  upper bound (:data:`LOST_MARGIN`) has usually wandered onto another metabolite's line; it is
  restarted from the median damping and shift of the others and the fit repeated, keeping the
  result only if the residual drops.
* Twin swaps (``FitConfig.twin_max_separation_hz``): for pairs of near-identical metabolites
  (Cr/PCr, GPC/PCho: main peaks 0.74 Hz apart at 3 T) the fit is repeated with their dampings
  and shifts exchanged, keeping it if the residual drops: no continuous path leads a local fit
  from one labelling to the other.
* Probes: a reset or swap is abandoned after :data:`MOVE_PROBE_EVALUATIONS` evaluations unless
  its cost is by then close to the current one; this halves the evaluations they take.
* A second search: where the residual is clearly larger than an independent noise estimate
  (:data:`MISFIT_RATIO`; :func:`scaloquant.fit.fit_spectra` takes it from the spectrum's
  signal-free region ``FitConfig.noise_ppm_range`` when the data cover it), the whole search is
  repeated from all metabolites at the weighted median shift of the first, and the better one
  kept: the path of a local fit through these minima depends on details as small as rounding,
  so a second path from a better centred start escapes most of the minima the first ends in
  (with the re-centring above, it took the noiseless failures from 1-2 in 100 to none in 300).

The search (the final stage's first fit, resets and swaps) stops at :data:`SEARCH_TOLERANCE`;
only its best result is polished to ``FitConfig.tolerance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import least_squares, nnls

from ..types import BasisSet
from .config import FitConfig
from .model import LOST_MARGIN, MISFIT_RATIO, Design, NonlinearParameters, stack_complex

#: Fraction of the signal left where a broadened continuation stage truncates its FIDs.
STAGE_TRUNCATION_LEVEL = 1e-4
#: Convergence tolerance of the continuation stages: they only have to reach the right basin.
STAGE_TOLERANCE = 1e-3
#: Evaluations after which a restart or swap (:func:`_global_moves`) is abandoned unless its
#: cost is within ``1 + MOVE_PROBE_MARGIN`` of the current fit's. Chosen on the trajectories of
#: 194 restarts (40 noiseless and 40 SNR-30 spectra of the default simulator): all that ended
#: in an exact noiseless fit were below the current cost by then, and 58 of 69 that lowered a
#: noisy cost were within 5% of it, for 45% of the evaluations.
MOVE_PROBE_EVALUATIONS = 5
MOVE_PROBE_MARGIN = 0.05
#: Convergence tolerance of the final stage's search (its first fit and the restarts and swaps
#: of :func:`_global_moves`): only the best of them is then polished to ``config.tolerance``.
SEARCH_TOLERANCE = 1e-5


def stage_designs(basis: BasisSet, config: FitConfig) -> list[Design]:
    """The designs of the continuation stages, then the final (unbroadened, full) design."""
    stages = []
    for broadening in config.continuation_broadening_per_s:
        duration_s = np.log(1 / STAGE_TRUNCATION_LEVEL) / broadening
        n = int(2 ** np.ceil(np.log2(duration_s / basis.dwell_time_s)))
        stage = Design(basis, config, broadening_per_s=broadening, n_points=n)
        if 2 * len(stage.window) <= stage.n_parameters:  # too few points left: keep them all
            stage = Design(basis, config, broadening_per_s=broadening)
        stages.append(stage)
    return [*stages, Design(basis, config)]


@dataclass(frozen=True)
class SingleFit:
    """Result of :func:`fit_one` for one spectrum (shapes for ``M`` metabolites, window ``K``)."""

    parameters: NonlinearParameters
    amplitudes: np.ndarray  # (M,)
    baseline: np.ndarray  # (order + 1,) complex Legendre coefficients
    residual: np.ndarray  # (2K,) real-stacked data - model over the window
    n_evaluations: int
    success: bool
    message: str


class _Projection:
    """The VARPRO residual and Jacobian of one spectrum, caching the last evaluation so that
    ``least_squares``' separate calls of ``fun`` and ``jac`` at one point share the work.

    With ``fixed_amplitudes`` ``(M,)`` the amplitudes are not solved but held at those values
    (the baseline is still projected out): the residual is then an ordinary nonlinear one and
    its Jacobian is ``-P_perp (dA/dtheta) a`` alone, since ``a`` does not depend on ``theta``.
    """

    def __init__(
        self,
        design: Design,
        data: np.ndarray,
        start: NonlinearParameters,
        fixed_amplitudes: np.ndarray | None = None,
    ) -> None:
        self.design = design
        self.start = start
        self.fixed_amplitudes = fixed_amplitudes
        self.y = self._project(stack_complex(data))
        self._x: np.ndarray | None = None

    def _project(self, v: np.ndarray) -> np.ndarray:
        """Remove the baseline's span from real-stacked ``v`` ``(2K, ...)``."""
        q = self.design.baseline
        return v - q @ (q.T @ v) if q.shape[1] else v

    def evaluate(self, x: np.ndarray) -> None:
        if self._x is not None and np.array_equal(x, self._x):
            return
        p = self.start.with_vector(self.design.layout, x)
        cols, z, phase = self.design.columns(p)
        a_proj = self._project(stack_complex(cols))
        if self.fixed_amplitudes is None:
            amplitudes = nnls(a_proj, self.y)[0]
        else:
            amplitudes = self.fixed_amplitudes
        self._x = x.copy()
        self.p, self.cols, self.z, self.phase = p, cols, z, phase
        self.a_proj, self.amplitudes = a_proj, amplitudes
        self.residual = self.y - a_proj @ amplitudes

    def fun(self, x: np.ndarray) -> np.ndarray:
        self.evaluate(x)
        return self.residual

    def jac(self, x: np.ndarray) -> np.ndarray:
        self.evaluate(x)
        a = self.amplitudes
        t_cols = self.design.time_weighted_columns(self.z, self.phase)
        derivs = self.design.model_derivatives(a, self.z, self.phase, self.cols, t_cols)
        v = self._project(stack_complex(derivs))
        active = a > 0
        if self.fixed_amplitudes is None and active.any():
            q, r = np.linalg.qr(self.a_proj[:, active])
            v = v - q @ (q.T @ v)
            g = self.design.column_gradients(t_cols, self.cols, self.residual)
            v = v + q @ solve_triangular(r, g[active], trans="T")
        return -v


@dataclass(frozen=True)
class _Local:
    problem: _Projection
    cost: float
    n_evaluations: int
    success: bool
    message: str


def _local_fit(
    design: Design,
    data: np.ndarray,
    start: NonlinearParameters,
    centre_shift_hz: float,
    tolerance: float,
    fixed_amplitudes: np.ndarray | None = None,
    max_evaluations: int | None = None,
) -> _Local:
    """One bounded local least-squares fit of ``data`` ``(K,)`` from ``start`` (amplitudes held
    at ``fixed_amplitudes`` ``(M,)`` when given, see :class:`_Projection`), stopped after
    ``max_evaluations`` (default ``config.max_evaluations``) evaluations."""
    problem = _Projection(design, data, start, fixed_amplitudes)
    lo, hi = design.bounds(centre_shift_hz)
    x = np.clip(start.to_vector(design.layout), lo, hi)
    nfev, success, message = 1, True, "no nonlinear parameter to fit"
    if design.layout.size:
        tol = tolerance
        opt = least_squares(
            problem.fun,
            x,
            jac=problem.jac,
            bounds=(lo, hi),
            method="trf",
            x_scale=design.parameter_scale(),
            ftol=tol,
            xtol=tol,
            gtol=tol,
            max_nfev=max_evaluations or design.config.max_evaluations,
        )
        x, nfev, success, message = opt.x, opt.nfev, opt.status > 0, opt.message
    problem.evaluate(x)
    return _Local(problem, float(problem.residual @ problem.residual), nfev, success, message)


def _shift_centre(design: Design, problem: _Projection, previous: float) -> float:
    """Where the shift bounds of the next stage are centred: the amplitude-weighted median shift
    of the groups (``previous`` if every amplitude is 0). Weighted, so that small metabolites,
    whose shifts are poorly determined in noisy data, do not move it."""
    weight = problem.amplitudes @ design.group_matrix
    if not np.any(weight > 0):
        return previous
    order = np.argsort(problem.p.shift_hz)
    cumulative = np.cumsum(weight[order])
    return float(problem.p.shift_hz[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _lost_groups(design: Design, p: NonlinearParameters, centre_shift_hz: float) -> np.ndarray:
    """Groups whose shift lies in the outer :data:`LOST_MARGIN` of its bounds or whose damping
    lies in the top :data:`LOST_MARGIN` of its range."""
    lo, hi = np.add(design.config.shift_bounds_hz, centre_shift_hz)
    margin = LOST_MARGIN * (hi - lo) / 2
    on_shift_edge = (p.shift_hz <= lo + margin) | (p.shift_hz >= hi - margin)
    d_lo, d_hi = design.config.damping_bounds_per_s
    return on_shift_edge | (p.damping_per_s >= d_hi - LOST_MARGIN * (d_hi - d_lo))


def _global_moves(
    design: Design,
    data: np.ndarray,
    local: _Local,
    centre: float,
    tol: float,
    fixed_amplitudes: np.ndarray | None = None,
) -> tuple[_Local, int]:
    """Resets of lost metabolites and twin swaps (module docstring), each kept only if the
    residual drops; returns the best fit and the evaluations spent."""
    n_evaluations = 0

    def attempt(damping: np.ndarray, shift: np.ndarray) -> bool:
        nonlocal local, n_evaluations
        p = local.problem.p
        restart = NonlinearParameters(
            damping, shift, p.phase0_rad, p.phase1_rad_per_ppm, p.gauss_per_s2
        )
        # A probe of a few evaluations first: most restarts lead back to where the fit is, or
        # to a worse minimum, and show it early; only a promising one is fitted to the end.
        probe = MOVE_PROBE_EVALUATIONS
        trial = _local_fit(design, data, restart, centre, tol, fixed_amplitudes, probe)
        n_evaluations += trial.n_evaluations
        if not trial.success and trial.n_evaluations >= probe:
            if trial.cost > (1 + MOVE_PROBE_MARGIN) * local.cost:
                return False
            trial = _local_fit(design, data, trial.problem.p, centre, tol, fixed_amplitudes)
            n_evaluations += trial.n_evaluations
        if trial.cost >= local.cost:
            return False
        local = trial
        return True

    for _ in range(design.config.max_resets):
        p = local.problem.p
        lost = _lost_groups(design, p, centre)
        if not lost.any() or lost.all():
            break
        damping, shift = p.damping_per_s.copy(), p.shift_hz.copy()
        damping[lost], shift[lost] = np.median(damping[~lost]), np.median(shift[~lost])
        if not attempt(damping, shift):
            break
    for g, h, offset_hz in design.twin_groups:
        p = local.problem.p
        damping, shift = p.damping_per_s.copy(), p.shift_hz.copy()
        damping[[g, h]] = damping[[h, g]]
        shift[g], shift[h] = shift[h] + offset_hz, shift[g] - offset_hz
        attempt(damping, shift)
    return local, n_evaluations


def fit_one(
    stages: Sequence[Design],
    fid: np.ndarray,
    start: NonlinearParameters,
    noise_sd: float | None = None,
) -> SingleFit:
    """Fit one spectrum.

    Parameters
    ----------
    stages : the continuation designs and, last, the final one (:func:`stage_designs`).
    fid : ``(n_points,)`` complex data FID.
    start : starting nonlinear parameters; those not fitted keep these values. Shift bounds
        are centred on the mean of its shifts.
    noise_sd : an estimate of the noise SD per real part of the spectrum independent of the
        fit (e.g. from a signal-free region), or ``None``. When the residual of the search
        exceeds :data:`MISFIT_RATIO` times that noise, the search is repeated once from all
        groups at the median shift it found, and the better of the two kept.
    """
    final = stages[-1]
    data = final.data_window(fid)
    local, centre, n_evaluations = _search(stages, fid, start, float(np.mean(start.shift_hz)))
    if noise_sd is not None and local.cost > MISFIT_RATIO**2 * data.size * 2 * noise_sd**2:
        g = final.layout.n_groups
        restart = replace(
            local.problem.p,
            damping_per_s=np.full(g, final.config.initial_damping_per_s),
            shift_hz=np.full(g, centre),
        )
        second, second_centre, n_second = _search(stages, fid, restart, centre)
        n_evaluations += n_second
        if second.cost < local.cost:
            local, centre = second, second_centre
    tol = final.config.tolerance
    if max(tol, SEARCH_TOLERANCE) > tol:  # polish the best of the search to the tolerance
        local = _local_fit(final, data, local.problem.p, centre, tol)
        n_evaluations += local.n_evaluations
    return finish(final, data, local, n_evaluations)


def _search(
    stages: Sequence[Design], fid: np.ndarray, start: NonlinearParameters, centre: float
) -> tuple[_Local, float, int]:
    """The continuation stages from ``start`` with shift bounds about ``centre``, then the
    restarts and swaps of :func:`_global_moves`, at the search tolerances: the best local fit,
    the final centre of the shift bounds and the evaluations spent."""
    final = stages[-1]
    tol = final.config.tolerance
    p, n_evaluations = start, 0
    for design in stages:
        stage_tol = max(tol, SEARCH_TOLERANCE if design is final else STAGE_TOLERANCE)
        data = design.data_window(fid)
        local = _local_fit(design, data, p, centre, stage_tol)
        p, n_evaluations = local.problem.p, n_evaluations + local.n_evaluations
        centre = _shift_centre(design, local.problem, centre)
    local, n_moves = _global_moves(final, data, local, centre, max(tol, SEARCH_TOLERANCE))
    return local, centre, n_evaluations + n_moves


def finish(design: Design, data: np.ndarray, local: _Local, n_evaluations: int) -> SingleFit:
    """The :class:`SingleFit` of a finished local fit of ``data`` ``(K,)``: the baseline
    coefficients (projected out during the fit) are solved from what the metabolites leave."""
    problem = local.problem
    baseline = np.zeros(design.baseline_design.shape[1], dtype=np.complex128)
    if baseline.size:
        rest = stack_complex(data - problem.cols @ problem.amplitudes)
        coef = np.linalg.lstsq(design.baseline_real, rest, rcond=None)[0]
        baseline = coef[: baseline.size] + 1j * coef[baseline.size :]
    return SingleFit(
        parameters=problem.p,
        amplitudes=problem.amplitudes,
        baseline=baseline,
        residual=problem.residual,
        n_evaluations=n_evaluations,
        success=local.success,
        message=str(local.message),
    )


def fit_one_given_amplitudes(
    designs: Sequence[Design],
    fid: np.ndarray,
    start: NonlinearParameters,
    amplitudes: np.ndarray,
) -> SingleFit:
    """Fit the nonlinear parameters of one spectrum with its amplitudes held fixed.

    Parameters
    ----------
    designs : the stages, each started where the previous one ended: typically one with a
        single (global) damping and shift, then the final grouping; a stage with more groups
        than the one before starts every group from the previous stage's common value.
    fid : ``(n_points,)`` complex data FID.
    start : starting parameters for the first stage; shift bounds are centred on the mean of
        its shifts.
    amplitudes : ``(M,)`` the fixed amplitudes (for example a network's estimate).
    """
    centre = float(np.mean(start.shift_hz))
    p, n_evaluations = start, 0
    for design in designs:
        n_groups = design.layout.n_groups
        if p.damping_per_s.size != n_groups:
            p = replace(
                p,
                damping_per_s=np.full(n_groups, np.mean(p.damping_per_s)),
                shift_hz=np.full(n_groups, np.mean(p.shift_hz)),
            )
        data = design.data_window(fid)
        local = _local_fit(design, data, p, centre, design.config.tolerance, amplitudes)
        p, n_evaluations = local.problem.p, n_evaluations + local.n_evaluations
    local, n_moves = _global_moves(
        designs[-1], data, local, centre, designs[-1].config.tolerance, amplitudes
    )
    return finish(designs[-1], data, local, n_evaluations + n_moves)
