"""``benchmarks/diag_invivo_components.py``'s linewidth of a fitted curve on LCModel's axis: a
known answer (a Lorentzian absorption line of a given FWHM on a descending axis)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from diag_invivo_components import singlet_fwhm_ppm  # noqa: E402


@pytest.mark.parametrize("fwhm", [0.03, 0.05, 0.084])
def test_singlet_fwhm_of_a_lorentzian_on_a_descending_axis(fwhm):
    ppm = np.linspace(4.2, 0.2, 2049)  # LCModel's axis descends; 0.00195 ppm apart
    hw = fwhm / 2
    line = hw**2 / ((ppm - 2.008) ** 2 + hw**2)  # absorption, height 1
    taller_elsewhere = 3 * 0.01**2 / ((ppm - 3.03) ** 2 + 0.01**2)  # outside the NAA window
    measured = singlet_fwhm_ppm(ppm, line + taller_elsewhere)
    # linear interpolation between points of a curve convex near half height: a few 1e-4 ppm
    assert measured == pytest.approx(fwhm, abs=3e-4)
