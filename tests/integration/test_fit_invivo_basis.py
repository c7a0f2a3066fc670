"""The fit recovers the truth of ``invivo`` spectra simulated on a user's LCModel basis on a
scanner grid, as training renders them (session 27, issue 13: Osprey's basis, 109x smaller per
proton than the embedded one, had its parametric MM and lipids rendered 109x too tall, and the
fit ended at NAA or Cr of 0 on half the spectra)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from _shared import INVIVO
from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.fit.spectra import prepared_on_grid
from scaloquant.io import read_basis
from scaloquant.metabolites import COMBINATIONS, canonical
from scaloquant.simulate.config import BaselineConfig
from scaloquant.simulate.invivo import simulate_invivo_batch
from scaloquant.simulate.prior import InvivoPrior
from scaloquant.types import FID, Acquisition

OSPREY_BASIS = (
    INVIVO / "philips-press-osprey/basis_philips_press35/3T_PRESS_Philips_35ms_noMM.BASIS"
)
#: The grid of the Osprey Philips TE 35 ms spectra (sub-01_PRESS_35_act.nii.gz).
PHILIPS_GRID = Acquisition(
    n_points=2048, dwell_time_s=5e-4, spectrometer_freq_mhz=127.750896, ppm_reference=4.65
)


@pytest.mark.slow
@pytest.mark.skipif(not OSPREY_BASIS.is_file(), reason=f"{OSPREY_BASIS} is absent")
def test_fit_recovers_spectra_simulated_on_the_osprey_basis():
    """Four SNR-100 spectra of the invivo prior (lipids, shifts, phases, the independent draws;
    without water, eddy currents and baseline, which the fit models only approximately) on
    Osprey's basis (its reference corrected to 4.68 ppm, 8192 -> 2048 points, 127.73 ->
    127.75 MHz). The fit's NAA, tCr and tCho are within 10 % of the truth: measured after the
    fix, at most 6.1 % (0.26 mM: tCr 4.25 mM of the broadest spectrum, 0.1 ppm), the others
    within 4.6 %; before it 3 of the 4 were off by 16-29 % in NAA or tCr, one by 54x (NAA
    443 for 8.1 mM)."""
    basis = read_basis(OSPREY_BASIS)
    config = FIT_PRESETS["invivo"]
    on_grid, _, _ = prepared_on_grid(basis, PHILIPS_GRID, config)
    prior = replace(
        InvivoPrior(macromolecules="parametric"),
        snr_range=(100.0, 100.0),
        water_fraction=0.0,
        eddy_fraction=0.0,
        baseline=BaselineConfig(height_range=(0.0, 0.0)),
    )
    signals = simulate_invivo_batch(on_grid, prior, 4, np.random.default_rng(0))
    fid = FID(
        signals.fids,
        PHILIPS_GRID.dwell_time_s,
        PHILIPS_GRID.spectrometer_freq_mhz,
        PHILIPS_GRID.ppm_reference,
    )
    result = fit_spectra(fid, basis, config)
    truth = signals.parameters.concentrations_mm
    names = [canonical(n) for n in on_grid.names]
    for combined in ("NAA", "tCr", "tCho"):
        parts = COMBINATIONS.get(combined, (combined,))
        want = sum(truth[:, names.index(p)] for p in parts if p in names)
        got = result.amplitude_of_sum([n for n in result.names if canonical(n) in parts])
        np.testing.assert_allclose(got, want, rtol=0.10, err_msg=combined)
