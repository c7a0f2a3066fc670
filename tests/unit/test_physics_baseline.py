"""The spline baseline's design: its own B-spline basis against scipy's, and its import cost."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from scaloquant.physics.baseline import bspline_baseline, bspline_design


def _knots(ppm: np.ndarray, spacing_ppm: float) -> tuple[np.ndarray, np.ndarray]:
    """``(clipped points, knots)`` as :func:`bspline_baseline` lays them out."""
    lo, hi = float(ppm.min()), float(ppm.max())
    n_intervals = max(1, int(math.ceil((hi - lo) / spacing_ppm - 1e-9)))
    knots = lo + (hi - lo) / n_intervals * np.arange(-3, n_intervals + 4)
    return np.clip(ppm, lo, hi - 1e-12 * max(1.0, abs(hi))), knots


@pytest.mark.parametrize("n_points", [512, 2048, 4096])
@pytest.mark.parametrize("window", [(0.2, 4.2), (0.2, 4.0), (1.8, 4.1), (-0.5, 9.3)])
@pytest.mark.parametrize("spacing_ppm", [0.075, 0.15, 0.5])
def test_bspline_design_equals_scipys_design_matrix_to_the_bit(n_points, window, spacing_ppm):
    from scipy.interpolate import BSpline

    axis = np.linspace(12.0, -2.0, n_points) + 1e-4  # descending, as a ppm axis
    ppm = axis[(axis >= window[0]) & (axis <= window[1])]
    x, knots = _knots(ppm, spacing_ppm)
    expected = BSpline.design_matrix(x, knots, 3).toarray()
    np.testing.assert_array_equal(bspline_design(x, knots, 3), expected)
    design, penalty = bspline_baseline(ppm, spacing_ppm)
    np.testing.assert_array_equal(design, expected)
    np.testing.assert_allclose(design.sum(axis=1), 1.0, rtol=0, atol=1e-14)  # partition of unity


def test_a_spline_baseline_leaves_scipy_interpolate_unimported():
    code = (
        "import sys, numpy as np\n"
        "from scaloquant.physics.baseline import bspline_baseline\n"
        "bspline_baseline(np.linspace(4.2, 0.2, 252), 0.15)\n"
        "print('scipy.interpolate' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
