"""fit_given_amplitudes (amplitudes held fixed, e.g. a network's) and FitStart.from_result."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_fit_model import lorentzian_basis
from test_fit_spectra import CONFIG, as_fid, synthesize

from scaloquant.errors import InvalidDataError
from scaloquant.fit import FitConfig, FitStart, fit_given_amplitudes, fit_spectra, fitted_spectra


def test_batch_and_a_full_fit_started_from_the_result():
    """A batch of (2, 2) spectra with amplitudes 10% off (a network's error): the nonlinear
    parameters are close, and a full fit started from them reaches the exact answer."""
    basis = lorentzian_basis()
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.2, 1.0, (4, 4))
    damping, shift = rng.uniform(1, 8, (4, 4)), rng.uniform(-2, 2, (4, 4))
    data = np.array([synthesize(basis, *p) for p in zip(truth, damping, shift, strict=True)])
    fid = as_fid(basis, data.reshape(2, 2, -1))
    estimate = (truth * rng.uniform(0.9, 1.1, truth.shape)).reshape(2, 2, 4)
    given = fit_given_amplitudes(fid, basis, estimate, CONFIG)
    assert given.batch_shape == (2, 2)
    np.testing.assert_array_equal(given.amplitudes, estimate)
    assert fitted_spectra(given, fid, basis).model.shape == (2, 2, given.ppm.size)
    start = FitStart.from_result(given)
    assert start.shift_hz.shape == (2, 2, 4) and start.phase0_rad.shape == (2, 2)
    config = FitConfig(ppm_range=(0.5, 4.0), continuation_broadening_per_s=())
    full = fit_spectra(fid, basis, config, start=start)
    np.testing.assert_allclose(full.amplitudes.reshape(4, 4), truth, atol=1e-7)
    np.testing.assert_allclose(full.shift_hz.reshape(4, 4), shift, atol=1e-5)


def test_a_named_start_is_placed_by_name():
    """A start that names its components (``FitStart.names``, as ``from_result`` sets it) is
    placed by name: its columns in another order give the same fit as in the basis' order; a
    component it does not name starts at the mean of the named ones (a network's start for a
    fit that adds components; before session 19 refused for its shape) and the fit still
    reaches the truth; a start naming none of the components is refused in one line."""
    basis = lorentzian_basis()
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.2, 1.0, (2, 4))
    damping, shift = rng.uniform(1, 8, (2, 4)), rng.uniform(-2, 2, (2, 4))
    data = [synthesize(basis, *p) for p in zip(truth, damping, shift, strict=True)]
    fid = as_fid(basis, np.array(data))
    given = fit_given_amplitudes(fid, basis, truth * 1.05, CONFIG)
    config = FitConfig(ppm_range=(0.5, 4.0), continuation_broadening_per_s=())
    ordered = fit_spectra(fid, basis, config, start=FitStart.from_result(given))
    order = [3, 1, 0, 2]
    shuffled = FitStart(
        damping_per_s=given.damping_per_s[:, order],
        shift_hz=given.shift_hz[:, order],
        phase0_rad=given.phase0_rad,
        phase1_rad_per_ppm=given.phase1_rad_per_ppm,
        names=[basis.names[k] for k in order],
    )
    np.testing.assert_array_equal(
        fit_spectra(fid, basis, config, start=shuffled).amplitudes, ordered.amplitudes
    )
    partial = replace(
        shuffled,
        damping_per_s=given.damping_per_s[:, :3],
        shift_hz=given.shift_hz[:, :3],
        names=basis.names[:3],
    )
    full = fit_spectra(fid, basis, config, start=partial)
    np.testing.assert_allclose(full.amplitudes, truth, atol=1e-7)
    with pytest.raises(InvalidDataError, match="names none"):
        fit_spectra(fid, basis, config, start=replace(partial, names=("x", "y", "z")))


def test_bad_amplitudes_are_refused():
    basis = lorentzian_basis()
    fid = as_fid(basis, synthesize(basis, np.ones(4), np.zeros(4), np.zeros(4)))
    with pytest.raises(InvalidDataError, match="shape"):
        fit_given_amplitudes(fid, basis, np.ones(3), CONFIG)
    with pytest.raises(InvalidDataError, match="NaN"):
        fit_given_amplitudes(fid, basis, np.array([1.0, np.nan, 1.0, 1.0]), CONFIG)


def test_recovers_phase_and_shift_of_a_default_basis_spectrum():
    """All 21 metabolites of the default basis with one damping, shift and phase: given the
    true amplitudes, the phase comes back within 1 degree and the shift within 0.1 Hz (the
    issue's tolerances; noiseless, so the fit is in fact exact), with one damping and shift for
    all (``fit_given_amplitudes``' default) and then one per metabolite with the resets and
    twin swaps."""
    from scaloquant.io import default_basis

    basis = default_basis()
    amplitudes = np.random.default_rng(5).uniform(0.1, 1.0, basis.n_metabolites)
    m = basis.n_metabolites
    data = synthesize(basis, amplitudes, np.full(m, 6.0), np.full(m, 2.3), phase0=0.6)
    fid = as_fid(basis, data)
    for grouping in ("global", "per_metabolite"):
        config = FitConfig(grouping=grouping)
        result = fit_given_amplitudes(fid, basis, amplitudes, config)
        assert np.degrees(abs(float(result.phase0_rad) - 0.6)) < 1.0
        assert float(result.phase1_rad_per_ppm) == pytest.approx(0.0, abs=1e-4)
        np.testing.assert_allclose(result.shift_hz, 2.3, atol=0.1)
        np.testing.assert_allclose(result.damping_per_s, 6.0, atol=0.1)
        np.testing.assert_array_equal(result.amplitudes, amplitudes)
        assert np.all(np.isnan(result.crlb_sd)) and result.amplitude_covariance is None
        assert np.all(np.isnan(result.amplitude_correlations))
        spectra = fitted_spectra(result, fid, basis)
        assert np.linalg.norm(spectra.residual) < 1e-6 * np.linalg.norm(spectra.data)
        np.testing.assert_allclose(spectra.metabolites.sum(axis=0), spectra.model, atol=1e-9)


def test_with_noise_baseline_first_order_phase_and_wrong_amplitudes():
    """Per-metabolite damping and shift, both phases and a baseline, with noise: the errors stay
    within the tolerances above (the noise, 1% of the largest peak per point in time, moves the
    phase by about 0.1 degree and the shifts by a few hundredths of a Hz); a batch of two, the second with amplitudes 10 % off (held as given, any sign
    accepted) and a full batched fit started from the result reaching the truth."""
    basis = lorentzian_basis()
    amplitudes = np.array([1.0, 0.4, 0.7, 0.2])
    damping, shift = np.array([1.0, 6.0, 3.0, 9.0]), np.array([1.5, -2.0, 0.5, 2.5])
    config = FitConfig(ppm_range=(0.5, 4.0), baseline_order=1, phase1_pivot_ppm=4.65)
    data = synthesize(basis, amplitudes, damping, shift, phase0=-0.5, phase1=0.03)
    rng = np.random.default_rng(7)
    noisy = data + 0.01 * (rng.standard_normal(data.size) + 1j * rng.standard_normal(data.size))
    given = np.stack([amplitudes, amplitudes * np.array([1.1, 0.9, 1.05, -0.1])])
    result = fit_given_amplitudes(as_fid(basis, np.stack([noisy, noisy])), basis, given, config)
    np.testing.assert_array_equal(result.amplitudes, given)
    assert np.degrees(abs(float(result.phase0_rad[0]) + 0.5)) < 1.0
    assert float(result.phase1_rad_per_ppm[0]) == pytest.approx(0.03, abs=2e-3)
    np.testing.assert_allclose(result.shift_hz[0], shift, atol=0.1)
    assert result.baseline.shape == (2, 2)
    # the residual's noise: the spectral SD per real part, 0.01 sqrt(N)
    assert float(result.noise_sd[0]) == pytest.approx(0.01 * np.sqrt(basis.n_points), rel=0.1)
    assert float(result.noise_sd[1]) > 2 * float(result.noise_sd[0])  # the wrong amplitudes
    full = fit_spectra(
        as_fid(basis, np.stack([data, data])),
        basis,
        replace(config, continuation_broadening_per_s=()),
        start=FitStart.from_result(result),
    )
    np.testing.assert_allclose(full.amplitudes, [amplitudes, amplitudes], atol=1e-6)


def test_fixed_amplitude_gradient_matches_finite_differences():
    """With the amplitudes held, the batched gradient (``_normal_equations``, passive set
    empty: no Kaufman term) is half the derivative of the cost, with a baseline and noise."""
    import torch

    from scaloquant.fit.evaluation import evaluate
    from scaloquant.fit.lm import _normal_equations
    from scaloquant.fit.problem import data_window, make_problem

    basis = lorentzian_basis()
    config = FitConfig(ppm_range=(0.5, 4.0), baseline_order=1)
    problem = make_problem(basis, config, deviations=False)
    sl = problem.slices()
    rng = np.random.default_rng(2)
    data = synthesize(basis, np.array([1.0, 0.5, 0.8, 0.3]), np.array([2.0, 4, 6, 1]), np.zeros(4))
    data = data + 0.01 * (rng.standard_normal(data.size) + 1j * rng.standard_normal(data.size))
    y = data_window(problem, torch.as_tensor(data[None]))
    theta = torch.zeros(1, problem.size, dtype=torch.float64)
    theta[:, sl["damping"]] = torch.tensor([3.0, 5.0, 5.0, 2.0], dtype=torch.float64)
    theta[:, sl["shift"]] = torch.tensor([0.3, -0.2, 0.1, 0.4], dtype=torch.float64)
    theta[:, sl["phase0"]], theta[:, sl["phase1"]] = 0.2, 0.01
    a = torch.tensor([[0.9, 0.6, -0.2, 0.3]], dtype=torch.float64)
    ones = torch.ones(1, dtype=torch.float64)
    ev = evaluate(problem, theta, y, ones, fixed_amplitudes=a)
    assert not bool(ev.passive.any())
    _, grad = _normal_equations(problem, ev, theta, ones)
    for k, j in enumerate(problem.free_index.tolist()):
        step = 1e-6
        up, down = theta.clone(), theta.clone()
        up[0, j] += step
        down[0, j] -= step
        cost = [float(evaluate(problem, t, y, ones, fixed_amplitudes=a).cost) for t in (up, down)]
        numeric = (cost[0] - cost[1]) / (2 * step) / 2
        assert float(grad[0, k]) == pytest.approx(numeric, rel=2e-4, abs=1e-6)
