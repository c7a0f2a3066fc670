"""No silent wrong answers (issue 11): ``quantify`` and ``fit`` flag spectra with nothing to
measure and give them NaN estimates, report SNR and linewidth, and check the water reference."""

from __future__ import annotations

import csv
import json
from html import escape as html_escape

import nibabel
import numpy as np
import pytest
from _fids import fid_on_grid

from _shared import CHALLENGE as CHALLENGE_DATA
from _shared import one_error_line
from scaloquant.cli import main
from scaloquant.io import default_basis, write_nifti_mrs
from scaloquant.quantify.results import QC_FLAGS
from scaloquant.signal import quality, snr_fwhm, water_peak
from scaloquant.simulate import SimulationConfig, simulate_batch
from scaloquant.types import FID

CHALLENGE = CHALLENGE_DATA / "datasets_LCModel"
CHALLENGE_GRID = ["--dwell-time-s", "0.00025", "--spectrometer-freq-mhz", "123.261703"]


@pytest.fixture(scope="module")
def basis():
    return default_basis()


@pytest.fixture(scope="module")
def brain(basis):
    """Two simulated spectra with noise at an SNR of about 40 by scaloquant's definition."""
    rng = np.random.default_rng(11)
    fids = simulate_batch(basis, SimulationConfig(), 2, rng).fids
    grid = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    height = snr_fwhm.peak_height(fids, *grid)[:, None]
    sd = height / 40 / np.sqrt(basis.n_points)
    return fids + sd * (rng.standard_normal(fids.shape) + 1j * rng.standard_normal(fids.shape))


_fid = fid_on_grid


def _water(basis, n_points=None, **kw) -> FID:
    n = n_points or basis.n_points
    t = np.arange(n) * basis.dwell_time_s
    return _fid(basis, 1e4 * np.exp(-t / 0.05), **kw)  # a singlet at 0 Hz = 4.65 ppm


def _rows(out):
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def _one_error_line(capsys, command="quantify") -> str:
    return one_error_line(capsys, command)


def test_spectra_with_nothing_to_measure_are_flagged_with_nan(
    tiny_checkpoint, basis, brain, tmp_path, capsys
):
    rng = np.random.default_rng(12)
    noise = rng.standard_normal(basis.n_points) + 1j * rng.standard_normal(basis.n_points)
    samples = np.stack(
        [
            brain[0],
            np.zeros(basis.n_points, complex),
            noise,
            np.conj(brain[1]),  # mirrored
            _water(basis).samples + brain[1],  # an unsuppressed water reference as data
        ]
    ).reshape(1, 5, 1, -1)
    path = write_nifti_mrs(tmp_path / "five.nii.gz", _fid(basis, samples))
    out = tmp_path / "out"
    args = ["quantify", str(path), "--model", str(tiny_checkpoint), "--out", str(out)]
    assert main([*args, "--max-figures", "0"]) == 0
    printed = capsys.readouterr().out
    assert "quality flags (column qc) on 5 spectra" in printed
    # what each flag found means, where users read it: the console, summary.md, report.html
    summary = (out / "summary.md").read_text()
    html = (out / "report.html").read_text()
    for flag in ("empty", "no_signal", "mirrored", "water"):
        meaning = QC_FLAGS[flag]
        assert f"{flag}: {meaning}" in printed
        assert f"{flag}: {meaning}" in summary
        assert html_escape(f"{flag}: {meaning}") in html
    for flag in set(QC_FLAGS) - {"empty", "no_signal", "mirrored", "water"}:
        assert QC_FLAGS[flag] not in printed + summary
    rows = _rows(out)
    assert [r["qc"] for r in rows] == ["", "empty", "no_signal", "no_signal;mirrored", "water"]
    for r in rows[1:]:
        for col in ("NAA", "NAA_sd", "NAA_ratio_tcr", "Cr_ratio_tcr"):
            assert np.isnan(float(r[col])), (r["qc"], col)  # an empty FID gave ratios of 0.5
    assert np.isfinite(float(rows[0]["NAA"])) and float(rows[0]["NAA_ratio_tcr"]) > 0
    assert 20 < float(rows[0]["snr"]) < 80 and 0 < float(rows[0]["fwhm_hz"]) < 20
    assert float(rows[0]["fwhm_ppm"]) == pytest.approx(float(rows[0]["fwhm_hz"]) / 123.2, 1e-3)
    assert np.isnan(float(rows[0]["fit_residual"]))  # no fit without --refine
    doc = json.loads((out / "results.json").read_text())
    assert set(doc["qc_flags"]) >= {"empty", "no_signal", "water", "mirrored", "too_broad"}
    assert [s["qc"] for s in doc["spectra"]][1:] == [
        ["empty"],
        ["no_signal"],
        ["no_signal", "mirrored"],
        ["water"],
    ]
    assert doc["spectra"][1]["snr"] == 0 and "snr" in doc["columns"]
    summary = (out / "summary.md").read_text()
    header = next(line for line in summary.splitlines() if "| snr |" in line)
    assert "| qc |" in header and "| fwhm_hz |" in header
    assert "| empty |" in summary and "| no_signal, mirrored |" in summary
    snr = np.asarray(nibabel.load(out / "maps" / "five" / "snr.nii.gz").dataobj)
    assert snr.shape == (1, 5, 1) and snr[0, 0, 0] == pytest.approx(float(rows[0]["snr"]), 1e-5)
    assert (out / "maps" / "five" / "fwhm_hz.nii.gz").is_file()
    # no fit (no --refine): no map of NaN for the fit's residual over the noise
    assert not (out / "maps" / "five" / "residual_over_noise.nii.gz").exists()


def test_fit_gives_nan_and_a_residual(basis, brain, tmp_path):
    samples = np.stack([brain[0], np.zeros(basis.n_points, complex)]).reshape(2, 1, 1, -1)
    path = write_nifti_mrs(tmp_path / "two.nii.gz", _fid(basis, samples))
    out = tmp_path / "out"
    assert main(["fit", str(path), "--out", str(out), "--max-figures", "1"]) == 0
    rows = _rows(out)
    # the default simulator's spectrum through fit's default (invivo) model, which lacks its
    # per-metabolite lineshapes: a residual 3.7 noise SDs tall (misfit) though 0.40 of the
    # data (below residual_large); the simulator's own model describes it down to its noise
    assert [r["qc"] for r in rows] == ["misfit", "empty"]
    assert float(rows[0]["residual_over_noise"]) > quality.RESIDUAL_OVER_NOISE_MAX
    assert np.isnan(float(rows[1]["residual_over_noise"]))
    assert 0 < float(rows[0]["fit_residual"]) < quality.RESIDUAL_LARGE
    for col in ("NAA", "NAA_crlb_sd", "NAA_crlb_pct", "NAA_ratio_tcr"):
        assert np.isnan(float(rows[1][col]))
    assert len(list((out / "figures").glob("*.png"))) == 1  # the empty one is not drawn
    own = tmp_path / "own"
    argv = ["fit", str(path), "--preset", "simulated", "--out", str(own), "--max-figures", "0"]
    assert main(argv) == 0
    rows = _rows(own)
    assert [r["qc"] for r in rows] == ["", "empty"]
    assert 0.8 < float(rows[0]["residual_over_noise"]) < 1.1


def test_metabolite_file_as_water_is_refused(tiny_checkpoint, basis, brain, tmp_path, capsys):
    data = write_nifti_mrs(tmp_path / "data.nii.gz", _fid(basis, brain[0]))
    out = tmp_path / "out"
    args = ["quantify", str(data), "--model", str(tiny_checkpoint), "--out", str(out)]
    assert main([*args, "--water", str(data)]) == 2
    line = _one_error_line(capsys)
    assert "does not look like water" in line and "--force" in line and not out.exists()
    assert main([*args, "--water", str(data), "--force", "--max-figures", "0"]) == 0
    warnings = json.loads((out / "results.json").read_text())["inputs"][0]["warnings"]
    assert any("does not look like water" in w for w in warnings)


def test_water_of_another_field_is_refused_even_with_force(
    tiny_checkpoint, basis, brain, tmp_path, capsys
):
    data = write_nifti_mrs(tmp_path / "data.nii.gz", _fid(basis, brain[0]))
    water = write_nifti_mrs(tmp_path / "w.nii.gz", _water(basis, spectrometer_freq_mhz=297.2))
    out = tmp_path / "out"
    args = ["quantify", str(data), "--model", str(tiny_checkpoint), "--out", str(out)]
    for extra in ([], ["--force"]):
        assert main([*args, "--water", str(water), *extra]) == 2
        line = _one_error_line(capsys)
        assert "297.2 MHz" in line and "not the same scanner" in line
    assert not out.exists()


def test_water_of_other_points_is_used_and_reported(tiny_checkpoint, basis, brain, tmp_path):
    data = write_nifti_mrs(tmp_path / "data.nii.gz", _fid(basis, brain[0]))
    water = write_nifti_mrs(tmp_path / "w.nii.gz", _water(basis, n_points=1024))
    out = tmp_path / "out"
    args = ["quantify", str(data), "--model", str(tiny_checkpoint), "--out", str(out)]
    assert main([*args, "--water", str(water), "--max-figures", "0"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert any("1024 points" in w for w in doc["inputs"][0]["warnings"])
    water_quality = doc["inputs"][0]["water_reference_quality"]
    assert water_quality["fwhm_hz"] == pytest.approx(1 / (np.pi * 0.05), rel=0.05)
    assert water_quality["water_ratio"] > water_peak.WATER_RATIO
    assert np.isfinite(float(_rows(out)[0]["NAA_mM"]))


@pytest.mark.skipif(
    not CHALLENGE.is_dir(), reason=f"the ISMRM 2016 challenge spectra are not at {CHALLENGE}"
)
def test_challenge_water_as_data_and_data_as_water(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["--model", str(tiny_checkpoint), "--out", str(out), *CHALLENGE_GRID]
    h2o, raw = CHALLENGE / "dataset1.H2O", CHALLENGE / "dataset1.RAW"
    assert main(["quantify", str(h2o), *base, "--max-figures", "0"]) == 0
    row = _rows(out)[0]
    assert row["qc"] == "water" and np.isnan(float(row["NAA"]))
    assert float(row["fwhm_hz"]) == pytest.approx(6.0, abs=1)  # its water peak's
    capsys.readouterr()
    other = tmp_path / "other"
    base[3] = str(other)
    # the metabolite file as its own water gave NAA = 1840 mM and exit 0
    assert main(["quantify", str(raw), *base, "--water", str(raw)]) == 2
    assert "dataset1.RAW does not look like water" in _one_error_line(capsys)
    assert not other.exists()
    assert main(["quantify", str(raw), *base, "--max-figures", "0"]) == 0  # its own .H2O
    row = _rows(other)[0]
    assert row["qc"] == "" and 50 < float(row["snr"]) < 90  # measured 68
    assert "| dataset1.RAW | dataset1.H2O | 6.0 | 0.049 |" in (other / "summary.md").read_text()
    doc = json.loads((other / "results.json").read_text())
    assert doc["inputs"][0]["water_reference_quality"]["fwhm_hz"] == pytest.approx(6.0, abs=1)
