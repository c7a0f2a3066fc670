"""The fit on noisy spectra of the real simulator and default basis: noise estimates and bounds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from scaloquant.fit import fit_spectra, fitted_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import default_basis
from scaloquant.simulate import SimulationConfig, simulate_batch
from scaloquant.types import FID


@pytest.fixture(scope="module")
def noisy():
    basis = default_basis()
    config = SimulationConfig.from_dict({"snr": [30, 30]})
    signals = simulate_batch(basis, config, 3, np.random.default_rng(5))
    fid = FID(signals.fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    return basis, signals, fid


def test_noise_estimates_match_the_simulated_noise(noisy):
    """Both estimates recover the spectral noise SD (time-domain SD x sqrt(N)). The residual
    one has about 500 degrees of freedom (SD error ~3%), the region one about 250 (~5%)."""
    basis, signals, fid = noisy
    expected = signals.parameters["noise_sd"] * np.sqrt(basis.n_points)
    residual = fit_spectra(fid, basis)
    np.testing.assert_allclose(residual.noise_sd, expected, rtol=0.12)
    region = fit_spectra(fid, basis, replace(FIT_PRESETS["simulated"], noise_estimate="region"))
    np.testing.assert_allclose(region.noise_sd, expected, rtol=0.15)
    # The noise region does not change the fit itself, only the bounds' scale: exactly in
    # proportion without priors; with the default's spread priors (information of a fixed
    # weight in noise units, sigma^-2 J^T J + Q) nearly.
    np.testing.assert_array_equal(region.amplitudes, residual.amplitudes)
    ratio = (region.noise_sd / residual.noise_sd)[:, None] * np.ones(basis.n_metabolites)
    np.testing.assert_allclose(region.crlb_sd / residual.crlb_sd, ratio, rtol=1e-2)
    plain = FIT_PRESETS["simulated-plain"]
    residual = fit_spectra(fid, basis, plain)
    region = fit_spectra(fid, basis, replace(plain, noise_estimate="region"))
    np.testing.assert_array_equal(region.amplitudes, residual.amplitudes)
    ratio = (region.noise_sd / residual.noise_sd)[:, None] * np.ones(basis.n_metabolites)
    np.testing.assert_allclose(region.crlb_sd / residual.crlb_sd, ratio, rtol=1e-9)


def test_bounds_are_sane_and_the_model_explains_the_data(noisy):
    basis, signals, fid = noisy
    result = fit_spectra(fid, basis)
    naa = result.index("NAA")
    assert np.all(np.isfinite(result.crlb_sd))
    assert np.all(result.crlb_sd > 0)
    # At SNR 30 the NAA estimate is within 4 bounds of the truth.
    err = np.abs(result.amplitudes[:, naa] - signals.amplitudes[:, naa])
    assert np.all(err < 4 * result.crlb_sd[:, naa])
    spectra = fitted_spectra(result, fid, basis)
    # The residual is noise: its SD per real part equals the estimated noise SD (dof-corrected).
    rms = np.sqrt((np.abs(spectra.residual) ** 2).mean(axis=-1) / 2)
    np.testing.assert_allclose(rms, result.noise_sd, rtol=0.1)
