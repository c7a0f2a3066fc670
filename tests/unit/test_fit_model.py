"""The fit's model on a small synthetic basis: window DFT, shifts, analytic derivatives and the
variable-projection gradient of :mod:`scaloquant.fit.batched` (the model itself against the
numpy oracle: ``tests/unit/test_physics_model.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scaloquant.fit import FitConfig
from scaloquant.fit.evaluation import columns, evaluate, stack
from scaloquant.fit.lm import _normal_equations
from scaloquant.fit.problem import Problem, data_window, make_problem
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


def theta_of(problem: Problem, damping, shift, phase0=0.0, phase1=0.0, gauss=0.0):
    """``theta`` ``(1, P)`` with the given group parameters (per group arrays or scalars)."""
    sl = problem.slices()
    theta = torch.zeros(1, problem.size, dtype=torch.float64)
    theta[0, sl["damping"]] = torch.as_tensor(damping, dtype=torch.float64)
    theta[0, sl["shift"]] = torch.as_tensor(shift, dtype=torch.float64)
    theta[0, sl["gauss"]] = gauss
    theta[0, sl["phase0"]], theta[0, sl["phase1"]] = phase0, phase1
    return theta


def test_window_dft_equals_the_axes_convention():
    basis = lorentzian_basis()
    problem = make_problem(basis, FitConfig(ppm_range=(0.5, 4.0)), deviations=False)
    z = basis.fids * np.exp(-2.0 * basis.time_axis_s())
    window = axes.spectrum(z)[:, problem.window]
    got = data_window(problem, torch.as_tensor(z)).numpy()
    np.testing.assert_allclose(got, window, rtol=1e-12, atol=1e-12 * np.abs(window).max())
    ppm = problem.ppm.numpy()
    assert ppm.min() >= 0.5 and ppm.max() <= 4.0
    np.testing.assert_allclose(ppm, basis.ppm_axis()[problem.window], rtol=1e-14)


def test_shift_moves_a_singlet_by_that_many_hz():
    basis = lorentzian_basis().subset(["A"])
    # the modulated FIDs on the full grid (a decimated model's are mixed to its band's centre)
    config = FitConfig(ppm_range=(0.5, 4.0), continuation_broadening_per_s=(), decimate_model=False)
    problem = make_problem(basis, config, deviations=False)
    n_fft = 16 * N_POINTS
    ppm = axes.ppm_axis(n_fft, DWELL_S, FREQ_MHZ, 4.65)
    for shift_hz in (0.0, 3.5, -6.0):
        z = columns(problem, theta_of(problem, [0.0], [shift_hz]))[1].numpy()[0]
        peak = ppm[np.argmax(axes.spectrum(z, n_fft)[0].real)]
        # 16x zero-filling: the peak lands within half a fine bin (0.12 Hz) of 2.01 ppm + shift.
        assert (peak - 2.01) * FREQ_MHZ == pytest.approx(shift_hz, abs=0.13)


CONFIGS = [
    FitConfig(ppm_range=(0.5, 4.0)),
    FitConfig(ppm_range=(0.5, 4.0), grouping="global", lineshape="voigt"),
    FitConfig(ppm_range=(0.5, 4.0), grouping=(("A", "C"),), baseline_order=2, lineshape="voigt"),
]
IDS = ["per_metabolite", "global+voigt", "grouped+baseline+voigt"]


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_model_derivatives_match_finite_differences(config):
    """``D = (dS/dtheta) a`` of :func:`scaloquant.fit.evaluation.evaluate` (its FFTs in single
    precision, :data:`~scaloquant.fit.evaluation.DERIVATIVE_DTYPE`) against central differences
    of the float64 model ``S a``, for every free parameter."""
    basis = lorentzian_basis()
    problem = make_problem(basis, config, deviations=False)
    g = problem.n_groups
    gauss = 40.0 if config.lineshape_kind == "voigt" else 0.0
    theta = theta_of(problem, np.linspace(2, 8, g), np.linspace(-2, 3, g), 0.3, 0.05, gauss)
    a = torch.tensor([[1.0, 0.5, 0.8, 0.3]], dtype=torch.float64)
    y = torch.zeros(1, problem.ppm.numel(), dtype=torch.complex128)
    ones = torch.ones(1, dtype=torch.float64)
    analytic = evaluate(problem, theta, y, ones, fixed_amplitudes=a).derivs[0].numpy()

    def model(t: torch.Tensor) -> np.ndarray:
        return stack(columns(problem, t)[0] @ a.to(torch.complex128)[..., None])

    for k, j in enumerate(problem.free_index.tolist()):
        h = 1e-6 * max(1.0, abs(float(theta[0, j])))
        up, down = theta.clone(), theta.clone()
        up[0, j] += h
        down[0, j] -= h
        numeric = ((model(up) - model(down)) / (2 * h))[0, :, 0].numpy()
        # single-precision FFTs: relative errors ~1e-7 of the largest column entry
        np.testing.assert_allclose(
            analytic[:, k], numeric, rtol=1e-4, atol=1e-5 * np.abs(numeric).max()
        )


def test_varpro_gradient_is_exact_with_a_residual():
    """The gradient of the variable-projection cost (amplitudes solved by NNLS, baseline
    eliminated) is ``-<D, r>_W``: half the derivative of the cost itself, also away from an
    exact fit (noisy data, perturbed parameters), since the amplitudes' own derivative term
    vanishes at their optimum (Golub & Pereyra)."""
    basis = lorentzian_basis()
    config = FitConfig(ppm_range=(0.5, 4.0), baseline_order=1, lineshape="voigt")
    problem = make_problem(basis, config, deviations=False)
    truth = theta_of(problem, [2.0, 4.0, 6.0, 1.0], [0.5, -1.0, 2.0, 0.0], 0.2, 0.01, 30.0)
    a = torch.tensor([[1.0, 0.5, 0.8, 0.3]], dtype=torch.complex128)
    clean = (columns(problem, truth)[0] @ a[..., None])[..., 0]
    rng = np.random.default_rng(1)
    k = problem.ppm.numel()
    noise = 2.0 * (rng.standard_normal(k) + 1j * rng.standard_normal(k))
    line = torch.as_tensor((3.0 + 1j) * problem.baseline_design.numpy()[:, 1])
    y = clean + line + torch.as_tensor(noise)
    theta = theta_of(problem, [3.0, 5.0, 7.0, 2.0], [0.8, -0.7, 2.3, 0.3], 0.25, 0.0, 20.0)
    ones = torch.ones(1, dtype=torch.float64)
    ev = evaluate(problem, theta, y, ones)
    assert float(ev.cost) > 1e-2 * float((y.abs() ** 2).sum())  # far from an exact fit
    assert bool(ev.passive.all())  # the active set does not change within +-h
    _, grad = _normal_equations(problem, ev, theta, ones)
    for k, j in enumerate(problem.free_index.tolist()):
        step = 1e-6 * max(1.0, abs(float(theta[0, j])))
        up, down = theta.clone(), theta.clone()
        up[0, j] += step
        down[0, j] -= step
        cost = [float(evaluate(problem, t, y, ones).cost) for t in (up, down)]
        numeric = (cost[0] - cost[1]) / (2 * step) / 2
        assert float(grad[0, k]) == pytest.approx(numeric, rel=2e-4, abs=1e-4)
