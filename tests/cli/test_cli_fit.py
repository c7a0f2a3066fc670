"""``scaloquant fit``: the classical fit with the inputs and outputs of ``quantify``."""

from __future__ import annotations

import csv
import json
import re

import nibabel
import numpy as np
import pytest
import torch

from _shared import INVIVO, one_error_line
from scaloquant.cli import main
from scaloquant.io import default_basis, write_lcmodel_raw, write_nifti_mrs
from scaloquant.simulate import SimulationConfig, simulate_batch
from scaloquant.types import FID


@pytest.fixture(scope="module")
def basis():
    return default_basis()


@pytest.fixture(scope="module")
def simulated(basis):
    return simulate_batch(basis, SimulationConfig(), 2, np.random.default_rng(11))


def _fid(basis, samples, **kw):
    grid = dict(
        dwell_time_s=basis.dwell_time_s,
        spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
        ppm_reference=basis.ppm_reference,
    )
    return FID(samples=samples, **{**grid, **kw})


def _rows(out):
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_fit_mrsi_recovers_noiseless_amplitudes_with_the_quantify_layout(
    basis, simulated, tmp_path
):
    path = write_nifti_mrs(
        tmp_path / "mrsi.nii.gz", _fid(basis, simulated.fids.reshape(2, 1, 1, -1))
    )
    out = tmp_path / "out"
    assert (
        main(["fit", str(path), "--out", str(out), "--max-figures", "1", "--preset", "simulated"])
        == 0
    )
    rows = _rows(out)
    assert [r["spectrum"] for r in rows] == ["0,0,0", "1,0,0"]
    assert list(rows[0])[:6] == [
        "file",
        "spectrum",
        "Mac",
        "Mac_crlb_sd",
        "Mac_crlb_pct",
        "Mac_ratio_tcr",
    ]
    fitted = np.array([[float(r[n]) for n in basis.names] for r in rows])
    truth = simulated.amplitudes
    # noiseless spectra of the fit's own model family: the fit's documented accuracy is a mean
    # MAE of about 1e-3 over 100 spectra, with rare local minima; 0.02 leaves room for one
    assert np.mean(np.abs(fitted - truth)) < 0.02
    naa = [float(r["NAA_crlb_pct"]) for r in rows]
    assert all(np.isfinite(naa))
    assert nibabel.load(out / "maps" / "mrsi" / "NAA_crlb_sd.nii.gz").shape == (2, 1, 1)
    # the fit's residual over the noise mapped beside snr and fwhm_hz (session 32, `audit32`)
    ron = np.asarray(nibabel.load(out / "maps" / "mrsi" / "residual_over_noise.nii.gz").dataobj)
    want = [float(r["residual_over_noise"]) for r in rows]
    np.testing.assert_allclose(ron.reshape(-1), want, rtol=1e-6, equal_nan=True)
    assert len(list((out / "figures").glob("*.png"))) == 1
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["command"] == "fit" and len(prov["basis"]["hash"]) == 64
    # the command line as given, options included, so that the run can be retyped
    given = f"scaloquant fit {path} --out {out} --max-figures 1 --preset simulated"
    assert prov["command_line"] == given and "argv" not in prov["options"]
    summary = (out / "summary.md").read_text()
    assert "%SD (CRLB)" in summary and f"- command: `{given}`" in summary
    # the model fitted, not only the command (session 34, `audit34`)
    assert "- fit model: the simulated preset (every setting: provenance.json fit_config)\n" in (
        summary
    )


def test_fit_draws_a_flagged_spectrum_first(basis, tmp_path):
    """With more spectra than --max-figures, the spectra the fit flags are drawn first (the
    misfit and water_near_window notes send the user to their figures), then the highest SNRs:
    before session 32 (`figures32`) the figures were chosen by SNR before the fit, and the
    flagged spectrum of lowest SNR here had none."""
    sim = simulate_batch(basis, SimulationConfig(), 3, np.random.default_rng(11))
    rng = np.random.default_rng(3)
    t = basis.acquisition.time_axis_s()
    hz = (1.3 - basis.ppm_reference) * basis.spectrometer_freq_mhz
    paths = []
    for i, samples in enumerate(sim.fids):
        if i == 0:  # a tenth of the signal and a line at 1.3 ppm that the basis lacks: misfit
            samples = 0.1 * samples
            samples = samples + 0.05 * abs(samples[0]) * np.exp(2j * np.pi * hz * t - t / 0.1)
        samples = samples + 0.002 * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size))
        fid = _fid(basis, samples)
        paths.append(str(write_lcmodel_raw(tmp_path / f"s{i}.RAW", fid, name=f"s{i}")))
    out = tmp_path / "out"
    argv = ["fit", *paths, "--out", str(out), "--preset", "simulated", "--max-figures", "2"]
    assert main([*argv, "--threads", "1"]) == 0
    rows = _rows(out)
    # the 1.3 ppm line stands taller than the tenth's NAA: lipids too (since session 34)
    assert [r["qc"] for r in rows] == ["lipids;misfit", "", ""]
    snr = [float(r["snr"]) for r in rows]
    assert snr[0] < min(snr[1:])  # the flagged one, lowest SNR: drawn first all the same
    drawn = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert drawn == ["s0_0.png", f"s{1 + int(np.argmax(snr[1:]))}_0.png"]
    notes = json.loads((out / "results.json").read_text())["notes"]
    assert (
        "fit figures drawn for 2 of 3 spectra (1 flagged spectrum first, then those of highest "
        "SNR; --max-figures)"
    ) in notes


def test_fit_raw_with_water_reports_mM(basis, simulated, tmp_path):
    raw = write_lcmodel_raw(tmp_path / "s.RAW", _fid(basis, simulated.fids[0]), name="s")
    t = basis.acquisition.time_axis_s()
    write_lcmodel_raw(tmp_path / "s.H2O", _fid(basis, 5e3 * np.exp(-t / 0.05)), name="w")
    out = tmp_path / "out"
    assert main(["fit", str(raw), "--out", str(out), "--max-figures", "0"]) == 0
    row = _rows(out)[0]
    factor = 2 * 29696.6 * np.exp(30 / 160) / 5e3
    assert float(row["Cr_mM"]) == pytest.approx(float(row["Cr"]) * factor, rel=1e-4)
    assert row["Mac_mM"] == "nan"  # macromolecules have no proton count
    # the default model: no note, the outputs as before session 34 (`audit34`)
    notes = json.loads((out / "results.json").read_text())["notes"]
    assert not [n for n in notes if n.startswith("fit model")]


def test_fit_refuses_a_7t_file(basis, simulated, tmp_path, capsys):
    path = write_nifti_mrs(
        tmp_path / "7t.nii.gz", _fid(basis, simulated.fids[0], spectrometer_freq_mhz=297.2)
    )
    out = tmp_path / "out"
    assert main(["fit", str(path), "--out", str(out)]) == 2
    one_error_line(capsys, "fit")
    assert not out.exists()


def test_fit_model_flags_override_preset_and_config_file(tmp_path):
    import argparse

    from scaloquant.cli.fit import fit_config_from_args, model_note, register
    from scaloquant.fit.config import FIT_PRESETS

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    settings = tmp_path / "fit.yaml"
    settings.write_text("baseline_ed_per_ppm: 3.0\nppm_range: [0.5, 4.0]\n")
    groups = tmp_path / "groups.txt"
    groups.write_text("# tNAA and tCr\nNAA, NAAG  # acetyl groups\nCr PCr\n#\n")
    args = parser.parse_args(
        ["fit", "x.RAW", "--out", "o", "--config", str(settings), "--baseline", "poly:3",
         "--groups", str(groups), "--mm", "parametric", "--lineshape", "lorentzian"]
    )  # fmt: skip
    config = fit_config_from_args(args)
    assert config.baseline_kind == "poly"
    assert config.baseline_order == 3 and config.baseline_ed_per_ppm == 3.0
    assert config.ppm_range == (0.5, 4.0) and config.macromolecules == "parametric"
    assert config.grouping == (("NAA", "NAAG"), ("Cr", "PCr"))
    assert config.lineshape_kind == "lorentzian" and not config.gaussian
    # each setting the file and the flags changed, as a config file writes it (`audit34`)
    assert model_note("invivo", config) == (
        "fit model: the invivo preset with ppm_range (0.5, 4.0), grouping NAA NAAG; Cr PCr, "
        "gaussian false, baseline_order 3, lineshape lorentzian, baseline poly, "
        "baseline_ed_per_ppm 3.0, macromolecules parametric (every setting: provenance.json "
        "fit_config)"
    )
    assert model_note("invivo", FIT_PRESETS["invivo"]) is None
    for flag, rule in (("ftest", "region"), ("ftest-nested", "nested")):
        args = parser.parse_args(["fit", "x.RAW", "--out", "o", "--baseline-stiffness", flag])
        config = fit_config_from_args(args)
        assert config.baseline_stiffness == "ftest" and config.baseline_ftest_rule == rule
    args = parser.parse_args(["fit", "x.RAW", "--out", "o", "--baseline-stiffness", "adaptive"])
    config = fit_config_from_args(args)
    assert config.baseline_stiffness == "adaptive"
    assert config.baseline_flexible_ppm_range == (0.2, 4.0)


def test_a_poly_degree_is_replaced_by_the_baseline_flag_and_refused_where_unused(tmp_path, capsys):
    """``--baseline spline``/``none`` replaces a --config file's poly baseline with its degree;
    a degree beside a baseline that does not use it is refused, naming the key, where it was
    dropped without a word (the invivo preset's spline took ``baseline_order: 4``)."""
    import argparse

    from scaloquant.cli import main
    from scaloquant.cli.fit import fit_config_from_args, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    poly = tmp_path / "poly.yaml"
    poly.write_text("baseline: poly\nbaseline_order: 3\n")
    for flag, kind in (("spline", "spline"), ("none", "none")):
        args = parser.parse_args(
            ["fit", "x.RAW", "--out", "o", "--config", str(poly), "--baseline", flag]
        )
        config = fit_config_from_args(args)
        assert config.baseline_kind == kind and config.baseline_order is None
    degree = tmp_path / "degree.yaml"
    degree.write_text("baseline_order: 4\n")
    out = tmp_path / "out"
    data = tmp_path / "x.RAW"  # refused before it is read
    data.write_text("")
    assert main(["fit", str(data), "--config", str(degree), "--out", str(out)]) == 2
    line = one_error_line(capsys, "fit")
    assert "baseline_order 4" in line and "'spline'" in line
    assert not out.exists()


#: A value of each model flag of ``scaloquant fit`` that the ``invivo`` preset does not have.
MODEL_FLAG_SAMPLES = {
    "--lineshape": ["lorentzian"],
    "--groups": ["per_metabolite"],
    "--baseline": ["poly:3"],
    "--baseline-stiffness": ["fixed"],
    "--mm": ["parametric"],
    "--ratio-priors": ["lcmodel"],
    "--ppm-range": ["0.5", "4.0"],
    "--water-removal": ["none"],
    "--device": ["cpu:0"],
}


def test_every_fit_model_flag_reaches_the_fit_config():
    """A model flag is declared in ``register`` and copied into the config in
    ``fit_config_from_args``: one without the other is a flag that does nothing. A new flag of
    the "fit model" group fails here until it has a sample above that changes the config. The
    group's flags are those its section of ``--help`` lists."""
    from scaloquant.cli import build_parser
    from scaloquant.cli.fit import fit_config_from_args
    from scaloquant.fit.config import FIT_PRESETS

    parser = build_parser(["fit"])
    sections = re.split(r"\n(?=\S)", parser.subcommands[1]["fit"].format_help())
    (model,) = [s for s in sections if s.startswith("fit model")]
    flags = set(re.findall(r"^  (--[a-z][a-z0-9-]*)", model, re.M)) - {"--preset", "--config"}
    assert flags == set(MODEL_FLAG_SAMPLES)
    for flag, value in MODEL_FLAG_SAMPLES.items():
        args = parser.parse_args(["fit", "x.RAW", "--out", "o", flag, *value])
        assert fit_config_from_args(args) != FIT_PRESETS["invivo"], flag


def test_groups_takes_every_named_grouping():
    """``--groups NAME`` for each of the fit's named groupings sets ``grouping`` to it (the
    CLI reads the names from :data:`scaloquant.fit.config.GROUPING_NAMES`, one list)."""
    from scaloquant.cli import build_parser
    from scaloquant.cli.fit import fit_config_from_args
    from scaloquant.fit.config import GROUPING_NAMES

    parser = build_parser(["fit"])
    assert "metabolites_and_each_mm" in GROUPING_NAMES
    for name in GROUPING_NAMES:
        args = parser.parse_args(["fit", "x.RAW", "--out", "o", "--groups", name])
        assert fit_config_from_args(args).grouping == name


def test_a_groups_file_saved_with_a_byte_order_mark_reads_as_without(tmp_path):
    """A UTF-8 byte-order mark (Windows editors save one) before a --groups file's first name
    was read as part of it: 'NAA' was refused as not in the basis set (audit34b)."""
    from scaloquant.cli import build_parser
    from scaloquant.cli.fit import fit_config_from_args

    groups = tmp_path / "groups.txt"
    groups.write_bytes(b"\xef\xbb\xbfNAA NAAG\r\nCr, PCr\r\n")
    args = build_parser(["fit"]).parse_args(["fit", "x.RAW", "--out", "o", "--groups", str(groups)])
    assert fit_config_from_args(args).grouping == (("NAA", "NAAG"), ("Cr", "PCr"))


def test_threads_are_checked_and_restored(basis, simulated, tmp_path, capsys):
    """``--threads N`` runs the solver on N torch threads and gives the caller its own back (the
    CLI runs in-process in tests and notebooks); N < 1 is one line and exit 2, nothing written."""
    import torch

    path = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, simulated.fids[0]))
    out = tmp_path / "out"
    assert main(["fit", str(path), "--out", str(out), "--threads", "0"]) == 2
    assert "--threads must be a whole number >= 1" in capsys.readouterr().err
    assert not out.exists()
    before = torch.get_num_threads()
    assert main(["fit", str(path), "--out", str(out), "--threads", "1", "--max-figures", "0"]) == 0
    assert torch.get_num_threads() == before
    assert len(_rows(out)) == 1


def test_fit_writes_its_lineshape_kernel_and_baseline_stiffness(basis, simulated, tmp_path):
    """``results.json`` lists per spectrum what the batched fit chose and measured beyond the
    columns (``spectra[].fit``): its FWHM, baseline stiffness and free-form kernel, equal to
    the library's :class:`~scaloquant.fit.FitResult` of the same fit (offsets on the data's
    grid, ``1 / (N dt)`` Hz per bin, ascending)."""
    from dataclasses import replace

    from scaloquant.fit import fit_spectra
    from scaloquant.fit.config import FIT_PRESETS
    from scaloquant.fit.problem import kernel_offsets

    fid = _fid(basis, simulated.fids[0])
    path = write_nifti_mrs(tmp_path / "one.nii.gz", fid)
    out = tmp_path / "out"
    # One thread on both sides: the CLI's default follows the load average, and another
    # thread count sums the free-form fit in another order (FWHM 2e-6 relative apart).
    flags = ["--lineshape", "freeform", "--max-figures", "0", "--threads", "1"]
    assert main(["fit", str(path), "--out", str(out), *flags]) == 0
    doc = json.loads((out / "results.json").read_text())
    facts = doc["spectra"][0]["fit"]
    assert set(facts) == {
        "fwhm_hz", "baseline_ed_per_ppm", "shift_ppm", "lineshape_kernel", "anticorrelated",
        "water_near_window",
    }  # fmt: skip
    # described whether or not a spectrum has it: window_ppm only with --baseline-stiffness
    # adaptive when it refits a spectrum over LCModel's window
    assert set(doc["fit_facts"]) == set(facts) | {"window_ppm"}
    # each column of the summary's overview is in results.csv or said not to be: the report
    # sent the user to results.csv for fit_fwhm_hz and four more it lacks (session 34, `audit34`)
    summary = (out / "summary.md").read_text()
    header = next(line for line in summary.splitlines() if line.startswith("| input |"))
    shown = {c.strip() for c in header.strip("|").split("|")} - {"input"}
    with open(out / "results.csv", newline="") as f:
        in_csv = set(next(csv.reader(f)))
    elsewhere = sorted(shown - in_csv)
    assert elsewhere == [
        "baseline_ed_per_ppm", "fit_fwhm_hz", "reference_correction_ppm", "shift_ppm",
        "water_near_window",
    ]  # fmt: skip
    sentence = next(line for line in summary.splitlines() if "not in results.csv" in line)
    said = sentence.split(": not in results.csv")[0].rsplit(". ", 1)[-1].split(", ")
    assert sorted(said) == elsewhere
    assert "fit_fwhm_hz, baseline_ed_per_ppm" in (out / "report.html").read_text()
    # what a flag changed in the model, in the outputs (session 34, `audit34`)
    want = "fit model: the invivo preset with lineshape freeform (every setting: provenance.json "
    assert f"{want}fit_config)" in doc["notes"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = fit_spectra(fid, basis, replace(FIT_PRESETS["invivo"], lineshape="freeform"))
    finally:
        torch.set_num_threads(threads)
    kernel = result.lineshape_kernel.reshape(-1)
    offsets = np.array(kernel_offsets((kernel.size - 1) // 2))
    order = np.argsort(offsets)
    bin_hz = 1 / (basis.n_points * basis.dwell_time_s)
    np.testing.assert_allclose(facts["lineshape_kernel"]["offset_hz"], offsets[order] * bin_hz)
    np.testing.assert_allclose(facts["lineshape_kernel"]["weight"], kernel[order], atol=1e-6)
    assert sum(facts["lineshape_kernel"]["weight"]) == pytest.approx(1.0)
    assert facts["fwhm_hz"] == pytest.approx(float(result.linewidth_hz.reshape(-1)[0]), rel=1e-6)
    assert facts["baseline_ed_per_ppm"] == 2.0
    # where the fit put the singlets: the median of NAA's, Cr's, PCr's, GPC's and PCho's shifts
    shifts = [
        result.shift_hz.reshape(-1)[result.index(n)] for n in ("NAA", "Cr", "PCr", "GPC", "PCho")
    ]
    assert facts["shift_ppm"] == pytest.approx(np.median(shifts) / basis.spectrometer_freq_mhz)


def test_fit_facts_of_an_unusable_spectrum_are_blank(basis, simulated, tmp_path):
    """An all-zero FID beside a good one: its estimates are NaN, and so are its fitted FWHM,
    baseline stiffness and kernel weights (``null`` in results.json; a number there would be
    a fit of nothing), while the good spectrum's stay and the kernel's offsets are kept."""
    samples = np.stack([simulated.fids[0], np.zeros_like(simulated.fids[0])])
    path = write_nifti_mrs(tmp_path / "two.nii.gz", _fid(basis, samples))
    out = tmp_path / "out"
    # One thread on both sides: the CLI's default follows the load average, and another
    # thread count sums the free-form fit in another order (FWHM 2e-6 relative apart).
    flags = ["--lineshape", "freeform", "--max-figures", "0", "--threads", "1"]
    assert main(["fit", str(path), "--out", str(out), *flags]) == 0
    good, empty = json.loads((out / "results.json").read_text())["spectra"]
    assert "empty" in empty["qc"]
    assert empty["fit"]["fwhm_hz"] is None and empty["fit"]["baseline_ed_per_ppm"] is None
    assert all(w is None for w in empty["fit"]["lineshape_kernel"]["weight"])
    assert (
        empty["fit"]["lineshape_kernel"]["offset_hz"]
        == good["fit"]["lineshape_kernel"]["offset_hz"]
    )
    assert good["fit"]["fwhm_hz"] > 0 and good["fit"]["baseline_ed_per_ppm"] == 2.0
    assert sum(good["fit"]["lineshape_kernel"]["weight"]) == pytest.approx(1.0)


def test_fit_draws_a_subset_of_water_removed_spectra(basis, simulated, tmp_path):
    """The in-vivo default removes water by HLSVD; figures of fewer spectra than were fitted
    rebuild them from the removed water of those spectra only (a 1024-spectrum slice with 16
    figures failed there once)."""
    samples = np.stack([simulated.fids[0], simulated.fids[1], simulated.fids[0]])
    path = write_nifti_mrs(tmp_path / "three.nii.gz", _fid(basis, samples))
    out = tmp_path / "out"
    assert main(["fit", str(path), "--out", str(out), "--max-figures", "1"]) == 0
    assert len(_rows(out)) == 3
    assert len(list((out / "figures").glob("*.png"))) >= 1


def test_fit_of_an_mrsi_slice_draws_representative_voxels(basis, tmp_path):
    """An MRSI input draws ``--mrsi-figures`` voxels at evenly spaced ranks of the fit residual
    (best, median, worst for 3), not the largest signals, and says so in the terminal, the
    summary and the report; the maps are drawn for every voxel as before; ``--max-figures``
    still caps it."""
    from scaloquant.quantify.figures import representative_voxels

    signals = simulate_batch(basis, SimulationConfig(), 9, np.random.default_rng(3)).fids
    path = write_nifti_mrs(tmp_path / "slice.nii.gz", _fid(basis, signals.reshape(3, 3, 1, -1)))
    out = tmp_path / "out"
    flags = ["--preset", "simulated", "--mrsi-figures", "3"]
    assert main(["fit", str(path), "--out", str(out), *flags]) == 0
    rows = _rows(out)
    residual = np.array([float(r["fit_residual"]) for r in rows])
    order = np.argsort(residual)
    want = sorted(order[[0, 4, 8]])  # best, median, worst of 9
    assert sorted(representative_voxels(residual, np.ones(9, bool), 3)) == want
    labels = [rows[j]["spectrum"].replace(",", "-") for j in want]
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == sorted(
        f"slice_{label}.png" for label in labels
    )
    summary = (out / "summary.md").read_text()
    assert "fit figures drawn for 3 of 9 voxels of slice.nii.gz" in summary
    assert "--mrsi-figures N for more" in (out / "report.html").read_text()
    out2 = tmp_path / "out2"
    assert main(["fit", str(path), "--out", str(out2), *flags, "--max-figures", "1"]) == 0
    assert len(list((out2 / "figures").glob("*.png"))) == 1  # the best fit
    out3 = tmp_path / "out3"
    assert main(["fit", str(path), "--out", str(out3), *flags, "--max-figures", "0"]) == 0
    assert not (out3 / "figures").exists()
    assert (
        "no fit figure drawn for the 9 voxels of slice.nii.gz" in (out3 / "summary.md").read_text()
    )


def test_representative_voxels_skip_unusable_and_unfitted_spectra():
    from scaloquant.quantify.figures import representative_voxels

    residual = np.array([0.5, np.nan, 0.1, 0.3, 0.9, 0.2])
    usable = np.array([True, True, True, True, False, True])
    assert representative_voxels(residual, usable, 3) == [2, 3, 0]  # best, median, worst
    assert representative_voxels(residual, usable, 10) == [2, 5, 3, 0]
    assert representative_voxels(residual, usable, 0) == []
    assert representative_voxels(residual, np.zeros(6, bool), 3) == []


def _same_numbers(got_rows, want_rows):
    """The rows' estimates, CRLB, ratio, residual and qc equal (rtol 1e-9: each spectrum is
    fitted on its own, whatever else its file holds; only rounding may differ)."""
    for got, want in zip(got_rows, want_rows, strict=True):
        assert got["qc"] == want["qc"]
        for col in ("NAA", "tCr", "Glx_crlb_sd", "NAA_ratio_tcr", "fit_residual"):
            np.testing.assert_allclose(float(got[col]), float(want[col]), rtol=1e-9)


def test_fit_leaves_out_the_voxels_with_nothing_to_quantify(basis, simulated, tmp_path):
    """Voxels flagged empty or no_signal before the fit (outside the head) are not fitted:
    NaN estimates, fit residual and fit facts, as before; the other voxels' numbers are those
    of a file without them (each spectrum is fitted on its own, whatever its batch)."""
    rng = np.random.default_rng(6)
    noise = 0.01 * np.abs(simulated.fids[0]).max()
    noise = noise * (rng.standard_normal(basis.n_points) + 1j * rng.standard_normal(basis.n_points))
    zero = np.zeros(basis.n_points, complex)
    samples = np.stack([simulated.fids[0], noise, zero, simulated.fids[1]]).reshape(2, 2, 1, -1)
    mixed = write_nifti_mrs(tmp_path / "mixed.nii.gz", _fid(basis, samples))
    alone = write_nifti_mrs(
        tmp_path / "alone.nii.gz", _fid(basis, simulated.fids.reshape(2, 1, 1, -1))
    )
    flags = ["--max-figures", "0", "--threads", "1"]
    assert main(["fit", str(mixed), "--out", str(tmp_path / "m"), *flags]) == 0
    assert main(["fit", str(alone), "--out", str(tmp_path / "a"), *flags]) == 0
    mixed_rows, alone_rows = _rows(tmp_path / "m"), _rows(tmp_path / "a")
    assert [r["qc"] for r in mixed_rows][1:3] == ["no_signal", "empty"]
    for r in mixed_rows[1:3]:
        assert np.isnan(float(r["NAA"])) and np.isnan(float(r["fit_residual"]))
    _same_numbers([mixed_rows[0], mixed_rows[3]], alone_rows)
    spectra = json.loads((tmp_path / "m" / "results.json").read_text())["spectra"]
    assert spectra[1]["fit"]["fwhm_hz"] is None and spectra[0]["fit"]["fwhm_hz"] > 0


def _nan_at(path, *voxels):
    """``path``, a NIfTI-MRS file, rewritten with a NaN at sample 5 of each of ``voxels`` (an
    ``FID`` refuses NaN samples, so they are put in the written file: a scanner's bad voxel)."""
    img = nibabel.load(path)
    data = np.asanyarray(img.dataobj).copy()
    for voxel in voxels:
        data[(*voxel, 5)] = np.nan
    nibabel.save(nibabel.Nifti2Image(data, img.affine, header=img.header), path)
    return path


def test_fit_leaves_out_an_mrsi_voxel_of_nan_samples_and_names_it(
    basis, simulated, tmp_path, capsys
):
    """One NaN sample in one voxel of an MRSI file (a scanner's failed voxel) no longer refuses
    the file (main refused it whole): that voxel is left out as an empty one (qc empty, NaN
    estimates) and named in the run's warnings; the other voxels' numbers are those of the file
    without it (each spectrum is fitted on its own). A single-voxel file with a NaN sample is
    still refused in one line, as is an MRSI file whose every voxel holds one."""
    fids = simulated.fids
    samples = np.stack([fids[0], fids[0], fids[1]]).reshape(3, 1, 1, -1)
    mixed = _nan_at(write_nifti_mrs(tmp_path / "mixed.nii.gz", _fid(basis, samples)), (1, 0, 0))
    alone = write_nifti_mrs(tmp_path / "alone.nii.gz", _fid(basis, fids.reshape(2, 1, 1, -1)))
    flags = ["--max-figures", "0", "--threads", "1"]
    assert main(["fit", str(mixed), "--out", str(tmp_path / "m"), *flags]) == 0
    assert main(["fit", str(alone), "--out", str(tmp_path / "a"), *flags]) == 0
    mixed_rows, alone_rows = _rows(tmp_path / "m"), _rows(tmp_path / "a")
    assert mixed_rows[1]["qc"] == "empty"
    assert np.isnan(float(mixed_rows[1]["NAA"])) and np.isnan(float(mixed_rows[1]["fit_residual"]))
    _same_numbers([mixed_rows[0], mixed_rows[2]], alone_rows)
    warnings = json.loads((tmp_path / "m" / "results.json").read_text())["inputs"][0]["warnings"]
    assert any("1 of 3 voxels hold NaN/Inf samples (voxel 1,0,0)" in w for w in warnings)
    capsys.readouterr()
    one = write_nifti_mrs(tmp_path / "one.nii.gz", _fid(basis, fids[:1].reshape(1, 1, 1, -1)))
    every = write_nifti_mrs(tmp_path / "every.nii.gz", _fid(basis, samples[:2]))
    for path in (_nan_at(one, (0, 0, 0)), _nan_at(every, (0, 0, 0), (1, 0, 0))):
        out = tmp_path / path.name.split(".")[0]
        assert main(["fit", str(path), "--out", str(out), *flags]) == 2
        assert "NaN/Inf" in one_error_line(capsys, "fit")
        assert not out.exists()


SPANT = INVIVO / "philips-press30-spant"


@pytest.mark.skipif(not SPANT.is_dir(), reason=f"needs the shared spant spectrum in {SPANT}")
def test_fit_figure_numbers_of_a_scanner_spectrum_beside_its_figure(tmp_path):
    """The numbers of each fit figure in a CSV beside it (what LCModel's .coord holds of its
    plot): the spant Philips spectrum (spec2nii's NIfTI-MRS, LCModel's basis of it), its data
    column phase-corrected with NAA's singlet at 2.01 ppm and Cr's at 3.03 (where the scanner
    and LCModel put them), the curves adding up as drawn."""
    out = tmp_path / "out"
    data = SPANT / "nifti_spec2nii" / "metab.nii.gz"
    basis = SPANT / "lcmodel_reference" / "3t.basis"
    assert main(["fit", str(data), "--basis", str(basis), "--out", str(out), "--threads", "1"]) == 0
    (png,) = (out / "figures").glob("*.png")
    numbers = png.with_suffix(".csv")
    with open(numbers, newline="") as f:
        rows = list(csv.reader(f))
    header, values = rows[0], np.array(rows[1:], dtype=float)
    assert header[:5] == ["ppm", "data", "fit", "baseline", "residual"]
    assert {"NAA", "Cr", "PCr", "GPC", "Ins", "MM09", "Lip13"} <= set(header[5:])
    assert "tNAA" not in header  # combined rows have no curve
    col = {name: values[:, k] for k, name in enumerate(header)}
    ppm = col["ppm"]
    assert np.all(np.diff(ppm) < 0) and 0.19 < ppm.min() and ppm.max() < 4.21  # drawn order
    scale = np.abs(col["data"]).max()
    assert np.abs(col["residual"] - (col["data"] - col["fit"])).max() < 1e-6 * scale
    parts = col["baseline"] + values[:, 5:].sum(axis=1)
    assert np.abs(col["fit"] - parts).max() < 1e-6 * scale
    near = (ppm > 1.8) & (ppm < 2.2)  # the data's own NAA singlet, absorption-up
    assert ppm[near][np.argmax(col["data"][near])] == pytest.approx(2.01, abs=0.02)
    assert ppm[np.argmax(col["Cr"])] == pytest.approx(3.03, abs=0.02)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["outputs"]["figure_data"] == [str(numbers.relative_to(out))]
    assert f"]({numbers.relative_to(out)})" in (out / "summary.md").read_text()


SIEMENS = INVIVO / "siemens-press30-suspect" / "nifti" / "SVS_30_rda.nii.gz"
OSPREY_TE35 = INVIVO / "philips-press-osprey" / "nifti" / "UnEdited" / "sub-01_PRESS_35_act.nii.gz"


@pytest.mark.skipif(
    not (SIEMENS.is_file() and OSPREY_TE35.is_file()),
    reason=f"needs the shared Siemens and Osprey spectra in {INVIVO}",
)
def test_inputs_of_two_vendors_are_fitted_with_one_model_or_refused(tmp_path, capsys):
    """One run, one table: with the default basis (a Siemens scanner's, its measured ``Mac``),
    ``--mm auto`` fits a Siemens file with ``Mac`` and a Philips file with LCModel's parametric
    MM09-MM20; the two in one run were a traceback (two column counts in one results table).
    Refused before any fit: one line naming both files and the components that differ, the
    way out (``--mm parametric``), exit 2, no output folder. With it, both in one table."""
    out = tmp_path / "two"
    args = ["fit", str(SIEMENS), str(OSPREY_TE35), "--force", "--threads", "1", "--out", str(out)]
    assert main(args) == 2
    line = one_error_line(capsys, "fit", "SVS_30_rda.nii.gz and sub-01_PRESS_35_act")
    assert "(SVS_30_rda.nii.gz: Mac; sub-01_PRESS_35_act.nii.gz: MM09, MM12, MM14" in line
    assert line.endswith("give --mm parametric to fit every input with the parametric ones")
    assert not out.exists()
    assert main([*args, "--mm", "parametric"]) == 0
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == ["SVS_30_rda.nii.gz", "sub-01_PRESS_35_act.nii.gz"]
    assert "MM09" in rows[0] and "Mac" not in rows[0]
    assert all(float(r["tCr"]) > 0 and 0.8 < float(r["tNAA_ratio_tcr"]) < 2 for r in rows)
