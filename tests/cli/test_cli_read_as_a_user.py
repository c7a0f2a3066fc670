"""A fit of a scanner spectrum read as its user reads it (session 29's audit): the summary's
and the report's columns say what results.csv says, the notes and legends say what the code
did, help texts read as sentences, and an option the user gets wrong is one line, not a
traceback. On the spant Philips spectrum of ``../shared`` (skipped, saying so, where absent)."""

from __future__ import annotations

import argparse
import csv
import json
import re

import numpy as np
import pytest

from _shared import CHALLENGE, INVIVO, one_error_line
from scaloquant.cli import build_parser, main
from scaloquant.io import read_fid

SPANT = INVIVO / "philips-press30-spant" / "nifti_spec2nii"
needs_spant = pytest.mark.skipif(
    not (SPANT / "metab.nii.gz").is_file(), reason=f"needs the shared spant spectrum in {SPANT}"
)


@pytest.fixture(scope="module")
def spant_fit(tmp_path_factory):
    """``scaloquant fit`` of the spant spectrum with its water reference and the default
    basis (the data from a Philips scanner: LCModel's parametric MM09-Lip20 replace ``Mac``)."""
    if not (SPANT / "metab.nii.gz").is_file():
        pytest.skip(f"needs the shared spant spectrum in {SPANT}")
    out = tmp_path_factory.mktemp("fit") / "out"
    argv = ["fit", str(SPANT / "metab.nii.gz"), "--water", str(SPANT / "wref.nii.gz")]
    assert main([*argv, "--out", str(out), "--threads", "1"]) == 0
    with open(out / "results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    return out, row, json.loads((out / "results.json").read_text())


def _overview(summary: str) -> dict[str, str]:
    """The one row of summary.md's overview table, by column."""
    lines = summary.split("## Overview", 1)[1].splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| input"))
    names = [c.strip() for c in lines[head].strip("|").split("|")]
    cells = [c.strip() for c in lines[head + 2].strip("|").split("|")]
    return dict(zip(names, cells, strict=True))


@needs_spant
def test_the_summary_shows_the_datas_fwhm_and_the_fits_beside_it(spant_fit):
    """The fit's own FWHM (results.json ``spectra[].fit.fwhm_hz``, 5.96 Hz) had replaced the
    data's (results.csv ``fwhm_hz``, 6.48 Hz) in the summary's and the report's ``fwhm_hz``
    column, beside the data's ``fwhm_ppm``: two figures of one name that disagreed."""
    out, row, results = spant_fit
    cells = _overview((out / "summary.md").read_text())
    fit_fwhm = results["spectra"][0]["fit"]["fwhm_hz"]
    assert abs(float(row["fwhm_hz"]) - fit_fwhm) > 0.1  # the two differ on this spectrum
    assert float(cells["fwhm_hz"]) == pytest.approx(float(row["fwhm_hz"]), abs=0.006)
    assert float(cells["fit_fwhm_hz"]) == pytest.approx(fit_fwhm, abs=0.006)
    assert "<th class='qc'>fit_<wbr>fwhm_<wbr>hz</th>" in (out / "report.html").read_text()


@needs_spant
def test_the_combined_rows_legend_says_their_sd_is_the_fits_covariance(spant_fit):
    """fit's tNAA, tCr, tCho and Glx are its own columns, their CRLB from the covariance of the
    parts (tNAA 5.2 % here, where the parts' SDs in quadrature give 7.6 %); the report's legend
    said every combination's SD adds the parts' in quadrature."""
    out, row, _ = spant_fit
    quadrature = 100 * np.hypot(float(row["NAA_crlb_sd"]), float(row["NAAG_crlb_sd"]))
    assert quadrature / float(row["tNAA"]) > float(row["tNAA_crlb_pct"]) + 1
    cells = _overview((out / "summary.md").read_text())
    assert cells["tNAA"].endswith(f"({float(row['tNAA_crlb_pct']):.0f}%)")
    for page in ("summary.md", "report.html"):
        text = (out / page).read_text()
        assert "covariance of the parts" in text and "quadrature" not in text, page
    assert "(bold)" not in (out / "summary.md").read_text()  # markdown's table has none


@needs_spant
def test_notes_name_lcmodels_parametric_components_as_such(spant_fit):
    """The Philips data get LCModel's parametric MM09-Lip20, not the basis' measured Mac; the
    note called them 'a measured spectrum'."""
    _, _, results = spant_fit
    (note,) = [n for n in results["notes"] if n.startswith("MM09")]
    assert "LCModel's parametric" in note and "measured" not in note


@needs_spant
def test_results_json_says_what_the_combined_and_macromolecule_columns_hold(spant_fit):
    """results.json described tNAA as any amplitude ('tNAA: amplitude on the basis scale') and
    MM09_mM as a concentration from the water reference; tNAA is NAA + NAAG with the CRLB of
    the sum, MM09_mM is always NaN."""
    _, row, results = spant_fit
    columns = results["columns"]
    assert columns["tNAA"].startswith("tNAA = NAA + NAAG (LCModel's combined row)")
    assert "covariance" in columns["tNAA_crlb_sd"] and "covariance" not in columns["NAA_crlb_sd"]
    assert "NaN" in columns["MM09_mM"] and row["MM09_mM"] == "nan"
    assert columns["NAA_mM"].startswith("NAA: concentration in mM")


@needs_spant
def test_fit_facts_say_what_a_physics_head_model_saw(spant_fit):
    """results.json's meaning of ``spectra[].fit.water_near_window`` said a physics-head
    model's is measured on 'the spectrum as read', as the qc flag's meaning did before session
    29: quantify removes the fit's water before the polish (session 28)."""
    _, _, results = spant_fit
    meaning = results["fit_facts"]["water_near_window"]
    assert "less the fit's water removal" in meaning
    assert "the spectrum as read)" not in meaning


@needs_spant
@pytest.mark.parametrize("window", [("10", "12"), ("4.5", "6")])
def test_a_window_without_the_basis_lines_is_one_line(window, tmp_path, capsys):
    """``--ppm-range 10 12`` (inside the data's axis, outside every metabolite) was a traceback
    from the figure of an empty window after a meaningless fit."""
    out = tmp_path / "out"
    argv = ["fit", str(SPANT / "metab.nii.gz"), "--ppm-range", *window, "--out", str(out)]
    assert main(argv) == 2
    line = one_error_line(capsys, "fit")
    assert "holds none of the basis' lines" in line
    assert f"--ppm-range {float(window[0]):g} {float(window[1]):g} holds" in line
    assert not out.exists()


def test_fit_inputs_names_the_window_by_its_config_key():
    """The library job names the config's key, as the config's own checks do; the CLI words
    its flag (the test above)."""
    from dataclasses import replace

    from scaloquant.errors import ConfigError
    from scaloquant.fit.config import FIT_PRESETS
    from scaloquant.io.default import default_basis
    from scaloquant.quantify import Options, fit_inputs

    options = Options(fit_config=replace(FIT_PRESETS["invivo"], ppm_range=(10.0, 12.0)))
    with pytest.raises(ConfigError, match=r"^ppm_range 10 12 holds none of the basis' lines"):
        fit_inputs([], default_basis(), basis_name="default", options=options)


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (["--ppm-range", "10", "12"], "--ppm-range 10 12 holds"),
        (["--config", "fit.yaml"], "ppm_range 10 12 holds"),  # the key the user typed there
    ],
)
def test_the_window_is_refused_before_any_input_is_read(given, said, tmp_path, monkeypatch, capsys):
    """``fit`` checks the window against the basis' lines before it reads the inputs (then
    ``fit_inputs`` checks it again for the library's callers): a refusal that needs only the
    basis does not wait for the files, whether ``--ppm-range`` or ``--config`` set the window.
    The input is no spectrum at all: read, it would be refused for that instead."""
    import scaloquant.quantify

    def read_inputs(*args, **kwargs):
        raise AssertionError("an input was read before the window was checked")

    monkeypatch.setattr(scaloquant.quantify, "read_inputs", read_inputs)
    (tmp_path / "fit.yaml").write_text("ppm_range: [10, 12]\n")
    monkeypatch.chdir(tmp_path)
    spectrum = tmp_path / "not-a-spectrum.txt"
    spectrum.write_text("no numbers here\n")
    out = tmp_path / "out"
    assert main(["fit", str(spectrum), *given, "--out", str(out), "--threads", "1"]) == 2
    one_error_line(capsys, "fit", said)
    assert not out.exists()


@needs_spant
def test_a_window_beyond_4_2_ppm_is_drawn_whole(tmp_path, capsys):
    """The figures were cut at 4.2 ppm whatever the window fitted: ``--ppm-range 0.5 4.5``
    fitted 4.2-4.5 ppm and drew none of it. (And the terminal counts in English: 'fitted 1
    spectra from 1 file(s)' before.)"""
    out = tmp_path / "out"
    argv = ["fit", str(SPANT / "metab.nii.gz"), "--ppm-range", "0.5", "4.5", "--out", str(out)]
    assert main([*argv, "--threads", "1"]) == 0
    assert capsys.readouterr().out.startswith("fitted 1 spectrum from 1 file\n")
    (numbers,) = (out / "figures").glob("*.csv")
    with open(numbers, newline="") as f:
        ppm = np.array([float(r["ppm"]) for r in csv.DictReader(f)])
    assert ppm.max() > 4.45 and ppm.min() < 0.55  # the figure's numbers: the fitted window
    from scaloquant.fit.result import FitSpectra
    from scaloquant.report.figures import plot_fit

    k = ppm.size
    flat = np.linspace(0.0, 1.0, k).astype(complex)
    spectra = FitSpectra(ppm, flat, flat, 0 * flat, 0 * flat, np.zeros((0, k), complex))
    high, low = plot_fit(spectra, title="t", model_label="fit").axes[0].get_xlim()
    assert high == pytest.approx(ppm.max()) and low == pytest.approx(0.2)


@needs_spant
def test_convert_takes_override_header(tmp_path, capsys):
    """``convert --dwell-time-s X --override-header`` was refused with 'add --override-header'
    (the flag was not passed to the reader): a header could not be repaired. And it says how
    many FIDs it wrote in words ('one FID(s)', '(1, 1, 1) FID(s)' before)."""
    out = tmp_path / "fixed.nii.gz"
    argv = ["convert", str(SPANT / "metab.nii.gz"), str(out), "--dwell-time-s", "0.001"]
    assert main(argv) == 2
    assert main([*argv, "--override-header"]) == 0
    assert f"wrote {out}: 1 FID of 1024 points" in capsys.readouterr().out
    assert read_fid(out).dwell_time_s == pytest.approx(0.001)


def _subparser(parser: argparse.ArgumentParser, command: list[str]) -> argparse.ArgumentParser:
    for word in command:
        parser = parser.subcommands[1][word]
    return parser


@pytest.mark.parametrize(
    "command",
    [
        ["fit"],
        ["quantify"],
        ["convert"],
        ["basis", "info"],
        ["basis", "convert"],
        ["simulate"],
        ["scalogram"],
        ["train"],
        ["evaluate"],
        ["reproduce"],
        ["export"],
    ],
)
def test_every_option_is_explained_in_a_sentence(command, capsys):
    """``--help`` of every command: every option has a help text (fit's ``--ppm-range`` and
    ``--lineshape`` had none; train's ``--seed``, ``--batch-size`` and ``--num-nodes`` and
    simulate's ``--lineshape`` until session 31), and the acquisition flags read as English
    (convert's said 'for an INPUT that does not record it that do not record it')."""
    parser = _subparser(build_parser([*command, "--help"]), command)
    silent = [a.option_strings[0] for a in parser.arguments if a.option_strings and not a.help]
    assert not silent, f"{' '.join(command)}: no help for {silent}"
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert "record it that do not record it" not in text


WATER_AS_DATA = CHALLENGE / "datasets_LCModel" / "dataset1.H2O"


@pytest.mark.skipif(not WATER_AS_DATA.is_file(), reason=f"needs the shared {WATER_AS_DATA}")
def test_a_spectrum_with_nothing_to_measure_gets_no_fit_figures(tmp_path):
    """A water reference given as the data, alone: flagged ``water``, NaN estimates, and (the
    fit runs every spectrum of an input none of whose spectra is usable) no fit residual or
    fit flag either: it was ``water;residual_large`` with a fit_residual of 0.96, which the
    column's meaning says fit leaves out."""
    out = tmp_path / "out"
    grid = ["--dwell-time-s", "0.00025", "--spectrometer-freq-mhz", "123.261703"]
    assert main(["fit", str(WATER_AS_DATA), *grid, "--out", str(out), "--threads", "1"]) == 0
    with open(out / "results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["qc"] == "water"
    assert np.isnan(float(row["NAA"])) and np.isnan(float(row["fit_residual"]))
    (spectrum,) = json.loads((out / "results.json").read_text())["spectra"]
    assert all(v is None for v in spectrum["fit"].values())


OSPREY_BASIS = (
    INVIVO / "philips-press-osprey" / "basis_philips_press35" / "3T_PRESS_Philips_35ms_noMM.BASIS"
)


@pytest.mark.skipif(not OSPREY_BASIS.is_file(), reason=f"needs the shared {OSPREY_BASIS}")
def test_basis_info_says_the_reference_the_fit_takes(capsys):
    """Osprey's Philips TE 35 basis puts NAA at 1.978 ppm with 0 Hz at 4.65 ppm; fit takes
    its reference as 4.68 ppm and says so, basis info printed only the file's 4.65."""
    assert main(["basis", "info", str(OSPREY_BASIS)]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("ppm reference:"))
    assert "0 Hz = 4.65 ppm" in lines[at]
    assert "fit: basis reference taken as 4.68 ppm" in lines[at + 1]
    assert main(["basis", "info"]) == 0  # the embedded basis sits where it belongs
    assert "fit: basis reference" not in capsys.readouterr().out


CHALLENGE_RAW = CHALLENGE / "datasets_LCModel" / "dataset1.RAW"


@pytest.mark.skipif(not CHALLENGE_RAW.is_file(), reason=f"needs the shared {CHALLENGE_RAW}")
def test_a_basis_for_another_field_is_refused_naming_the_file(tmp_path, capsys):
    """Of several inputs, the one at 7 T (a header's frequency, here given) is named: the
    fit's own refusal said 'the data: acquired at 297.2 MHz'."""
    out = tmp_path / "out"
    argv = ["fit", str(CHALLENGE_RAW), "--dwell-time-s", "0.00025", "--out", str(out)]
    assert main([*argv, "--spectrometer-freq-mhz", "297.2"]) == 2
    assert "dataset1.RAW: acquired at 297.2 MHz" in one_error_line(capsys, "fit")
    assert not out.exists()
