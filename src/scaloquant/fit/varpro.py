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
neighbour's line. Three measures make the fit find the global minimum far more often: on
noiseless spectra of the default simulator, a single local fit recovers the amplitudes to a
mean absolute error below 1e-3 for about half of them, this strategy for 94 in 100.

* Continuation (``FitConfig.continuation_broadening_per_s``): the fit first runs on data and
  basis both broadened by ``exp(-L t)`` with large ``L``, where multiplets merge and the residual
  is smooth in the shifts, then with smaller ``L``, then unbroadened, each stage starting where
  the previous one ended. A broadened stage is exact, not approximate: the same factor
  multiplies data and model. Its signal has decayed by ``exp(-L t)``, so it is truncated to the
  points that still carry ``1e-4`` of it, which makes the coarse stages cheap, and it stops at
  a loose tolerance (it only has to reach the right basin).
* Resets (``FitConfig.max_resets``): a metabolite that ends on a shift bound or the damping's
  upper bound has usually wandered onto another metabolite's line; it is restarted from the
  median damping and shift of the others and the fit repeated, keeping the result only if the
  residual drops.
* Twin swaps (``FitConfig.twin_max_separation_hz``): for pairs of near-identical metabolites
  (Cr/PCr, GPC/PCho: main peaks 0.74 Hz apart at 3 T) the fit is repeated with their dampings
  and shifts exchanged, keeping it if the residual drops: no continuous path leads a local fit
  from one labelling to the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import least_squares, nnls

from ..types import BasisSet
from .config import FitConfig
from .model import Design, NonlinearParameters, stack_complex

#: Fraction of the signal left where a broadened continuation stage truncates its FIDs.
STAGE_TRUNCATION_LEVEL = 1e-4
#: Convergence tolerance of the continuation stages: they only have to reach the right basin.
STAGE_TOLERANCE = 1e-3
MOVES_BEFORE_FINAL = 1


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
    ``least_squares``' separate calls of ``fun`` and ``jac`` at one point share the work."""

    def __init__(self, design: Design, data: np.ndarray, start: NonlinearParameters) -> None:
        self.design = design
        self.start = start
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
        amplitudes = nnls(a_proj, self.y)[0]
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
        derivs = self.design.model_derivatives(a, self.z, self.phase, self.cols)
        v = self._project(stack_complex(derivs))
        active = a > 0
        if active.any():
            q, r = np.linalg.qr(self.a_proj[:, active])
            v = v - q @ (q.T @ v)
            g = self.design.column_gradients(self.z, self.phase, self.cols, self.residual)
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
) -> _Local:
    """One bounded local least-squares fit of ``data`` ``(K,)`` from ``start``."""
    problem = _Projection(design, data, start)
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
            max_nfev=design.config.max_evaluations,
        )
        x, nfev, success, message = opt.x, opt.nfev, opt.status > 0, opt.message
    problem.evaluate(x)
    return _Local(problem, float(problem.residual @ problem.residual), nfev, success, message)


def _lost_groups(design: Design, p: NonlinearParameters, centre_shift_hz: float) -> np.ndarray:
    """Groups whose shift sits on a bound or whose damping sits on its upper bound."""
    lo, hi = np.add(design.config.shift_bounds_hz, centre_shift_hz)
    margin = 1e-3 * (hi - lo)
    on_shift_bound = (p.shift_hz <= lo + margin) | (p.shift_hz >= hi - margin)
    d_hi = design.config.damping_bounds_per_s[1]
    return on_shift_bound | (p.damping_per_s >= d_hi - 1e-3 * d_hi)


def _global_moves(
    design: Design, data: np.ndarray, local: _Local, centre: float, tol: float
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
        trial = _local_fit(design, data, restart, centre, tol)
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


def fit_one(stages: Sequence[Design], fid: np.ndarray, start: NonlinearParameters) -> SingleFit:
    """Fit one spectrum.

    Parameters
    ----------
    stages : the continuation designs and, last, the final one (:func:`stage_designs`).
    fid : ``(n_points,)`` complex data FID.
    start : starting nonlinear parameters; those not fitted keep these values. Shift bounds
        are centred on the mean of its shifts.
    """
    centre = float(np.mean(start.shift_hz))
    final = stages[-1]
    tol = final.config.tolerance
    p, n_evaluations = start, 0
    for design in stages:
        stage_tol = tol if design is final else max(tol, STAGE_TOLERANCE)
        data = design.data_window(fid)
        local = _local_fit(design, data, p, centre, stage_tol)
        p, n_evaluations = local.problem.p, n_evaluations + local.n_evaluations
    local, n_moves = _global_moves(final, data, local, centre, tol)
    n_evaluations += n_moves
    problem = local.problem
    baseline = np.zeros(final.baseline_design.shape[1], dtype=np.complex128)
    if baseline.size:
        rest = stack_complex(data - problem.cols @ problem.amplitudes)
        coef = np.linalg.lstsq(final.baseline_real, rest, rcond=None)[0]
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
