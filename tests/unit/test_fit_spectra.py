"""fit_spectra: known answers on small synthetic bases, the default simulator, bounds, errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_fit_model import lorentzian_basis

from scaloquant.errors import (
    ConfigError,
    IncompatibleDataError,
    InvalidDataError,
    UnknownMetaboliteError,
)
from scaloquant.fit import (
    FitConfig,
    FitStart,
    fit_spectra,
    fitted_spectra,
    phase_corrected,
)
from scaloquant.fit.problem import make_problem
from scaloquant.signal import axes
from scaloquant.types import FID

CONFIG = FitConfig(ppm_range=(0.5, 4.0))


def synthesize(basis, amplitudes, damping, shift, phase0=0.0, phase1=0.0, gauss=0.0):
    """Data from the fit's own model, built independently: Eq. 1 in the time domain, then the
    phase applied to the whole spectrum (so it also holds outside the window)."""
    t = basis.time_axis_s()
    fid = np.einsum(
        "m,mn->n",
        amplitudes,
        basis.fids * np.exp((-damping + 2j * np.pi * shift)[:, None] * t - gauss * t**2),
    )
    ppm = basis.ppm_axis()
    spectrum = axes.spectrum(fid) * np.exp(1j * (phase0 + phase1 * (ppm - 4.65)))
    return axes.fid_from_spectrum(spectrum)


def as_fid(basis, samples):
    return FID(samples, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)


def test_noiseless_recovery_with_phases():
    basis = lorentzian_basis()
    amplitudes = np.array([1.0, 0.4, 0.7, 0.2])
    damping = np.array([1.0, 6.0, 3.0, 9.0])
    shift = np.array([1.5, -2.0, 0.5, 2.5])
    data = synthesize(basis, amplitudes, damping, shift, phase0=0.4, phase1=0.02)
    result = fit_spectra(as_fid(basis, data), basis, CONFIG)
    assert result.batch_shape == ()
    assert bool(result.success)
    np.testing.assert_allclose(result.amplitudes, amplitudes, atol=1e-7)
    np.testing.assert_allclose(result.damping_per_s, damping, atol=1e-5)
    np.testing.assert_allclose(result.shift_hz, shift, atol=1e-5)
    assert float(result.phase0_rad) == pytest.approx(0.4, abs=1e-7)
    assert float(result.phase1_rad_per_ppm) == pytest.approx(0.02, abs=1e-7)
    spectra = fitted_spectra(result, as_fid(basis, data), basis)
    np.testing.assert_allclose(spectra.model + spectra.residual, spectra.data, atol=1e-9)
    np.testing.assert_allclose(spectra.metabolites.sum(axis=0), spectra.model, atol=1e-9)
    assert np.linalg.norm(spectra.residual) < 1e-6 * np.linalg.norm(spectra.data)
    # drawn phase-corrected: the data equal the unphased spectrum built without any phase
    shown = phase_corrected(spectra, result)
    unphased = axes.spectrum(synthesize(basis, amplitudes, damping, shift))
    window = (basis.ppm_axis() >= 0.5) & (basis.ppm_axis() <= 4.0)
    np.testing.assert_allclose(shown.data, unphased[window], atol=1e-9 * np.abs(unphased).max())
    np.testing.assert_allclose(shown.model + shown.residual, shown.data, atol=1e-9)


def test_batch_equals_item_by_item():
    basis = lorentzian_basis()
    rng = np.random.default_rng(3)
    data = np.array(
        [
            synthesize(basis, rng.uniform(0.1, 1, 4), rng.uniform(0, 10, 4), rng.uniform(-2, 2, 4))
            for _ in range(4)
        ]
    )
    batch = fit_spectra(as_fid(basis, data.reshape(2, 2, -1)), basis, CONFIG)
    assert batch.amplitudes.shape == (2, 2, 4)
    # no covariance unless asked for; its pairs' coefficients, and no combined rows (A-D)
    assert batch.amplitude_covariance is None
    assert batch.amplitude_correlations.shape == (2, 2, 6)
    assert batch.combined_crlb_sd.shape == (2, 2, 0)
    single = [fit_spectra(as_fid(basis, d), basis, CONFIG) for d in data]
    # Equal to rounding: the starting values of a batch come from one vectorised computation.
    np.testing.assert_allclose(
        batch.amplitudes.reshape(4, 4), np.array([s.amplitudes for s in single]), rtol=1e-12
    )


def test_baseline_gaussian_and_global_grouping():
    basis = lorentzian_basis()
    amplitudes = np.array([0.9, 0.3, 0.6, 0.5])
    data = synthesize(basis, amplitudes, np.full(4, 4.0), np.full(4, 1.2), phase0=-0.3, gauss=60.0)
    config = FitConfig(ppm_range=(0.5, 4.0), grouping="global", gaussian=True, baseline_order=2)
    problem = make_problem(basis, config)
    coef = np.array([2.0 - 1.0j, 0.5j, -1.0])
    # Add a known baseline over the window; outside it the spectrum is left alone.
    spectrum = axes.spectrum(data)
    spectrum[problem.window] += problem.baseline_design.numpy() @ coef
    result = fit_spectra(as_fid(basis, axes.fid_from_spectrum(spectrum)), basis, config)
    np.testing.assert_allclose(result.amplitudes, amplitudes, atol=1e-6)
    np.testing.assert_allclose(result.baseline, coef, atol=1e-5)
    assert float(result.gauss_per_s2) == pytest.approx(60.0, abs=1e-3)
    np.testing.assert_allclose(result.damping_per_s, 4.0, atol=1e-4)
    np.testing.assert_allclose(result.shift_hz, 1.2, atol=1e-5)


def test_start_is_used_and_zero_amplitude_has_infinite_percent():
    basis = lorentzian_basis()
    amplitudes = np.array([1.0, 0.0, 0.7, 0.2])
    damping, shift = np.array([2.0, 3.0, 4.0, 5.0]), np.array([0.5, 0.0, -0.5, 1.0])
    data = synthesize(basis, amplitudes, damping, shift)
    rng = np.random.default_rng(0)
    noisy = data + 0.05 * (rng.standard_normal(data.size) + 1j * rng.standard_normal(data.size))
    start = FitStart(damping_per_s=damping, shift_hz=shift, phase0_rad=0.0)
    result = fit_spectra(as_fid(basis, noisy), basis, CONFIG, start=start, covariance=True)
    assert result.amplitudes[0] == pytest.approx(1.0, abs=0.05)
    zero = result.amplitudes == 0
    assert np.all(np.isinf(result.crlb_pct[zero]))
    assert np.all(np.isfinite(result.crlb_sd))
    assert np.all(
        result.crlb_pct[~zero]
        == pytest.approx(100 * result.crlb_sd[~zero] / result.amplitudes[~zero])
    )
    cov = result.amplitude_covariance
    expected = np.sqrt(cov[0, 0] + cov[2, 2] + 2 * cov[0, 2])
    assert float(result.crlb_sd_of_sum(["A", "C"])) == pytest.approx(expected)
    assert float(result.amplitude_of_sum(["A", "C"])) == pytest.approx(
        result.amplitudes[0] + result.amplitudes[2]
    )


def test_crlb_matches_monte_carlo_spread_on_a_small_basis():
    """The bound is the spread an efficient estimator reaches: at high SNR the SD of the fitted
    amplitudes over noise draws matches it. 300 draws estimate an SD to about 4% (1/sqrt(2n)),
    so 15% allows for that and for the mild nonlinearity."""
    basis = lorentzian_basis()
    truth = np.array([1.0, 0.6, 0.8, 0.5])
    data = synthesize(basis, truth, np.array([2.0, 4.0, 3.0, 5.0]), np.array([0.5, -1.0, 1.0, 0]))
    sigma_t = 0.02
    rng = np.random.default_rng(42)
    n = 300
    noise = sigma_t * (
        rng.standard_normal((n, data.size)) + 1j * rng.standard_normal((n, data.size))
    )
    config = FitConfig(ppm_range=(0.5, 4.0), continuation_broadening_per_s=(), max_resets=0)
    result = fit_spectra(as_fid(basis, data + noise), basis, config)
    spread = result.amplitudes.std(axis=0, ddof=1)
    bound = result.crlb_sd.mean(axis=0)
    np.testing.assert_allclose(spread / bound, 1.0, atol=0.15)
    # The residual noise estimate is the spectral SD per real part, sigma_t sqrt(N).
    assert result.noise_sd.mean() == pytest.approx(sigma_t * np.sqrt(basis.n_points), rel=0.03)
    assert result.noise_estimate == "residual"
    region = fit_spectra(
        as_fid(basis, data + noise[:20]), basis, replace(config, noise_estimate="region")
    )
    assert region.noise_sd.mean() == pytest.approx(sigma_t * np.sqrt(basis.n_points), rel=0.1)


def test_default_simulator_noiseless_recovery(default_basis_and_signals):
    """Four noiseless spectra of the default simulator (21 metabolites, each with its own
    damping and shift). The global strategy of :mod:`scaloquant.fit.search` reaches the exact
    solution on all of 64 such spectra (seed 0, ``benchmarks/validate_fit_noiseless.py``);
    here all four must be exact to 1e-6 (float64 rounding leaves about 1e-11)."""
    basis, signals = default_basis_and_signals
    result = fit_spectra(as_fid(basis, signals.fids), basis)
    mae = np.abs(result.amplitudes - signals.amplitudes).mean(axis=1)
    assert np.all(mae < 1e-6)
    assert np.all(result.success)


@pytest.fixture(scope="module")
def default_basis_and_signals():
    from scaloquant.io import default_basis
    from scaloquant.simulate import SimulationConfig, simulate_batch

    basis = default_basis()
    return basis, simulate_batch(basis, SimulationConfig(), 4, np.random.default_rng(0))


def test_other_grids_are_converted_or_refused():
    """The basis goes to the data's grid where that is safe, and says what it did: fewer
    points (truncated) or another 0 Hz reference (shifted) give the exact amplitudes; another
    field or nucleus is refused."""
    basis = lorentzian_basis()
    amplitudes = np.array([1.0, 0.4, 0.7, 0.2])
    data = synthesize(basis, amplitudes, np.full(4, 2.0), np.zeros(4))
    good = as_fid(basis, data)
    converted = {
        "truncated 1024 -> 512": replace(good, samples=data[:512]),
        "0 Hz is 4.7 ppm": replace(good, ppm_reference=4.7),
    }
    for words, fid in converted.items():
        result = fit_spectra(fid, basis, CONFIG)
        assert any(words in c for c in result.conversions), result.conversions
        np.testing.assert_allclose(result.amplitudes, amplitudes, atol=1e-6)
    refused = {
        "297.2 MHz": replace(good, spectrometer_freq_mhz=297.2),
        "nucle": replace(good, nucleus="31P"),
    }
    for word, fid in refused.items():
        with pytest.raises(IncompatibleDataError, match=word):
            fit_spectra(fid, basis, CONFIG)


def test_nan_samples_never_reach_the_fit():
    basis = lorentzian_basis()
    data = synthesize(basis, np.ones(4), np.zeros(4), np.zeros(4))
    data[10] = np.nan
    with pytest.raises(InvalidDataError, match="NaN"):
        as_fid(basis, data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ppm_range": (4.0, 0.5)}, "low < high"),
        ({"ppm_range": (0.5, float("nan"))}, "finite"),
        ({"damping_bounds_per_s": (0.0, 50.0), "initial_damping_per_s": 60.0}, "outside"),
        ({"grouping": "pairs"}, "grouping"),
        ({"baseline_order": -1}, "baseline_order"),
        # checked, not dropped, where the baseline's choice would not use it (session 32)
        ({"baseline": "spline", "baseline_order": 1.5}, "whole number"),
        ({"baseline": "spline", "baseline_order": 4}, "degree of the 'poly' baseline"),
        ({"baseline": "none", "baseline_order": 2}, "drop baseline_order"),
        ({"noise_estimate": "edges"}, "noise_estimate"),
        ({"continuation_broadening_per_s": (10.0, 40.0)}, "decreasing"),
        ({"max_iterations": 0}, "max_iterations"),
        ({"solver": "scipy"}, "no longer exists: the fit has one solver"),
        ({"gauss_bounds_per_s2": (-1.0, 10.0)}, ">= 0"),
    ],
)
def test_invalid_config_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        FitConfig(**kwargs)


def test_invalid_ranges_for_the_data():
    basis = lorentzian_basis()
    fid = as_fid(basis, synthesize(basis, np.ones(4), np.zeros(4), np.zeros(4)))
    with pytest.raises(ConfigError, match="not inside the data's ppm axis"):
        fit_spectra(fid, basis, FitConfig(ppm_range=(0.2, 40.0)))
    with pytest.raises(ConfigError, match="too few"):
        fit_spectra(fid, basis, FitConfig(ppm_range=(2.0, 2.1)))
    # one bin, or none: refused as too few, not left to the spline baseline's design
    ppm = basis.ppm_axis()
    step = ppm[1] - ppm[0]
    for lo, hi in (
        (ppm[100] - 0.1 * step, ppm[100] + 0.1 * step),
        (ppm[100] + 0.2 * step, ppm[100] + 0.4 * step),
    ):
        with pytest.raises(ConfigError, match="too few"):
            fit_spectra(fid, basis, replace(CONFIG, ppm_range=(lo, hi), baseline="spline"))
    with pytest.raises(ConfigError, match="noise_ppm_range"):
        fit_spectra(
            fid, basis, replace(CONFIG, noise_estimate="region", noise_ppm_range=(30.0, 31.0))
        )
    with pytest.raises(UnknownMetaboliteError, match="NAA"):
        fit_spectra(fid, basis, replace(CONFIG, grouping=(("A", "NAA"),)))
    with pytest.raises(ConfigError, match="more than one group"):
        fit_spectra(fid, basis, replace(CONFIG, grouping=(("A", "B"), ("B", "C"))))
    with pytest.raises(InvalidDataError, match="shift_hz"):
        fit_spectra(fid, basis, CONFIG, start=FitStart(shift_hz=np.zeros(3)))


def test_config_round_trips_through_plain_values():
    config = FitConfig(grouping=(("Cr", "PCr"),), baseline_order=3, noise_estimate="region")
    assert FitConfig(**config.to_dict()) == config
    assert FitConfig.from_dict(config.to_dict()) == config


def test_settings_of_the_retired_scipy_solver():
    """Older config files and checkpoints name ``solver`` and scipy's stopping rules: with
    ``solver="batched"`` (what every physics-head checkpoint holds) they load as the same
    config; ``"scipy"`` is refused with one line that says what to use instead."""
    plain = FitConfig(grouping="global").to_dict()
    assert "solver" not in plain and "tolerance" not in plain
    old = {**plain, "solver": "batched", "tolerance": 1e-6, "max_evaluations": 100}
    assert FitConfig.from_dict(old) == FitConfig(grouping="global")
    assert FitConfig(solver="batched") == FitConfig()
    with pytest.raises(ConfigError, match="preset 'simulated'") as err:
        FitConfig.from_dict({**plain, "solver": "scipy"})
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="unknown fit setting"):
        FitConfig.from_dict({**plain, "max_nfev": 3})
    assert replace(FitConfig(), grouping="global") == FitConfig(grouping="global")


def test_shift_bounds_follow_the_metabolites_found():
    """Started 6.5 Hz from the truth, the first bounds (start +- 5 Hz) exclude every true shift;
    re-centred on the median shift found after each stage, they let the fit reach it."""
    basis = lorentzian_basis()
    amplitudes = np.array([1.0, 0.5, 0.8, 0.6])
    damping, shift = np.array([2.0, 4.0, 3.0, 5.0]), np.array([2.5, 2.0, 3.0, 2.2])
    data = synthesize(basis, amplitudes, damping, shift)
    start = FitStart(shift_hz=-4.0)
    result = fit_spectra(as_fid(basis, data), basis, CONFIG, start=start)
    np.testing.assert_allclose(result.shift_hz, shift, atol=1e-5)
    np.testing.assert_allclose(result.amplitudes, amplitudes, atol=1e-6)


def test_fitted_spectra_reuse_the_removed_water():
    """With HLSVD water removal the result keeps the water it subtracted, and the fitted
    spectra rebuilt from it equal those rebuilt by decomposing the data again (no second
    HLSVD per spectrum); the water taken out is the 4.7 ppm line added to the data."""
    from scaloquant.fit.config import FIT_PRESETS
    from scaloquant.io import default_basis
    from scaloquant.simulate import InvivoPrior, simulate_invivo_batch

    basis = default_basis()
    signals = simulate_invivo_batch(basis, InvivoPrior(), 2, np.random.default_rng(4))
    t = basis.time_axis_s()
    hz = axes.ppm_to_hz(4.70, basis.spectrometer_freq_mhz, basis.ppm_reference)
    water = 20 * np.abs(signals.fids[:, :1]) * np.exp((-15.0 + 2j * np.pi * hz) * t)
    fid = as_fid(basis, signals.fids + water)
    result = fit_spectra(fid, basis, FIT_PRESETS["invivo"])
    assert result.removed_water is not None and result.removed_water.shape == fid.samples.shape
    # the water line is what was removed, to a small fraction of it
    assert np.abs(result.removed_water - water).max() < 0.05 * np.abs(water).max()
    kept = fitted_spectra(result, fid, basis)
    again = fitted_spectra(replace(result, removed_water=None), fid, basis)
    for name in ("data", "model", "residual", "baseline"):
        np.testing.assert_allclose(getattr(kept, name), getattr(again, name), atol=1e-9)
    plain = fit_spectra(fid, basis, replace(FIT_PRESETS["invivo"], water_removal="none"))
    assert plain.removed_water is None


def test_the_invivo_fit_gives_the_same_numbers_on_one_and_two_threads(fresh_python):
    """``--threads 1`` and ``--threads 2`` (torch's threads and the water removal's) give the
    same result to the bit, water removal included, in an interpreter with the command's
    settings (``MKL_CBWR=AUTO``, read at MKL's first call): until session 30 the removed water
    of spectrum 1 of these two moved by ~1e-13 with torch's threads (torch's eigh), which the
    fit carried to ~1e-6 of some amplitudes."""
    code = """
from scaloquant.threads import prefer_command_settings, torch_threads
prefer_command_settings()
import numpy as np
from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import default_basis
from scaloquant.simulate import InvivoPrior, simulate_invivo_batch
from scaloquant.types import FID

basis = default_basis()
fids = simulate_invivo_batch(basis, InvivoPrior(), 2, np.random.default_rng(0)).fids
fid = FID(fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
results = []
for count in (1, 2):
    with torch_threads(count):
        results.append(fit_spectra(fid, basis, FIT_PRESETS["invivo"]))
names = ("removed_water", "amplitudes", "crlb_sd", "linewidth_hz", "snr", "relative_residual")
print([n for n in names if not np.array_equal(getattr(results[0], n), getattr(results[1], n))])
"""
    done = fresh_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_relative_residual_and_metabolite_fraction_are_those_of_the_rebuilt_model():
    """The fit's checks (``relative_residual``, ``metabolite_fraction``: the quality column
    ``fit_residual`` and the baseline check) equal the norms of the spectra rebuilt metabolite
    by metabolite (:func:`fitted_spectra`) to rounding; NaN for an empty spectrum; 0 residual
    on noiseless data of the model."""
    basis = lorentzian_basis()
    amplitudes = np.array([1.0, 0.5, 2.0, 0.3])
    damping, shift = np.array([3.0, 5.0, 4.0, 6.0]), np.array([1.0, -2.0, 0.5, 1.5])
    clean = synthesize(basis, amplitudes, damping, shift)
    rng = np.random.default_rng(2)
    noisy = clean + 0.02 * (rng.standard_normal(clean.size) + 1j * rng.standard_normal(clean.size))
    fid = as_fid(basis, np.stack([clean, noisy, np.zeros_like(clean)]))
    result = fit_spectra(fid, basis, CONFIG)
    spectra = fitted_spectra(result, fid, basis)
    data = np.linalg.norm(spectra.data[:2], axis=-1)
    residual = np.linalg.norm(spectra.residual[:2], axis=-1) / data
    fraction = np.linalg.norm(spectra.metabolites[:2].sum(axis=-2), axis=-1) / data
    np.testing.assert_allclose(result.relative_residual[:2], residual, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(result.metabolite_fraction[:2], fraction, rtol=1e-12)
    assert result.relative_residual[0] < 1e-6 and result.relative_residual[1] > 1e-3
    assert np.isnan(result.relative_residual[2]) and np.isnan(result.metabolite_fraction[2])


def test_residual_over_noise_is_one_for_the_model_and_grows_with_a_line_it_lacks():
    """``residual_over_noise`` (the quality column): about 1 for noisy data of the fit's own
    model (``sqrt(1 - P / 2K)`` for its ``P`` = 26 real parameters over ``K`` = 110 complex
    points: 0.94; the noise SD from 95 bins and the residual's from 110 scatter the ratio by
    ~7 %), far above it (16-18) with a line at 2.5 ppm that the basis lacks, a tenth of the
    spectrum's amplitude; the residual's SD is that of the rebuilt spectra's residual over the
    window, the noise SD that of the data."""
    from scaloquant.signal.noise import noise_sd, residual_sd

    basis = lorentzian_basis()
    amplitudes = np.array([1.0, 0.5, 2.0, 0.3])
    damping, shift = np.array([3.0, 5.0, 4.0, 6.0]), np.array([1.0, -2.0, 0.5, 1.5])
    clean = synthesize(basis, amplitudes, damping, shift)
    t = basis.time_axis_s()
    extra = 0.4 * np.exp((2j * np.pi * (2.5 - 4.65) * basis.spectrometer_freq_mhz - 12) * t)
    rng = np.random.default_rng(5)
    noise = 0.02 * (
        rng.standard_normal((4, clean.size)) + 1j * rng.standard_normal((4, clean.size))
    )
    fid = as_fid(basis, np.stack([clean, clean, clean + extra, clean + extra]) + noise)
    result = fit_spectra(fid, basis, CONFIG)
    ratio = result.residual_over_noise
    assert ((ratio[:2] > 0.8) & (ratio[:2] < 1.1)).all()
    assert (ratio[2:] > 10).all()
    spectra = fitted_spectra(result, fid, basis)
    sd = noise_sd(fid.samples, basis.dwell_time_s, basis.spectrometer_freq_mhz, 4.65)
    own = residual_sd(spectra.residual) / sd
    np.testing.assert_allclose(ratio, own, rtol=1e-9)


def test_derived_outputs_rebuilt_in_chunks_side_by_side_equal_one_chunk(monkeypatch):
    """The outputs derived from the rebuilt spectra (SNR, linewidth, residual checks), rebuilt
    in chunks of ``REBUILD_CHUNK`` spectra side by side on 2 threads, equal those of one chunk
    to the bit: each spectrum's numbers are its own."""
    import scaloquant.fit.spectra as spectra_module
    from scaloquant import threads
    from scaloquant.fit import batched
    from scaloquant.types import BasisSet

    four = lorentzian_basis()  # its first line renamed NAA: the linewidth's singlet
    basis = BasisSet(
        ("NAA", *four.names[1:]),
        four.fids,
        four.dwell_time_s,
        four.spectrometer_freq_mhz,
        four.ppm_reference,
    )
    rng = np.random.default_rng(3)
    samples = []
    for _ in range(5):
        clean = synthesize(
            basis, rng.uniform(0.3, 2.0, 4), rng.uniform(2.0, 6.0, 4), rng.uniform(-2.0, 2.0, 4)
        )
        noise = np.array([1.0, 1j]) @ rng.standard_normal((2, clean.size))
        samples.append(clean + 0.02 * noise)
    fid = as_fid(basis, np.stack(samples))
    monkeypatch.setattr(batched, "available_cpus", lambda: 2)
    with threads.torch_threads(2):
        whole = fit_spectra(fid, basis, CONFIG)
        jobs = []
        original = batched.run_side_by_side

        def spy(chunks, workers=None):
            jobs.append(len(chunks))
            return original(chunks, workers)

        monkeypatch.setattr(batched, "run_side_by_side", spy)
        monkeypatch.setattr(spectra_module, "REBUILD_CHUNK", 2)
        chunked = fit_spectra(fid, basis, CONFIG)
    assert jobs == [3]
    assert np.isfinite(whole.linewidth_hz).all() and np.isfinite(whole.snr).all()
    for name in ("amplitudes", "snr", "linewidth_hz", "relative_residual", "metabolite_fraction"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))


@pytest.mark.parametrize("n", [16, 15])
def test_window_columns_read_the_rolled_fftshifted_spectrum(n):
    """The fitted spectra and the linewidth read their bins through the model's
    ``window_columns`` and ``kernel_window_columns`` with the bins' places in the unshifted FFT
    (``fftshift(arange(n))[bins]``, ``Problem.data_fft_index``): the bins of
    ``fftshift(fft(x))`` (even and odd lengths) and, with a kernel, ``sum_j s_j
    np.roll(fftshift(fft(x)), j)`` at those bins, wrapping around the spectrum's ends, as they
    computed on numpy's shifted spectrum before their transforms moved to the fit's device."""
    import scipy.fft
    import torch

    from scaloquant.physics.model import kernel_window_columns, window_columns

    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, n)) + 1j * rng.standard_normal((3, 2, n))
    # scipy's transform, the one the model's fft takes on a CPU: the same bits
    shifted = np.fft.fftshift(scipy.fft.fft(x), axes=-1)
    bins = np.array([0, 1, n // 2, n - 2, n - 1])
    index = torch.as_tensor(np.fft.fftshift(np.arange(n))[bins])
    got = window_columns(torch.as_tensor(x), index).transpose(-1, -2).numpy()
    np.testing.assert_array_equal(got, shifted[..., bins])
    offsets, kernel = [0, -2, 1], rng.uniform(0.1, 1.0, (3, 3))
    expected = sum(
        kernel[:, i, None, None] * np.roll(shifted, j, axis=-1)[..., bins]
        for i, j in enumerate(offsets)
    )
    got = kernel_window_columns(
        torch.as_tensor(x), index, torch.as_tensor(offsets), torch.as_tensor(kernel)
    )
    np.testing.assert_allclose(got.transpose(-1, -2).numpy(), expected, rtol=0, atol=1e-12)
