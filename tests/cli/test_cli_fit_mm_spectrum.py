"""``scaloquant fit --mm-spectrum``: a measured (metabolite-nulled) macromolecule spectrum as
the fit's macromolecules (:mod:`scaloquant.fit.measured_mm`)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from _shared import INVIVO, one_error_line
from scaloquant.cli import main
from scaloquant.io import default_basis, write_lcmodel_raw, write_nifti_mrs
from scaloquant.simulate import SimulationConfig, simulate_batch
from scaloquant.types import FID

OSPREY_MM = INVIVO / "philips-press-osprey" / "nifti" / "UnEdited_with_MM_data"


@pytest.fixture(scope="module")
def basis():
    return default_basis()


@pytest.fixture(scope="module")
def files(basis, tmp_path_factory):
    """A spectrum (.RAW) and a 'metabolite-nulled' one (NIfTI-MRS) on the basis' grid."""
    root = tmp_path_factory.mktemp("mm")
    fids = simulate_batch(basis, SimulationConfig(), 2, np.random.default_rng(5)).fids
    grid = dict(
        dwell_time_s=basis.dwell_time_s,
        spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
        ppm_reference=basis.ppm_reference,
    )
    data = write_lcmodel_raw(root / "s.RAW", FID(samples=fids[0], **grid), name="s")
    mm = write_nifti_mrs(root / "mm.nii.gz", FID(samples=fids[1].reshape(1, 1, 1, -1), **grid))
    seven_t = write_nifti_mrs(
        root / "mm7t.nii.gz",
        FID(samples=fids[1].reshape(1, 1, 1, -1), **{**grid, "spectrometer_freq_mhz": 297.2}),
    )
    return data, mm, seven_t


@pytest.mark.parametrize("mm", ["parametric", "none"])
def test_an_mm_spectrum_with_mm_parametric_or_none_is_refused(files, tmp_path, capsys, mm):
    """The measured spectrum is the fit's macromolecules: with --mm parametric (LCModel's
    instead) or none (no macromolecules) one of the two would be ignored."""
    data, mm_file, _ = files
    out = tmp_path / "out"
    args = ["fit", str(data), "--mm-spectrum", str(mm_file), "--mm", mm, "--out", str(out)]
    assert main(args) == 2
    assert "--mm-spectrum" in one_error_line(capsys, "fit")
    assert not out.exists()


def test_a_config_files_parametric_macromolecules_with_an_mm_spectrum_is_refused(
    files, tmp_path, capsys
):
    data, mm_file, _ = files
    config = tmp_path / "fit.toml"
    config.write_text('macromolecules = "parametric"\n')
    out = tmp_path / "out"
    args = ["fit", str(data), "--mm-spectrum", str(mm_file), "--config", str(config)]
    assert main([*args, "--out", str(out)]) == 2
    line = one_error_line(capsys, "fit")
    assert "macromolecules 'parametric' asks for parametric instead" in line
    assert "macromolecules=" not in line
    assert not out.exists()


def test_mm_spectra_neither_one_nor_one_per_input_are_refused(files, tmp_path, capsys):
    data, mm_file, _ = files
    out = tmp_path / "out"
    args = ["fit", str(data), "--mm-spectrum", str(mm_file), "--mm-spectrum", str(mm_file)]
    assert main([*args, "--out", str(out)]) == 2
    assert "2 --mm-spectrum files for 1 input;" in one_error_line(capsys, "fit")
    assert not out.exists()


def test_an_mm_spectrum_of_another_field_is_refused(files, tmp_path, capsys):
    """Checked like a water reference: another scanner's file is another session's."""
    data, _, seven_t = files
    out = tmp_path / "out"
    assert main(["fit", str(data), "--mm-spectrum", str(seven_t), "--out", str(out)]) == 2
    line = one_error_line(capsys, "fit")
    assert "the MM spectrum mm7t.nii.gz was acquired at 297.2 MHz" in line
    assert "--mm-spectrum" in line
    assert not out.exists()


def test_a_missing_mm_spectrum_is_refused_before_any_work(files, tmp_path, capsys):
    data, _, _ = files
    out = tmp_path / "out"
    missing = tmp_path / "nope.nii.gz"
    assert main(["fit", str(data), "--mm-spectrum", str(missing), "--out", str(out)]) == 2
    assert "does not exist" in one_error_line(capsys, "fit")
    assert not out.exists()


@pytest.mark.skipif(not OSPREY_MM.is_dir(), reason=f"{OSPREY_MM} is absent (../shared)")
@pytest.mark.parametrize("water", ["PRESS_raw-ref", "PRESS-Inverted_TI-600_raw-ref"])
def test_a_water_reference_given_as_the_mm_spectrum_is_refused(tmp_path, capsys, water):
    """The water reference (the metabolite scan's or the inverted scan's, both in Osprey's
    folder beside the MM spectrum) given to --mm-spectrum by mistake: its water peak is
    981-1318x the tallest metabolite peak where the MM spectra's residual water is 16-42x
    (audit33); it was cleaned into an MM_measured with residual_over_noise 1.23 and no word."""
    data = OSPREY_MM / "sub-01_ses-01_PRESS_raw-act_noID.nii.gz"
    wrong = OSPREY_MM / f"sub-01_ses-01_{water}_noID.nii.gz"
    out = tmp_path / "out"
    assert main(["fit", str(data), "--mm-spectrum", str(wrong), "--out", str(out)]) == 2
    line = one_error_line(capsys, "fit", f"the MM spectrum {wrong.name} looks like water")
    assert "--mm-spectrum" in line and "--water" in line
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(not OSPREY_MM.is_dir(), reason=f"{OSPREY_MM} is absent (../shared)")
def test_a_four_column_text_mm_spectrum_is_read_by_its_signal_columns(tmp_path):
    """A 4-column text MM spectrum (its signal, then its water reference) is fitted by its signal
    columns, as a 2-column file of them: the same results.csv. Before, it was read as a water
    reference is, by its water columns (audit33)."""
    from scaloquant.io import read_fid

    data = OSPREY_MM / "sub-01_ses-01_PRESS_raw-act_noID.nii.gz"
    fids = [
        read_fid(OSPREY_MM / f"sub-01_ses-01_PRESS-Inverted_TI-600_raw-{kind}_noID.nii.gz")
        for kind in ("act", "ref")
    ]
    # the text files hold the conjugate of the internal convention (scaloquant.io.text)
    mm, water = (np.conj(f.samples.reshape(-1, f.n_points).mean(0)) for f in fids)
    own = read_fid(data)  # the text files take the flags, which must match the data's header
    grid = ["--dwell-time-s", str(own.dwell_time_s)]
    grid += ["--spectrometer-freq-mhz", str(own.spectrometer_freq_mhz)]
    two, four = tmp_path / "mm2.txt", tmp_path / "mm4.txt"
    np.savetxt(two, np.c_[mm.real, mm.imag])
    np.savetxt(four, np.c_[mm.real, mm.imag, water.real, water.imag])
    for text in (two, four):
        args = ["fit", str(data), "--mm-spectrum", str(text), *grid, "--max-figures", "0"]
        assert main([*args, "--out", str(tmp_path / text.stem)]) == 0
    rows = [(tmp_path / name / "results.csv").read_text() for name in ("mm2", "mm4")]
    assert rows[0].replace("mm2.txt", "mm4.txt") == rows[1]


@pytest.mark.skipif(not OSPREY_MM.is_dir(), reason=f"{OSPREY_MM} is absent (../shared)")
def test_a_mirrored_mm_spectrum_is_refused_as_mirrored_not_as_water(tmp_path, capsys):
    """Osprey's sub-01 MM spectrum written conjugated (text files hold the conjugate of the
    internal convention; here the internal samples as they are): mirrored, its lines leave the
    metabolite window (mirror ratio 1.85; 0.54 as stored); the refusal says mirrored and how to
    rewrite it, not water. Since session 35's water measure (the tallest singlet: 95x, under
    the water threshold) only the mirror test catches it: without it, exit 0 and a cleaning fit
    at a phase of 178 deg."""
    from scaloquant.io import read_fid

    data = OSPREY_MM / "sub-01_ses-01_PRESS_raw-act_noID.nii.gz"
    mm = read_fid(OSPREY_MM / "sub-01_ses-01_PRESS-Inverted_TI-600_raw-act_noID.nii.gz")
    own = read_fid(data)
    grid = ["--dwell-time-s", str(own.dwell_time_s)]
    grid += ["--spectrometer-freq-mhz", str(own.spectrometer_freq_mhz)]
    samples = mm.samples.reshape(-1, mm.n_points).mean(0)
    mirrored = tmp_path / "mm.txt"
    np.savetxt(mirrored, np.c_[samples.real, samples.imag])
    out = tmp_path / "out"
    args = ["fit", str(data), "--mm-spectrum", str(mirrored), *grid, "--out", str(out)]
    assert main(args) == 2
    line = one_error_line(capsys, "fit", "the MM spectrum mm.txt looks mirrored")
    assert "--conjugate" in line
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(not OSPREY_MM.is_dir(), reason=f"{OSPREY_MM} is absent (../shared)")
def test_the_metabolite_spectrum_given_as_the_mm_spectrum_is_warned_of(tmp_path, capsys):
    """Osprey's sub-01 metabolite spectrum given to --mm-spectrum as well as the input: its
    cleaning fit finds NAA at 0.23x the MM components (0.28x before the rest lines at 3.8-4.0
    ppm, mmclean33; the subjects' TI 600 ms spectra: 0 and 0.031), and a warning says so on the terminal, in summary.md and in results.json (audit33:
    it ran with residual_over_noise 5.23 in the MM fit and no word)."""
    data = OSPREY_MM / "sub-01_ses-01_PRESS_raw-act_noID.nii.gz"
    out = tmp_path / "out"
    args = ["fit", str(data), "--mm-spectrum", str(data), "--max-figures", "0"]
    assert main([*args, "--out", str(out)]) == 0
    said = f"the MM spectrum {data.name} holds NAA at 0.23x its macromolecules"
    assert said in capsys.readouterr().out
    assert said in (out / "summary.md").read_text()
    (warnings,) = [i["warnings"] for i in json.loads((out / "results.json").read_text())["inputs"]]
    assert [w for w in warnings if w.startswith(said)] == warnings[-1:]


@pytest.mark.slow
@pytest.mark.skipif(not OSPREY_MM.is_dir(), reason=f"{OSPREY_MM} is absent (../shared)")
def test_the_osprey_subjects_with_their_own_mm_spectra(tmp_path, capsys):
    """Osprey's two PRESS TE 30 subjects, each with its metabolite-nulled (TI 600 ms) spectrum,
    in one run: MM_measured replaces LCModel's parametric MM components (the lipids stay),
    results.json records each MM spectrum's cleaning, the conversions say it, and the fit
    figure's curves hold the MM part. The ratios are docs/fit.md's (within issue 12's 20 % of
    LCModel's; benchmarks/bench_invivo_ratios.py)."""
    subjects = ("sub-01", "sub-02")
    inputs = [str(OSPREY_MM / f"{s}_ses-01_PRESS_raw-act_noID.nii.gz") for s in subjects]
    nulled = [OSPREY_MM / f"{s}_ses-01_PRESS-Inverted_TI-600_raw-act_noID.nii.gz" for s in subjects]
    out = tmp_path / "out"
    mm_flags = [x for path in nulled for x in ("--mm-spectrum", str(path))]
    assert main(["fit", *inputs, *mm_flags, "--out", str(out), "--max-figures", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"MM spectrum {nulled[1].name} cleaned by its fit" in printed
    assert "holds NAA at" not in printed
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert "MM_measured" in rows[0] and "Lip13" in rows[0]
    assert not any(c.startswith(("MM09", "MM20", "Mac")) for c in rows[0])
    lcmodel = [{"tNAA": 1.145, "Ins": 0.840}, {"tNAA": 1.052, "Ins": 0.683}]
    for row, want in zip(rows, lcmodel, strict=True):
        assert float(row["MM_measured"]) > 0
        for key, ratio in want.items():
            assert float(row[f"{key}_ratio_tcr"]) == pytest.approx(ratio, rel=0.2), key
    doc = json.loads((out / "results.json").read_text())
    assert [m["inputs"] for m in doc["mm_spectra"]] == [[p.split("/")[-1]] for p in inputs]
    for facts in doc["mm_spectra"]:
        assert facts["basis_name"] == "MM_measured"
        assert 1.0 < facts["residual_over_noise"] < 3.0
        assert {"shift_hz", "phase0_deg", "phase1_deg_per_ppm", "amplitudes"} <= set(facts)
    (curves,) = (out / "figures").glob("*.csv")
    assert "MM_measured" in curves.read_text().splitlines()[0]


def test_one_mm_spectrum_for_all_inputs_is_cleaned_once(basis, files, tmp_path, capsys):
    """One --mm-spectrum for two inputs: one entry in results.json naming both inputs, both
    fitted with MM_measured (--mm basis: without the parametric lipids)."""
    data, mm_file, _ = files
    other = tmp_path / "other" / data.name
    other.parent.mkdir()
    other.write_bytes(data.read_bytes())
    out = tmp_path / "out"
    args = ["fit", str(data), str(other), "--mm-spectrum", str(mm_file), "--mm", "basis"]
    assert main([*args, "--out", str(out), "--max-figures", "0"]) == 0
    doc = json.loads((out / "results.json").read_text())
    (facts,) = doc["mm_spectra"]
    assert len(facts["inputs"]) == 2 and facts["file"] == str(mm_file)
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["MM_measured"] == rows[0]["MM_measured"] for r in rows] == [True, True]
    assert not any(c.startswith(("Lip", "Mac", "MM09")) for c in rows[0])
    assert capsys.readouterr().out.count("cleaned by its fit") == 2  # said for each input


@pytest.mark.slow
@pytest.mark.skipif(not OSPREY_MM.is_dir(), reason=f"{OSPREY_MM} is absent (../shared)")
def test_the_free_form_lineshape_with_an_osprey_subjects_mm_spectrum(tmp_path, capsys):
    """``--lineshape freeform --mm-spectrum`` (exit 2 before session 36: the MM spectrum is
    cleaned with Voigt lines, and the data's fit then convolves every basis spectrum,
    MM_measured and the parametric lipids included, with its kernel): Osprey's sub-01 with its
    TI 600 ms spectrum gives MM_measured beside the lipids, a kernel of weights summing to 1,
    the fit's own NAA linewidth within 20 % of the data's (measured 4.88 against 5.52 Hz), and
    a figure whose components, MM_measured among them, sum with the baseline to its fit
    (each column convolved as the fit's model is). The ratios are within issue 12's 20 % of
    LCModel's (docs/fit.md; measured within 7 %)."""
    data = OSPREY_MM / "sub-01_ses-01_PRESS_raw-act_noID.nii.gz"
    nulled = OSPREY_MM / "sub-01_ses-01_PRESS-Inverted_TI-600_raw-act_noID.nii.gz"
    out = tmp_path / "out"
    args = ["fit", str(data), "--lineshape", "freeform", "--mm-spectrum", str(nulled)]
    assert main([*args, "--out", str(out), "--max-figures", "1"]) == 0
    assert f"MM spectrum {nulled.name} cleaned by its fit" in capsys.readouterr().out
    with open(out / "results.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert float(row["MM_measured"]) > 0 and "Lip09" in row
    assert not any(c.startswith(("MM09", "Mac")) for c in row)
    for key, ratio in {"tNAA": 1.145, "tCho": 0.172, "Glx": 1.090, "Ins": 0.840}.items():
        assert float(row[f"{key}_ratio_tcr"]) == pytest.approx(ratio, rel=0.2), key
    doc = json.loads((out / "results.json").read_text())
    # the MM spectrum's cleaning says it used Voigt lines, not the data fit's kernel
    (facts,) = doc["mm_spectra"]
    assert facts["cleaning"].startswith("fitted with voigt lines")
    (spectrum,) = doc["spectra"]
    weights = np.array(spectrum["fit"]["lineshape_kernel"]["weight"])
    assert weights.size > 1 and weights.sum() == pytest.approx(1.0, abs=1e-6)
    assert weights.max() < 1.0  # a kernel, not the Voigt fit's delta
    assert spectrum["fit"]["fwhm_hz"] == pytest.approx(spectrum["fwhm_hz"], rel=0.2)
    (curves,) = (out / "figures").glob("*.csv")
    with open(curves, newline="") as f:
        table = [r for r in csv.DictReader(f) if r["fit"]]
    parts = [c for c in table[0] if c not in ("ppm", "data", "fit", "baseline", "residual")]
    assert "MM_measured" in parts
    fit = np.array([float(r["fit"]) for r in table])
    summed = np.array([float(r["baseline"]) + sum(float(r[c]) for c in parts) for r in table])
    # the figure's columns are written to 9 significant digits
    assert np.abs(fit - summed).max() < 1e-6 * np.abs(fit).max()
