"""The fit's model: fast exponentials, window DFT, analytic derivatives and the VARPRO Jacobian."""

from __future__ import annotations

import numpy as np
import pytest

from scaloquant.fit import FitConfig
from scaloquant.fit.model import Design, NonlinearParameters, exp_time_series, stack_complex
from scaloquant.fit.varpro import _Projection
from scaloquant.signal import axes
from scaloquant.types import BasisSet

DWELL_S = 2.5e-4
FREQ_MHZ = 123.26
N_POINTS = 1024


def lorentzian_basis() -> BasisSet:
    """Four small 'metabolites': singlets and multiplets at known ppm, 3/s intrinsic damping."""
    t = np.arange(N_POINTS) * DWELL_S
    lines = {
        "A": [(2.01, 1.0)],
        "B": [(3.0, 0.5), (3.0 + 7.0 / FREQ_MHZ, 0.5)],
        "C": [(3.21, 1.0), (3.62, 0.6)],
        "D": [(1.3 - 7 / FREQ_MHZ, 0.25), (1.3, 0.5), (1.3 + 7 / FREQ_MHZ, 0.25)],
    }
    fids = []
    for peaks in lines.values():
        hz = [axes.ppm_to_hz(p, FREQ_MHZ, 4.65) for p, _ in peaks]
        fid = sum(w * np.exp(2j * np.pi * f * t) for f, (_, w) in zip(hz, peaks, strict=True))
        fids.append(fid * np.exp(-3.0 * t))
    return BasisSet(tuple(lines), np.array(fids), DWELL_S, FREQ_MHZ, 4.65)


def test_exp_time_series_equals_direct_exponential():
    rate = np.array([-3.0 + 2j * np.pi * 1.7, -40.0 - 2j * np.pi * 9.0, 0.0])
    for n in (7, 1024, 2048, 1000):
        direct = np.exp(np.outer(rate, np.arange(n) * DWELL_S))
        np.testing.assert_allclose(exp_time_series(rate, DWELL_S, n), direct, rtol=1e-12)


def test_window_dft_equals_the_axes_convention():
    basis = lorentzian_basis()
    design = Design(basis, FitConfig(ppm_range=(0.5, 4.0)))
    z = basis.fids * np.exp(-2.0 * basis.time_axis_s())
    expected = axes.spectrum(z)[:, design.window].T
    np.testing.assert_allclose(design.window_dft(z), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(design.data_window(z), expected.T, rtol=1e-12, atol=1e-12)
    assert design.ppm.min() >= 0.5 and design.ppm.max() <= 4.0


def test_shift_moves_a_singlet_by_that_many_hz():
    basis = lorentzian_basis().subset(["A"])
    design = Design(basis, FitConfig(ppm_range=(0.5, 4.0), continuation_broadening_per_s=()))
    n_fft = 16 * N_POINTS
    ppm = axes.ppm_axis(n_fft, DWELL_S, FREQ_MHZ, 4.65)
    for shift_hz in (0.0, 3.5, -6.0):
        p = NonlinearParameters(np.array([0.0]), np.array([shift_hz]))
        peak = ppm[np.argmax(axes.spectrum(design.modulated_fids(p), n_fft)[0].real)]
        # 16x zero-filling: the peak lands within half a fine bin (0.12 Hz) of 2.01 ppm + shift.
        assert (peak - 2.01) * FREQ_MHZ == pytest.approx(shift_hz, abs=0.13)


@pytest.mark.parametrize(
    "config",
    [
        FitConfig(ppm_range=(0.5, 4.0)),
        FitConfig(ppm_range=(0.5, 4.0), grouping="global", gaussian=True),
        FitConfig(ppm_range=(0.5, 4.0), grouping=(("A", "C"),), baseline_order=2),
    ],
    ids=["per_metabolite", "global+gauss", "grouped+baseline"],
)
def test_model_derivatives_match_finite_differences(config):
    basis = lorentzian_basis()
    design = Design(basis, config)
    g = design.layout.n_groups
    p = NonlinearParameters(
        np.linspace(2.0, 8.0, g), np.linspace(-2.0, 3.0, g), 0.3, 0.05, 40.0 * config.gaussian
    )
    a = np.array([1.0, 0.5, 0.8, 0.3])
    x = p.to_vector(design.layout)

    def model(xv):
        return design.columns(p.with_vector(design.layout, xv))[0] @ a

    cols, z, phase = design.columns(p)
    analytic = design.model_derivatives(a, z, phase, cols)
    for k in range(x.size):
        h = 1e-6 * max(1.0, abs(x[k]))
        step = np.zeros_like(x)
        step[k] = h
        numeric = (model(x + step) - model(x - step)) / (2 * h)
        # Central differences in float64 with h ~ 1e-6: truncation and rounding below 1e-6.
        np.testing.assert_allclose(
            analytic[:, k], numeric, rtol=1e-5, atol=1e-6 * abs(numeric).max()
        )


def test_varpro_jacobian_is_exact_with_a_residual():
    """Golub and Pereyra's Jacobian is the derivative of the variable-projection residual
    itself, also away from an exact fit (noisy data, perturbed parameters)."""
    basis = lorentzian_basis()
    design = Design(basis, FitConfig(ppm_range=(0.5, 4.0), baseline_order=1, gaussian=True))
    p = NonlinearParameters(
        np.array([2.0, 4.0, 6.0, 1.0]), np.array([0.5, -1.0, 2.0, 0.0]), 0.2, 0.01, 30.0
    )
    a = np.array([1.0, 0.5, 0.8, 0.3])
    rng = np.random.default_rng(1)
    noise = 2.0 * (rng.standard_normal(design.ppm.size) + 1j * rng.standard_normal(design.ppm.size))
    data = design.columns(p)[0] @ a + (3.0 + 1j) * design.baseline_design[:, 1] + noise
    start = NonlinearParameters(p.damping_per_s + 1.0, p.shift_hz + 0.3, 0.25, 0.0, 20.0)
    problem = _Projection(design, data, start)
    x = start.to_vector(design.layout)
    assert np.linalg.norm(problem.fun(x)) > 1e-3 * np.linalg.norm(stack_complex(data))
    assert np.all(problem.amplitudes > 0)  # the active set does not change within +-h
    assert_jacobian_matches_differences(problem, x)


def assert_jacobian_matches_differences(problem: _Projection, x: np.ndarray) -> None:
    """``problem.jac`` against central differences of ``problem.fun`` at ``x``."""
    jac = problem.jac(x).copy()
    for k in range(x.size):
        h = 1e-6 * max(1.0, abs(x[k]))
        step = np.zeros_like(x)
        step[k] = h
        numeric = (problem.fun(x + step).copy() - problem.fun(x - step).copy()) / (2 * h)
        np.testing.assert_allclose(jac[:, k], numeric, rtol=1e-4, atol=1e-5 * abs(jac).max())
