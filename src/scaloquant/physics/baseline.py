"""Baseline designs over a ppm window: Legendre polynomials and penalised cubic B-splines.

The baseline is a complex function of ppm with real design functions ``b_k(ppm)`` and free
complex coefficients (its real and imaginary parts are independent linear terms of the fit).

Penalised spline (P-spline, Eilers & Marx, Stat Sci 11:89, 1996)
---------------------------------------------------------------
Cubic B-splines on knots ``spacing_ppm`` apart (LCModel's default minimum knot spacing DKNTMN is
0.15 ppm, Provencher, LCModel manual sec. 11.2), with a second-difference penalty
``lambda |D2 c|^2`` on each of the real and imaginary coefficient vectors. The stiffness
``lambda`` is set by a fixed **effective dimension per ppm** (the trace of the smoother
``b (b^T b + lambda D2^T D2)^-1 b^T``, per ppm of window): the rule of ABfit (Wilson, MRM 85:13,
2021, ``bl_ed_pppm``), which makes the baseline's flexibility independent of the knot spacing,
the window and the spectral resolution. The default :data:`DEFAULT_ED_PER_PPM` = 2 lies at the
stiff end of ABfit's range (1 stiff ... 8 flexible): a flexible baseline absorbs the broad
macromolecule and lipid signal and the broad parts of Ins and Glx, which the measured or
parametric macromolecules should explain; it still follows the slow curvature of residual water
and filter roll-off. It is a stated rule, not a value tuned on any test data. Generalised cross
validation was not chosen: per spectrum it makes the baseline's flexibility, and so every
amplitude, depend on the noise draw, and it tends to under-smooth with correlated lineshape
misfit.
"""

from __future__ import annotations

import math

import numpy as np

#: Effective dimensions of the spline baseline per ppm of window (module docstring).
DEFAULT_ED_PER_PPM = 2.0
#: LCModel's default minimum knot spacing (DKNTMN), ppm.
DEFAULT_KNOT_SPACING_PPM = 0.15


def legendre_baseline(ppm: np.ndarray, order: int) -> np.ndarray:
    """Legendre polynomials of degree ``0..order`` of ``ppm`` ``(K,)`` scaled to [-1, 1]:
    ``(K, order + 1)``."""
    lo, hi = float(ppm.min()), float(ppm.max())
    x = (2 * ppm - (lo + hi)) / (hi - lo)
    return np.polynomial.legendre.legvander(x, order)


def bspline_baseline(ppm: np.ndarray, spacing_ppm: float) -> tuple[np.ndarray, np.ndarray]:
    """Cubic B-splines on uniform knots ``spacing_ppm`` apart covering ``ppm`` ``(K,)``, and
    their second-difference penalty.

    Returns ``(design (K, n_basis), penalty (n_basis, n_basis))`` with
    ``penalty = D2^T D2``. The knot spacing is shrunk to divide the window evenly.
    """
    lo, hi = float(ppm.min()), float(ppm.max())
    n_intervals = max(1, int(math.ceil((hi - lo) / spacing_ppm - 1e-9)))
    h = (hi - lo) / n_intervals
    degree = 3
    knots = lo + h * np.arange(-degree, n_intervals + degree + 1)
    n_basis = len(knots) - degree - 1
    x = np.clip(ppm, lo, hi - 1e-12 * max(1.0, abs(hi)))
    from scipy.interpolate import BSpline  # ~0.6 s to import: only for a spline baseline

    design = BSpline.design_matrix(x, knots, degree).toarray()
    d2 = np.diff(np.eye(n_basis), n=2, axis=0)
    return design, d2.T @ d2


def effective_dimension(design: np.ndarray, penalty: np.ndarray, smoothing: float) -> float:
    """``trace(b (b^T b + lambda P)^-1 b^T)``, the smoother's effective dimension."""
    gram = design.T @ design
    return float(np.trace(np.linalg.solve(gram + smoothing * penalty, gram)))


def smoothing_for_ed(design: np.ndarray, penalty: np.ndarray, target_ed: float) -> float:
    """``lambda`` whose :func:`effective_dimension` is ``target_ed`` (bisection in
    ``log lambda``). The effective dimension falls from ``n_basis`` (``lambda = 0``) to 2 (a
    straight line, the null space of ``D2``), so targets are clipped to ``[2, n_basis]``."""
    n = design.shape[1]
    target = min(max(target_ed, 2.0 + 1e-6), n - 1e-6)
    lo, hi = -12.0, 12.0
    scale = float(np.trace(design.T @ design) / max(np.trace(penalty), 1e-300))
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if effective_dimension(design, penalty, scale * 10**mid) > target:
            lo = mid
        else:
            hi = mid
    return scale * 10 ** (0.5 * (lo + hi))
