"""The correlation coefficients of the fit's amplitudes (:meth:`FitResult.pair_correlations`)
and the pairs a run lists (:func:`scaloquant.fit.result.anticorrelated`): known answers on
two nearly identical and two disjoint basis spectra, the coefficients against the covariance
they are read from, and the pairs in ``results.json`` of a ``scaloquant fit`` run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_fit_model import DWELL_S, FREQ_MHZ, N_POINTS

from scaloquant.cli import main
from scaloquant.errors import InvalidDataError
from scaloquant.fit import FitConfig, fit_spectra
from scaloquant.fit.covariance import combined_columns, covariance_pairs
from scaloquant.fit.result import (
    ANTICORRELATION_MAX,
    anticorrelated,
    combined_of,
    correlated_names,
    pair_names,
)
from scaloquant.io import write_basis_npz, write_nifti_mrs
from scaloquant.signal import axes
from scaloquant.types import FID, BasisSet

#: The weight of the small line that tells the second spectrum from the first.
EXTRA = 0.05


def _line(ppm: float, weight: float = 1.0) -> np.ndarray:
    t = np.arange(N_POINTS) * DWELL_S
    hz = axes.ppm_to_hz(ppm, FREQ_MHZ, 4.65)
    return weight * np.exp((2j * np.pi * hz - 3.0) * t)


@pytest.fixture(scope="module")
def basis() -> BasisSet:
    """``A`` a singlet at 2.01 ppm, ``A2`` the same plus a line of 0.05 at 3.9 ppm (nearly
    ``A``), ``B`` and ``C`` singlets at 3.0 and 1.3 ppm (apart from every other line)."""
    fids = np.array([_line(2.01), _line(2.01) + _line(3.9, EXTRA), _line(3.0), _line(1.3)])
    return BasisSet(("A", "A2", "B", "C"), fids, DWELL_S, FREQ_MHZ, 4.65)


@pytest.fixture(scope="module")
def noisy(basis) -> np.ndarray:
    rng = np.random.default_rng(0)
    data = np.array([0.5, 0.5, 1.0, 1.0]) @ basis.fids
    return data + 0.01 * (rng.normal(size=(4, N_POINTS)) + 1j * rng.normal(size=(4, N_POINTS)))


@pytest.fixture(scope="module")
def result(basis, noisy):
    fid = FID(noisy, DWELL_S, FREQ_MHZ, 4.65)
    return fit_spectra(fid, basis, FitConfig(ppm_range=(0.5, 4.0)))


def test_nearly_identical_spectra_correlate_near_minus_one_disjoint_near_zero(result):
    """Of the linear model alone, two columns at angle ``theta`` give estimates correlated at
    ``-cos(theta)``: ``A`` and ``A2`` share all of ``A``'s line and ``A2`` adds a disjoint
    one of ``EXTRA`` its weight, ``cos(theta) = 1 / sqrt(1 + EXTRA^2)`` = 0.99875; the fit's
    nonlinear parameters (per-metabolite damping and shift, phases) change it by less than 0.005
    (-0.9980 to -0.9987 over four noise draws). Lines apart correlate only through those shared
    parameters and the Lorentzian tails: within 0.05 of 0 (0.022 at most seen)."""
    r = result.pair_correlations()  # (4, 6)
    pairs = pair_names(result.names)
    near = pairs.index(("A", "A2"))
    np.testing.assert_allclose(r[:, near], -1 / np.sqrt(1 + EXTRA**2), atol=0.005)
    apart = [j for j, p in enumerate(pairs) if j != near]
    assert np.abs(r[:, apart]).max() < 0.05
    listed = anticorrelated(r, result.names)
    assert [list(p) for p in listed] == [["A+A2"]] * 4


def test_what_the_fit_keeps_is_what_its_covariance_gives(basis, noisy):
    """By default the fit keeps, of its amplitudes' covariance bound, what its outputs read
    (the combined rows' SDs, every pair's coefficient, read chunk by chunk) in place of the
    bound: the numbers the kept bound (``covariance=True``) gives, to the bit, also for pairs
    asked in another order and with a name the fit lacks; the bound of a sum that is no
    combined row asks for the bound."""
    named = BasisSet(("Cr", "PCr", "NAA", "Glu"), basis.fids, DWELL_S, FREQ_MHZ, 4.65)
    fid = FID(noisy, DWELL_S, FREQ_MHZ, 4.65)
    config = FitConfig(ppm_range=(0.5, 4.0))
    kept = fit_spectra(fid, named, config)
    full = fit_spectra(fid, named, config, covariance=True)
    cov = full.amplitude_covariance
    assert kept.amplitude_covariance is None and cov.shape == (4, 4, 4)
    np.testing.assert_array_equal(kept.amplitudes, full.amplitudes)
    names, total, sd = combined_columns(full.amplitudes, cov, full.names)
    assert combined_of(kept)[0] == names == ("tNAA", "tCr", "Glx")
    np.testing.assert_array_equal(combined_of(kept)[1], total)
    np.testing.assert_array_equal(kept.combined_crlb_sd, sd)
    np.testing.assert_array_equal(kept.amplitude_correlations, covariance_pairs(cov))
    order = ("Glu", "X", "PCr", "Cr")
    take = np.array([3, -1, 1, 0])
    np.testing.assert_array_equal(kept.pair_correlations(order), covariance_pairs(cov, take))
    np.testing.assert_array_equal(kept.crlb_sd_of_sum(["PCr", "Cr"]), sd[:, 1])
    np.testing.assert_array_equal(kept.crlb_sd_of_sum(["NAA"]), kept.crlb_sd[:, 2])
    np.testing.assert_array_equal(full.crlb_sd_of_sum(["Cr", "PCr"]), sd[:, 1])
    with pytest.raises(InvalidDataError, match="covariance=True"):
        kept.crlb_sd_of_sum(["Cr", "NAA"])


def test_pair_correlations_are_the_covariances_scaled(basis, noisy):
    fid = FID(noisy, DWELL_S, FREQ_MHZ, 4.65)
    result = fit_spectra(fid, basis, FitConfig(ppm_range=(0.5, 4.0)), covariance=True)
    cov = result.amplitude_covariance
    sd = np.sqrt(np.einsum("...ii->...i", cov))
    want = cov / (sd[..., :, None] * sd[..., None, :])
    i, j = np.triu_indices(4, 1)
    np.testing.assert_allclose(result.pair_correlations(), want[:, i, j], rtol=1e-12)
    # in other names' order: a name the fit lacks gives NaN pairs
    got = result.pair_correlations(("B", "X", "A"))
    np.testing.assert_allclose(got[:, 1], want[:, 2, 0], rtol=1e-12)  # B, A
    assert np.isnan(got[:, [0, 2]]).all()


def test_anticorrelated_lists_the_pairs_at_or_below_most_negative_first():
    names = ("A", "B", "C")  # pairs A+B, A+C, B+C
    r = np.array([[-0.6, ANTICORRELATION_MAX, -0.9], [0.2, -0.1, 0.0], [np.nan] * 3])
    got = anticorrelated(r, names)
    assert got[0] == {"B+C": -0.9, "A+B": -0.6, "A+C": ANTICORRELATION_MAX}
    assert list(got[0]) == ["B+C", "A+B", "A+C"]
    assert got[1] == {} and got[2] is None  # none below; not fitted
    assert anticorrelated(r, names, threshold=-0.7)[0] == {"B+C": -0.9}
    assert correlated_names(3) == 3 and correlated_names(0) == 1
    with pytest.raises(InvalidDataError, match="not those of pairs"):
        correlated_names(4)
    with pytest.raises(InvalidDataError, match="for the 6 pairs of 4 names"):
        anticorrelated(r, (*names, "D"))


def _fit_run(basis, samples, tmp_path, *flags: str):
    """``scaloquant fit`` (exit 0 asserted) of ``samples`` ``(x, y, z, n_points)`` written as
    NIfTI-MRS with ``basis`` as a .npz, the per-metabolite preset over 0.5-4.0 ppm and
    ``flags``; returns the output folder."""
    basis_path = write_basis_npz(tmp_path / "basis.npz", basis)
    data = write_nifti_mrs(tmp_path / "data.nii.gz", FID(samples, DWELL_S, FREQ_MHZ, 4.65))
    out = tmp_path / "out"
    argv = ["fit", str(data), "--basis", str(basis_path), "--out", str(out)]
    assert main([*argv, "--preset", "simulated", "--ppm-range", "0.5", "4.0", *flags]) == 0
    return out


def test_the_pairs_are_in_results_json_of_a_fit_run(basis, noisy, tmp_path):
    """``scaloquant fit`` of the four spectra: each lists ``A+A2`` (and nothing else) under
    ``spectra[].fit.anticorrelated``, as the library's fit gives it to 3 decimals, and a note
    names the pair and what to read."""
    out = _fit_run(basis, noisy.reshape(4, 1, 1, -1), tmp_path, "--max-figures", "0")
    doc = json.loads((out / "results.json").read_text())
    listed = [s["fit"]["anticorrelated"] for s in doc["spectra"]]
    assert [list(p) for p in listed] == [["A+A2"]] * 4
    assert all(-1.0 <= p["A+A2"] < -0.99 for p in listed)
    assert "anticorrelated" in doc["fit_facts"]
    said = [n for n in doc["notes"] if n.startswith("metabolites the fit cannot tell apart")]
    assert len(said) == 1 and said[0].endswith(
        ": A and A2 correlate at -1.00 in 4 of the 4 fitted spectra: read their sum"
    ), said


def test_the_note_of_one_spectrum_gives_no_median_and_no_count(basis, noisy, tmp_path):
    """Of a run of one spectrum the note gives its coefficient, not "the median" "in 1 of 1
    spectrum" (audit33: every single-voxel fit said so)."""
    out = _fit_run(basis, noisy[0].reshape(1, 1, 1, -1), tmp_path, "--max-figures", "0")
    notes = json.loads((out / "results.json").read_text())["notes"]
    said = [n for n in notes if n.startswith("metabolites the fit cannot tell apart")]
    assert said == [
        "metabolites the fit cannot tell apart (the correlation of their estimates -0.5 or "
        "below; per spectrum in results.json spectra[].fit.anticorrelated): A and A2 correlate "
        "at -1.00: read their sum"
    ], said


def test_a_fit_of_voxels_prints_the_pairs_and_figures_notes_it_holds(
    basis, noisy, tmp_path, capsys
):
    """``scaloquant fit`` of four voxels: the terminal prints the run's notes on the pairs the
    fit cannot tell apart and on the voxels drawn, as results.json holds them, in that order."""
    out = _fit_run(basis, noisy.reshape(4, 1, 1, -1), tmp_path, "--mrsi-figures", "2")
    printed = capsys.readouterr().out.splitlines()
    notes = json.loads((out / "results.json").read_text())["notes"]
    shown = [line for line in printed if line in notes]
    assert len(shown) == 2, printed
    assert shown[0].startswith("metabolites the fit cannot tell apart")
    assert shown[1].startswith("fit figures drawn for 2 of 4 voxels of data.nii.gz")
