"""Physics-head quantifiers: the network's parameters -> NNLS -> LM polish -> CRLB.

Known answers: with the true nonlinear parameters of a noiseless ``invivo`` spectrum in place of
the network's, the fit's NNLS returns the true amplitudes (rounding level); the polish recovers
them from a perturbed start; a batch equals item by item.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pytest
import torch
from _quantifiers import SMALL_SCALOGRAM

from scaloquant.errors import ConfigError, IncompatibleDataError
from scaloquant.fit import batched
from scaloquant.fit.covariance import covariance_pairs
from scaloquant.fit.model import MISFIT_RATIO
from scaloquant.fit.result import ANTICORRELATION_MAX
from scaloquant.io import default_basis
from scaloquant.models.physics import PhysicsEstimate, build_physics_quantifier
from scaloquant.models.physics_config import PhysicsQuantifierConfig
from scaloquant.models.physics_head import (
    least_squares_amplitudes,
    network_sd_factors,
    normalised_theta,
    theta_from_outputs,
)
from scaloquant.models.physics_truth import default_truth, invivo_truth
from scaloquant.simulate import (
    BaselineConfig,
    SimulationConfig,
    drawn_parameters,
    simulate_dataset,
)
from scaloquant.simulate.draws import draw_invivo
from scaloquant.simulate.invivo import render_invivo
from scaloquant.simulate.prior import InvivoPrior
from scaloquant.train.physics import default_simulation_model

SMALL = dict(widths=(4, 4, 8, 8, 8, 8))
#: No water, eddy currents or baseline humps: every term the fit's model can represent.
CLEAN = dict(
    water_fraction=0.0, eddy_fraction=0.0, baseline=BaselineConfig(height_range=(0.0, 0.0))
)


@pytest.fixture(scope="module")
def built():
    torch.manual_seed(0)
    return build_physics_quantifier("spectrum_physics", default_basis(), **SMALL)


def _clean_signals(on_grid, n, seed, **prior):
    params = draw_invivo(
        InvivoPrior(**{**CLEAN, **prior}), on_grid.names, n, np.random.default_rng(seed)
    )
    return params, render_invivo(on_grid, params).fids


@pytest.mark.parametrize("lipid_fraction", [0.0, 1.0])
def test_true_parameters_give_true_amplitudes(built, lipid_fraction):
    model, on_grid, _ = built
    params, fids = _clean_signals(on_grid, 6, 1, lipid_fraction=lipid_fraction)
    theta, amplitudes = invivo_truth(model.problem(), params)
    est = model.eval().estimate(
        torch.as_tensor(fids), polish_iterations=0, network_theta=torch.as_tensor(theta)
    )
    # float64 model and data: rounding level relative to the largest amplitude (~20 mM)
    np.testing.assert_allclose(est.amplitudes.numpy(), amplitudes, atol=1e-6 * amplitudes.max())
    assert est.sd.shape == amplitudes.shape and bool(torch.isfinite(est.sd).all())


def test_the_fit_result_at_the_true_parameters_is_the_truth(built):
    """``fit.spectra.fit_result_at`` (a physics-head model's final model as a fit result, for
    ``quantify``'s figures) at the true parameters of noiseless spectra of every term the model
    represents gives the true amplitudes, and the spectra it rebuilds (the figures' curves) are
    the data: data - model is rounding, the baseline ~0. On all N samples: on the model's
    decimated band (the polish's, which the figures take so that they show the table's
    amplitudes) the noiseless amplitudes are off by up to 1e-3 of themselves, as the polish's
    before it ends near-noiseless spectra on the full grid."""
    from scaloquant.fit import fitted_spectra
    from scaloquant.fit.spectra import fit_result_at
    from scaloquant.types import FID

    model, on_grid, _ = built
    params, fids = _clean_signals(on_grid, 3, 4, lipid_fraction=1.0)
    theta, amplitudes = invivo_truth(model.problem(), params)
    fid = FID(
        samples=fids,
        dwell_time_s=on_grid.dwell_time_s,
        spectrometer_freq_mhz=on_grid.spectrometer_freq_mhz,
        ppm_reference=on_grid.ppm_reference,
    )
    basis = model.basis()
    config = replace(model.config.fit_config, water_removal="none", decimate_model=False)
    result = fit_result_at(fid, basis, config, theta, deviations=True)
    assert result.names == model.metabolites
    np.testing.assert_allclose(result.amplitudes, amplitudes, atol=1e-6 * amplitudes.max())
    spectra = fitted_spectra(result, fid, basis)
    scale = np.abs(spectra.data).max()
    assert np.abs(spectra.data - spectra.model).max() < 1e-6 * scale
    assert np.abs(spectra.baseline).max() < 1e-6 * scale


def test_polish_recovers_the_truth_from_a_perturbed_start(built):
    model, on_grid, _ = built
    params, fids = _clean_signals(on_grid, 4, 2, lipid_fraction=0.0)
    problem = model.problem()
    theta, amplitudes = invivo_truth(problem, params)
    start = torch.as_tensor(theta).clone()
    sl = problem.slices()
    start[:, sl["damping"]] += 2.0
    start[:, sl["shift"]] += 1.5
    start[:, sl["phase0"]] += 0.1
    start[:, sl["damping_dev"]] = 0.0
    start[:, sl["shift_dev"]] = 0.0
    x = torch.as_tensor(fids)
    before = model.estimate(x, polish_iterations=0, network_theta=start)
    after = model.estimate(x, polish_iterations=40, network_theta=start)
    err_before = np.abs(before.amplitudes.numpy() - amplitudes).mean()
    err_after = np.abs(after.amplitudes.numpy() - amplitudes).mean()
    # a noiseless spectrum: the polish must close almost all of the start's error (the
    # deviations' priors hold them slightly off their true values, so not to rounding level)
    assert err_after < 0.05 * err_before
    assert err_after < 0.02


def test_polish_starts_from_the_fits_shift_where_the_networks_is_far_off(built):
    # a real spectrum unlike the training signals can push the predicted shift to a range
    # edge (the spant Philips spectrum: -24 Hz against the fit's -1.8 Hz): the polish then
    # starts from the fit's cross-correlation shift, which has the lower cost
    model, on_grid, _ = built
    params, fids = _clean_signals(on_grid, 4, 3, lipid_fraction=0.0)
    problem = model.problem()
    theta, amplitudes = invivo_truth(problem, params)
    start = torch.as_tensor(theta).clone()
    start[:, problem.slices()["shift"]] = -24.0
    est = model.estimate(torch.as_tensor(fids), polish_iterations=5, network_theta=start)
    # the network's own parameters are still reported as its start
    assert torch.equal(est.network_theta, start)
    assert np.abs(est.amplitudes.numpy() - amplitudes).mean() < 0.05


def test_polish_start_does_not_depend_on_the_datas_units(built):
    """The polish's start (the network's group shifts or the fit's cross-correlation shift,
    whichever has the lower cost) is chosen with the MM shift prior weighed by the residual's
    variance, as the continuation weighs it: weighed by 1 it grew against the data's cost as
    the data shrank, and chose the other start for the second of these spectra times 1e-3
    (amplitudes over the scale 7.8e-5 of the largest from the unscaled spectrum's, against
    1.4e-7 for the first; docs/history/physics-models-log.md "The polish's start in the data's
    units (session 29, `units29`)")."""
    model, on_grid, _ = built
    assert model.predicting_problem().penalty_active  # the premise: the MM shift prior
    params = draw_invivo(InvivoPrior(), on_grid.names, 8, np.random.default_rng(12))
    rows = [1, 2]
    fids = render_invivo(on_grid, params, np.random.default_rng(13)).fids[rows]
    theta, _ = invivo_truth(model.problem(), params)
    start = torch.as_tensor(theta[rows])  # group shifts apart by the MM shift's deviation
    model.eval()
    scale = model.problem().scale
    one = model.estimate(torch.as_tensor(fids), polish_iterations=5, network_theta=start)
    for s in (1e-3, 1e3):
        est = model.estimate(torch.as_tensor(s * fids), polish_iterations=5, network_theta=start)
        largest = one.amplitudes.abs().amax(-1, keepdim=True)
        assert float(((est.amplitudes / s - one.amplitudes).abs() / largest).max()) < 1e-5
        assert float(((est.theta - one.theta) / scale).abs().max()) < 3e-4


@pytest.mark.parametrize("k", [5, 60])
def test_polish_ends_on_the_fits_minimum_where_the_model_fits(built, k):
    """The fit weighs the deviations' priors with the noise variance of the spectrum's
    signal-free region; the polish, after its K trials weighed with the residual's variance,
    does too where the model fits by the fit's own test (residual SD within MISFIT_RATIO of the
    region's). Weighed with the residual's alone, which also holds what the model cannot
    represent (residual water, eddy currents, baseline humps), the priors were stronger and the
    polish ended in another minimum from the true parameters (these two spectra, residual
    variance 1.30 and 1.65 times the region's: 0.26 and 0.35 CRLB SDs from the fit's amplitudes
    before; the spant Philips spectrum: tNAA/tCr 1.076 against the fit's 1.121). The fit's
    objective runs to the fit's own convergence, not K iterations: at the default K = 5 it
    stopped short (these spectra 0.46 and 0.48 CRLB SDs from the fit's amplitudes; spant's
    3t.basis tNAA/tCr 1.084 against the fit's 1.127)."""
    model, on_grid, _ = built
    prior = InvivoPrior(snr_range=(120.0, 120.0))
    params = draw_invivo(prior, on_grid.names, 8, np.random.default_rng(12))
    rows = [3, 4]
    fids = render_invivo(on_grid, params, np.random.default_rng(13)).fids[rows]
    x = torch.as_tensor(fids)
    region_var = model.region_noise_var(x)
    fit = batched.solve(
        fids,
        model.basis(),
        model.config.fit_config,
        region_noise_sd=region_var.sqrt().numpy(),
        covariance=True,
    )
    theta, _ = invivo_truth(model.problem(), params)
    start = torch.as_tensor(theta[rows])
    est = model.estimate(x, polish_iterations=k, network_theta=start)
    # the premise: the model fits these spectra by the fit's test, but not to the noise
    ratio = est.noise_sd**2 / region_var
    assert bool(((ratio > 1.1) & (ratio < MISFIT_RATIO**2)).all())
    m = fit.amplitudes.shape[1]
    crlb_sd = np.sqrt(np.diagonal(fit.covariance, axis1=1, axis2=2)[:, :m])
    assert np.abs((est.amplitudes.numpy() - fit.amplitudes) / crlb_sd).max() < 0.05


class PolishedFromTheFit(NamedTuple):
    """Two SNR-120 ``invivo`` spectra the model fits (the premise of
    :func:`test_polish_ends_on_the_fits_minimum_where_the_model_fits`), ``fids`` ``(2, N)``;
    ``fit`` their fit (``batched.solve``); ``est`` the polish (``K = 5``, ``covariance=True``)
    started from the fit's result; ``bound`` the fit's CRLB covariance ``(2, P, P)`` at the
    polish's end (its problem, evaluation and noise level)."""

    fids: np.ndarray
    fit: batched.BatchedFit
    est: PhysicsEstimate
    bound: torch.Tensor


@pytest.fixture(scope="module")
def from_the_fit(built):
    from scaloquant.fit.crlb import crlb
    from scaloquant.fit.evaluation import evaluate

    model, on_grid, _ = built
    prior = InvivoPrior(snr_range=(120.0, 120.0))
    params = draw_invivo(prior, on_grid.names, 8, np.random.default_rng(12))
    fids = render_invivo(on_grid, params, np.random.default_rng(13)).fids[[3, 4]]
    x = torch.as_tensor(fids)
    region_var = model.region_noise_var(x)
    fit = batched.solve(
        fids,
        model.basis(),
        model.config.fit_config,
        region_noise_sd=region_var.sqrt().numpy(),
        covariance=True,
    )
    model.eval()
    est = model.estimate(
        x, polish_iterations=5, network_theta=torch.as_tensor(fit.theta), covariance=True
    )
    problem = model.predicting_problem()
    noise_var = est.noise_sd**2
    ev = evaluate(problem, est.theta, model.data_window(x), noise_var)
    want, _ = crlb(problem, ev, noise_var)
    return PolishedFromTheFit(fids, fit, est, want)


def test_polish_pair_correlations_are_the_fits_crlb_correlations(built, from_the_fit):
    """The polish's amplitude covariance (``covariance=True``) is the fit's CRLB covariance
    (:func:`scaloquant.fit.crlb.crlb`) at the polish's own end, its pair correlations the
    fit's reading of it (:func:`~scaloquant.fit.result.covariance_pairs`, which
    :meth:`~scaloquant.fit.result.FitResult.pair_correlations` is) to rounding, its diagonal
    the SDs squared; started from the fit's own result on spectra the model fits (the premise
    of :func:`test_polish_ends_on_the_fits_minimum_where_the_model_fits`), the polish ends
    0.015 CRLB SDs from the fit's amplitudes, its coefficients within 0.0034 of the fit's and
    the same pairs at or below ANTICORRELATION_MAX (28 of 2 x 378). K = 0 forms none."""
    model = built[0]
    fids, fit, est, want = from_the_fit
    x, start = torch.as_tensor(fids), torch.as_tensor(fit.theta)
    m = len(model.metabolites)
    cov = est.amplitude_covariance
    assert cov.shape == (2, m, m)
    # the same inverse as the SDs: its diagonal their squares (8.9e-16 relative seen)
    np.testing.assert_allclose(torch.diagonal(cov, dim1=-2, dim2=-1), est.sd**2, rtol=1e-12)
    # the fit's bound at the polish's end (its problem, evaluation and noise level)
    pairs = covariance_pairs(cov.numpy())
    assert pairs.shape == (2, m * (m - 1) // 2)
    # 1.2e-15 seen (the Cholesky route's rounding; test_fit_batched_crlb)
    np.testing.assert_allclose(pairs, covariance_pairs(want[:, :m, :m].numpy()), atol=1e-12)
    # against the fit's own result, ended by the fit's iterations rather than the polish's
    fit_pairs = covariance_pairs(fit.covariance)
    assert np.abs(pairs - fit_pairs).max() < 0.01
    beyond = pairs <= ANTICORRELATION_MAX
    assert beyond.sum() > 0 and np.array_equal(beyond, fit_pairs <= ANTICORRELATION_MAX)
    # the fit's result at the polish's end (quantify's fit figures): the polish's noise level and
    # covariance, where its noise SD was 5.6 % under (its degrees of freedom without theta)
    at = batched.fit_at(
        fids, model.basis(), model.config.fit_config, est.theta.numpy(), deviations=True
    )
    np.testing.assert_allclose(at.noise_sd, est.noise_sd.numpy(), rtol=1e-9)
    # what it keeps of its covariance (batched.BatchedFit): the variances and the pairs
    var = np.diagonal(cov.numpy(), axis1=-2, axis2=-1)
    np.testing.assert_allclose(at.crlb_sd**2, var, rtol=1e-6, atol=1e-9 * cov.abs().max())
    np.testing.assert_allclose(at.correlations, pairs, rtol=0.0, atol=1e-6)
    # the network alone forms no covariance
    assert model.estimate(x, polish_iterations=0, covariance=True).amplitude_covariance is None
    assert model.estimate(x, polish_iterations=5, network_theta=start).amplitude_covariance is None


def test_polish_combined_rows_are_the_fits(built, from_the_fit):
    """LCModel's combined rows of the polish (tNAA, tCr, tCho, Glx), their SD from its own
    covariance by the function ``fit``'s columns use (:func:`~scaloquant.fit.result.
    combined_columns`): at the polish's end the fit's CRLB (:func:`scaloquant.fit.crlb.crlb`
    there) to rounding (5.3e-15 relative seen); started from the fit's own result on spectra the
    model fits (as :func:`test_polish_pair_correlations_are_the_fits_crlb_correlations`), the
    fit's own combined SDs and sums within 0.2 % (4.6e-4 and 3.5e-4 relative seen: the polish
    ends 0.015 CRLB SDs from the fit); GPC and PCho anticorrelated, tCho's SD 0.20-0.26 of its
    parts' in quadrature (the report's sum before session 34: spant's spectrum 27 % against
    fit's 6 %). :meth:`predict_estimates` gives them per batch as :meth:`estimate`'s covariance
    does (batches of 1 against one of 2: 1.8e-9 relative seen)."""
    from scaloquant.fit.covariance import combined_columns

    model = built[0]
    fids, fit, est, want = from_the_fit
    x = torch.as_tensor(fids)
    names, m = tuple(model.metabolites), len(model.metabolites)
    combos, total, sd = combined_columns(
        est.amplitudes.numpy(), est.amplitude_covariance.numpy(), names
    )
    assert combos == ("tNAA", "tCr", "tCho", "Glx")
    at_end = combined_columns(est.amplitudes.numpy(), want[:, :m, :m].numpy(), names)
    np.testing.assert_allclose(sd, at_end[2], rtol=1e-12)
    np.testing.assert_allclose(total, at_end[1], rtol=0)
    fits = combined_columns(fit.amplitudes, fit.covariance[:, :m, :m], names)
    np.testing.assert_allclose(sd, fits[2], rtol=2e-3)
    np.testing.assert_allclose(total, fits[1], rtol=2e-3)
    # the point: the parts' covariance counts (GPC and PCho correlate at about -0.9)
    parts = [names.index("GPC"), names.index("PCho")]
    quadrature = np.sqrt((est.sd[:, parts].numpy() ** 2).sum(axis=-1))
    assert np.all(sd[:, combos.index("tCho")] < 0.4 * quadrature)
    # per batch in predict_estimates (its own start: only the same function, not the values)
    p = model.predict_estimates(fids, polish_iterations=2, correlations=True, batch_size=1)
    assert p.combined_names == combos and p.combined_sd.shape == (2, len(combos))
    one = model.estimate(x, polish_iterations=2, covariance=True)
    own = combined_columns(one.amplitudes.numpy(), one.amplitude_covariance.numpy(), names)
    np.testing.assert_allclose(p.combined_sd, own[2], rtol=1e-6)
    np.testing.assert_allclose(p.combined_amplitudes, own[1], rtol=1e-6)
    # the network alone: no covariance, no combined rows
    none = model.predict_estimates(fids, polish_iterations=0, correlations=True)
    assert none.combined_names == () and none.combined_sd is None


def test_batch_equals_item_by_item(built):
    model, on_grid, _ = built
    rng = np.random.default_rng(3)
    params = draw_invivo(InvivoPrior(), on_grid.names, 3, rng)
    fids = torch.as_tensor(render_invivo(on_grid, params, rng).fids)
    model.eval()
    whole = model.estimate(fids, polish_iterations=3)
    # The LM's trial steps use single-precision columns (stages.TRIAL_DTYPE), summed in another
    # order for another batch size: the same fit to a small fraction of the uncertainty, not to
    # float64 rounding (amplitudes ~1e-5 relative, a near-zero shift deviation ~2e-8 Hz apart).
    # Amplitudes in units of their CRLB SD, parameters in units of their LM scale
    # (Problem.scale: 0.2 Hz for a shift deviation).
    scale = model.problem().scale
    for i in range(3):
        one = model.estimate(fids[i : i + 1], polish_iterations=3)
        sd = whole.sd[i].clamp_min(1e-12)
        assert float(((one.amplitudes[0] - whole.amplitudes[i]).abs() / sd).max()) < 1e-3
        torch.testing.assert_close(one.sd[0], whole.sd[i], rtol=1e-4, atol=1e-12)
        torch.testing.assert_close(
            one.theta[0] / scale, whole.theta[i] / scale, rtol=1e-5, atol=1e-5
        )


def test_outputs_map_into_the_ranges_and_back(built):
    model, _, _ = built
    problem = model.problem()
    g = problem.n_groups
    z = torch.randn(5, 3 * g + 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    theta = theta_from_outputs(problem, z, model.range_low, model.range_high)
    u, phi0 = normalised_theta(problem, theta, model.range_low, model.range_high)
    torch.testing.assert_close(
        u, torch.sigmoid(torch.cat([z[:, : 3 * g], z[:, 3 * g : 3 * g + 1]], 1))
    )
    torch.testing.assert_close(phi0, torch.atan2(z[:, -1], z[:, -2]))
    assert bool((theta[:, 3 * g + 2 :] == 0).all())  # deviations start at 0


def test_differentiable_least_squares_at_the_truth(built):
    model, on_grid, _ = built
    params, fids = _clean_signals(on_grid, 3, 4, lipid_fraction=0.0)
    problem = model.problem(deviations=False)
    theta, amplitudes = invivo_truth(problem, params)
    theta = torch.as_tensor(theta).requires_grad_(True)
    y = model.data_window(torch.as_tensor(fids))
    a, relative = least_squares_amplitudes(problem, theta, y, ridge=1e-14)
    np.testing.assert_allclose(a.detach().numpy(), amplitudes, atol=1e-5 * amplitudes.max())
    assert float(relative.detach().max()) < 1e-10
    relative.sum().backward()
    assert bool(torch.isfinite(theta.grad).all())


def test_predict_interface_and_errors(built):
    model, on_grid, _ = built
    params, fids = _clean_signals(on_grid, 5, 5)
    amplitudes, sd = model.predict_with_sd(fids, batch_size=2)
    assert amplitudes.shape == sd.shape == (5, len(model.metabolites))
    assert (amplitudes >= 0).all()
    with pytest.raises(IncompatibleDataError):
        model.predict(fids[:, :1024])


def test_scalogram_encoder_and_config_round_trip():
    model, _, _ = build_physics_quantifier(
        "scalogram_physics",
        default_basis(),
        scalogram=SMALL_SCALOGRAM.to_dict() | {"channels": "complex"},
        polish_iterations=2,
        **SMALL,
    )
    again = PhysicsQuantifierConfig.from_dict(model.config.to_dict())
    assert again == model.config
    assert model.encoder.input_shape[0] == 4  # complex channels see phase and conjugation
    with pytest.raises(ConfigError):
        PhysicsQuantifierConfig.from_dict({**model.config.to_dict(), "model": "spectrum_cnn"})


def test_amplitudes_and_sds_scale_with_the_data(built):
    """The encoder sees the FID over its window's RMS and NNLS is linear: ``k x`` gives ``k``
    times the amplitudes and SDs (float64 fit; the float32 network sees the same input)."""
    model, on_grid, _ = built
    rng = np.random.default_rng(6)
    params = draw_invivo(InvivoPrior(), on_grid.names, 2, rng)
    fids = render_invivo(on_grid, params, rng).fids
    a, sd = model.predict_with_sd(fids, polish_iterations=2)
    a3, sd3 = model.predict_with_sd(1e3 * fids, polish_iterations=2)
    np.testing.assert_allclose(a3, 1e3 * a, rtol=1e-5, atol=1e-6 * a3.max())
    np.testing.assert_allclose(sd3, 1e3 * sd, rtol=1e-4, atol=1e-6 * sd3.max())


# --- the paper's default simulator (Eq. 1: a damping and a shift per metabolite) -------------

#: The default simulator with every effect the per-metabolite model represents switched on.
PHASED_VOIGT = {
    "phase0_range_deg": [-30, 30],
    "phase1_range_deg_per_ppm": [-5, 5],
    "lineshape": "voigt",
}


def _default_built(simulation: SimulationConfig):
    fit_config, ranges = default_simulation_model(simulation)
    torch.manual_seed(0)
    return build_physics_quantifier(
        "spectrum_physics", default_basis(), fit_config=fit_config, **SMALL, **ranges
    )


def _default_signals(on_grid, simulation: SimulationConfig, n: int, seed: int, problem):
    signals = next(simulate_dataset(on_grid, simulation, n, seed))
    theta, amplitudes = default_truth(
        problem, drawn_parameters(signals), on_grid.names, simulation.phase1_pivot_ppm
    )
    np.testing.assert_array_equal(amplitudes, signals.amplitudes)
    return signals.fids, theta, amplitudes


@pytest.mark.parametrize("mapping", [{}, PHASED_VOIGT], ids=["paper", "phased_voigt"])
def test_default_simulation_true_parameters_give_true_amplitudes(mapping):
    """The per-metabolite model equals the simulator: the true parameters give the true
    amplitudes of noiseless spectra to rounding level."""
    simulation = SimulationConfig.from_dict(mapping)
    model, on_grid, _ = _default_built(simulation)
    problem = model.problem()
    assert problem.n_groups == len(on_grid.names) and problem.gaussian == bool(mapping)
    fids, theta, amplitudes = _default_signals(on_grid, simulation, 6, 1, problem)
    est = model.eval().estimate(
        torch.as_tensor(fids), polish_iterations=0, network_theta=torch.as_tensor(theta)
    )
    np.testing.assert_allclose(est.amplitudes.numpy(), amplitudes, atol=1e-6 * amplitudes.max())


def test_default_simulation_polish_recovers_the_truth():
    """From a start 2/s, 0.3 Hz and 0.05 rad off, the polish (one LM call) reaches the truth of
    noiseless default spectra. (A start 1 Hz off ends in local minima of the narrow lines'
    per-metabolite shifts: the network has to be that close.) The model is the fit's
    ``simulated`` preset, spread priors included (added in the polish's last pass, weighed
    with the polished residual's variance: weighed at the start they held it at MAE 0.036)."""
    simulation = SimulationConfig()
    model, on_grid, _ = _default_built(simulation)
    assert model.config.fit_config.has_spread_priors
    problem = model.problem()
    fids, theta, amplitudes = _default_signals(on_grid, simulation, 4, 3, problem)
    start = torch.as_tensor(theta).clone()
    sl = problem.slices()
    start[:, sl["damping"]] += 2.0
    start[:, sl["shift"]] += 0.3
    start[:, sl["phase0"]] += 0.05
    x = torch.as_tensor(fids)
    before = model.eval().estimate(x, polish_iterations=0, network_theta=start)
    after = model.estimate(x, polish_iterations=20, network_theta=start)
    err_before = np.abs(before.amplitudes.numpy() - amplitudes).mean()
    err_after = np.abs(after.amplitudes.numpy() - amplitudes).mean()
    assert err_before > 0.05
    assert err_after < 1e-3


def test_default_simulation_ranges_cover_the_simulators():
    simulation = SimulationConfig.from_dict(
        {"damping_range_per_s": [2, 30], "shift_range_hz": [-6, 4], **PHASED_VOIGT}
    )
    fit_config, ranges = default_simulation_model(simulation)
    assert fit_config.grouping == "per_metabolite" and fit_config.lineshape_kind == "voigt"
    lo, hi = ranges["damping_range_per_s"]
    assert lo <= 2 and hi >= 30
    lo, hi = ranges["shift_range_hz"]
    assert lo <= -6 and hi >= 4
    assert ranges["gauss_range_per_s2"][1] >= 9.0**2  # the default Gaussian g up to 9 1/s
    model, _, _ = build_physics_quantifier(
        "spectrum_physics", default_basis(), fit_config=fit_config, **SMALL, **ranges
    )
    assert model.config.damping_range_per_s == ranges["damping_range_per_s"]


def test_network_sd_factors_give_unit_rms_z_scores():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 1, (4000, 3))
    sd = np.full((4000, 3), 0.1)
    errors = rng.normal(0, [0.05, 0.1, 0.3], (4000, 3))
    factors = np.array(network_sd_factors(truth + errors, sd, truth))
    np.testing.assert_allclose(factors, [0.5, 1.0, 3.0], rtol=0.05)
    z = errors / (sd * factors)
    np.testing.assert_allclose(np.sqrt((z**2).mean(0)), 1.0, rtol=1e-12)
    # no SD (no signal): factor 1
    assert network_sd_factors(truth, np.zeros_like(sd), truth) == (1.0, 1.0, 1.0)


def test_default_simulation_moves_undo_a_twin_swap():
    """A start at the truth but for Cr's and PCr's lineshapes, exchanged: at full resolution no continuous path leads LM from one labelling to the other; the twin swap
    does."""
    simulation = SimulationConfig()
    model, on_grid, _ = _default_built(simulation)
    problem = model.problem()
    fids, theta, amplitudes = _default_signals(on_grid, simulation, 3, 4, problem)
    assert model.twin_pairs()  # Cr/PCr (and GPC/PCho) in the embedded basis
    sl = problem.slices()
    cr, pcr = on_grid.names.index("Cr"), on_grid.names.index("PCr")
    start = torch.as_tensor(theta).clone()
    d, s = sl["damping"].start, sl["shift"].start
    start[:, [d + cr, d + pcr]] = start[:, [d + pcr, d + cr]]
    start[:, [s + cr, s + pcr]] = start[:, [s + pcr, s + cr]]
    x = torch.as_tensor(fids)
    model.eval()
    errors = {}
    for moves in (False, True):
        # without the continuation stages, which merge the twins' lines and so can undo it
        model.config = replace(model.config, polish_moves=moves, polish_broadening_per_s=())
        est = model.estimate(x, polish_iterations=20, network_theta=start)
        errors[moves] = np.abs(est.amplitudes.numpy() - amplitudes).mean()
    assert errors[True] < 1e-6 < 1e-3 < errors[False]


def test_default_simulation_moves_skip_exactly_fitted_spectra():
    """The moves run only where the polished model is not exact: in one batch, spectra started
    at the truth keep the polish's parameters untouched (no move probed them), and the
    twin-swapped ones are still repaired."""
    simulation = SimulationConfig()
    model, on_grid, _ = _default_built(simulation)
    problem = model.problem()
    # the spectra of test_default_simulation_moves_undo_a_twin_swap, twice: from the truth,
    # then from the truth with Cr's and PCr's lineshapes exchanged
    fids, theta, amplitudes = _default_signals(on_grid, simulation, 3, 4, problem)
    fids, amplitudes = np.concatenate([fids, fids]), np.concatenate([amplitudes, amplitudes])
    sl = problem.slices()
    cr, pcr = on_grid.names.index("Cr"), on_grid.names.index("PCr")
    start = torch.as_tensor(np.concatenate([theta, theta]))
    d, s = sl["damping"].start, sl["shift"].start
    exact, swapped = [0, 1, 2], [3, 4, 5]
    for key in (d, s):
        start[swapped, key + cr], start[swapped, key + pcr] = (
            start[swapped, key + pcr].clone(),
            start[swapped, key + cr].clone(),
        )
    x = torch.as_tensor(fids)
    model.eval()
    est = {}
    for moves in (False, True):
        model.config = replace(model.config, polish_moves=moves, polish_broadening_per_s=())
        est[moves] = model.estimate(x, polish_iterations=20, network_theta=start)
    assert torch.equal(est[True].theta[exact], est[False].theta[exact])
    errors = np.abs(est[True].amplitudes.numpy() - amplitudes).mean(1)
    assert errors.max() < 1e-6
    assert np.abs(est[False].amplitudes.numpy() - amplitudes)[swapped].mean() > 1e-3


def test_default_simulation_polish_from_shrunk_shifts_reaches_the_truth():
    """A network that shrinks every shift to 0 (the quick scalogram one's) starts the polish
    with its shift bounds (+-5 Hz) about 0 or about the cross-correlation shift, which follows
    the largest peaks: four noiseless default spectra (of 48, seed 5) whose polish ended in a
    local minimum before (MAE 0.002-0.05). The bounds re-centred after each continuation stage
    (spectra 13 and 44) and the fit's second search where the residual misfits (34 and 41), as
    in the fit, reach the truth."""
    simulation = SimulationConfig()
    model, on_grid, _ = _default_built(simulation)
    problem = model.problem()
    fids, theta, amplitudes = _default_signals(on_grid, simulation, 48, 5, problem)
    rows = [13, 44, 34, 41]
    sl = problem.slices()
    start = torch.as_tensor(theta[rows]).clone()
    start[:, sl["damping"]] += 2.0
    start[:, sl["shift"]] = 0.0
    est = model.eval().estimate(
        torch.as_tensor(fids[rows]), polish_iterations=20, network_theta=start
    )
    errors = np.abs(est.amplitudes.numpy() - amplitudes[rows]).mean(1)
    assert errors.max() < 1e-5, errors


def test_predict_estimates_are_one_pass_of_estimate(built):
    """predict_estimates (reproduce's single pass) gives estimate's amplitudes, both SDs, the
    network's parameters, the polished ones, the residual's SD and, asked for, the pair
    correlations of the polish's covariance (K = 0: none), batched as asked (to rounding: the polish's single-precision trial
    columns are summed in another order in batches of 2 than of 5, which moved a small amplitude
    (0.405 beside 98) by 1.1e-6 of itself with the packages of 2026-12-03; the tolerance is relative
    to each output's largest value, the scale that rounding works on)."""
    model, on_grid, _ = built
    _, fids = _clean_signals(on_grid, 5, 6)
    model.eval()
    p = model.predict_estimates(fids, batch_size=2, polish_iterations=2, correlations=True)
    est = model.estimate(torch.as_tensor(fids), polish_iterations=2, covariance=True)
    assert p.flexible is None  # no screen asked for
    # the pairs of each spectrum's covariance, kept in place of the covariance
    want = covariance_pairs(est.amplitude_covariance.numpy())
    np.testing.assert_allclose(p.pair_correlations, want, rtol=0.0, atol=1e-6)
    assert model.predict_estimates(fids, polish_iterations=2).pair_correlations is None
    alone = model.predict_estimates(fids, polish_iterations=0, correlations=True)
    assert alone.pair_correlations is None and alone.combined_sd is None
    for got, want in zip(
        p[:8],
        (
            est.amplitudes,
            est.sd,
            est.network_sd,
            est.network_theta,
            est.fit_residual,
            est.metabolite_fraction,
            est.theta,
            est.residual_sd,
        ),
        strict=True,
    ):
        want = want.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max() + 1e-12)
    a, crlb_sd, net_sd = model.predict_with_sds(fids, polish_iterations=2)
    np.testing.assert_array_equal(a, model.predict_estimates(fids, polish_iterations=2).amplitudes)


def test_checkpoints_saved_with_the_scipy_solvers_settings_still_load():
    """A physics-head checkpoint stores ``FitConfig.to_dict()``; those saved before the scipy
    solver was retired also hold ``solver="batched"``, ``tolerance`` and ``max_evaluations``
    (as lists where tuples belong): they rebuild the same model."""
    from scaloquant.fit.config import FIT_PRESETS
    from scaloquant.models.physics_config import fit_config_from_dict

    for preset in FIT_PRESETS.values():
        old = {**preset.to_dict(), "solver": "batched", "tolerance": 1e-6, "max_evaluations": 100}
        assert fit_config_from_dict(old) == preset


def test_polish_with_another_fit_model_of_the_same_parameters():
    """A per-metabolite model is polished with the plain per-metabolite fit instead of its
    spread priors on request (problems rebuilt: no penalty), and refuses a fit model with
    other parameters (the in-vivo groups) in one error naming what differs."""
    from scaloquant.fit.config import FIT_PRESETS

    model, _, _ = _default_built(SimulationConfig())
    assert model.problem().penalty_active
    model.polish_with(FIT_PRESETS["simulated-plain"])
    assert not model.config.fit_config.has_spread_priors
    assert not model.problem().penalty_active
    with pytest.raises(ConfigError, match="grouping"):
        model.polish_with(FIT_PRESETS["invivo"])


def test_second_search_centre_bounds_the_passes_after_it(monkeypatch):
    """The fit's second search re-centres the shift bounds inside; the passes after it (the
    polish's last pass, the fit's refine pass) must be bounded about that centre, not the one
    before it, or they clip the shifts it found. With the stages' re-centring turned off (so
    that only the second search moves the centre), spectrum 13 of the shrunk-shift case above
    ended at MAE 0.045 when the search's centre was dropped (before session 17's change)."""
    import scaloquant.fit.stages as stages_module

    continuation = stages_module.continuation

    def without_recentring(*args, **kwargs):
        return continuation(*args, **{**kwargs, "recentre": False})

    monkeypatch.setattr(stages_module, "continuation", without_recentring)
    simulation = SimulationConfig()
    model, on_grid, _ = _default_built(simulation)
    problem = model.problem()
    fids, theta, amplitudes = _default_signals(on_grid, simulation, 48, 5, problem)
    sl = problem.slices()
    start = torch.as_tensor(theta[[13]]).clone()
    start[:, sl["damping"]] += 2.0
    start[:, sl["shift"]] = 0.0
    est = model.eval().estimate(
        torch.as_tensor(fids[[13]]), polish_iterations=20, network_theta=start
    )
    errors = np.abs(est.amplitudes.numpy() - amplitudes[[13]]).mean(1)
    assert errors.max() < 1e-5, errors
