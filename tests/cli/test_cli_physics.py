"""``scaloquant train --model spectrum_physics`` and ``quantify --model`` with its checkpoint,
in-process with the ``tiny`` preset (a few steps: the outputs and refusals matter here, not the
accuracy; that is measured by ``benchmarks/bench_physics.py``)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
from _fids import fid_on_grid

from _shared import CHALLENGE, INVIVO, ISMRM2016_BASIS, one_error_line
from scaloquant.cli import main
from scaloquant.fit.result import anticorrelated
from scaloquant.io import default_basis, write_nifti_mrs
from scaloquant.models import load_model
from scaloquant.models.physics import PhysicsQuantifier
from scaloquant.quantify.checks import polish_stopped
from scaloquant.signal.noise import residual_over_noise
from scaloquant.signal.water import remove_water
from scaloquant.signal.water_peak import WATER_NEAR_WINDOW_RATIO, water_near_window
from scaloquant.simulate import SimulationConfig, simulate_dataset
from scaloquant.simulate.draws import draw_invivo
from scaloquant.simulate.invivo import render_invivo, simulate_invivo_batch
from scaloquant.simulate.prior import InvivoPrior


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("physics")
    code = main(
        [
            "train",
            "--model",
            "spectrum_physics",
            "--preset",
            "tiny",
            "--out",
            str(out),
            "--seed",
            "3",
        ]
    )
    assert code == 0
    return out / "models" / "spectrum_physics.ckpt"


def _but_misfit(rows: list[dict[str, str]]) -> list[str]:
    """The ``qc`` of each results.csv row less ``misfit``, which must be there exactly where
    ``residual_over_noise`` exceeds 3, and less ``polish_minimum``, there only where it
    exceeds 1 (a misfit beyond the noise needs the residual's SD above the noise's by more than
    its chance excess): the 3-step ``tiny`` model's polish leaves residuals
    several noise SDs tall (its fit does not describe the spectra), which the other checks
    here are not about (``test_a_polish_in_a_worse_minimum_is_fitted_again_or_flagged`` is)."""
    for r in rows:
        flags = r["qc"].split(";")
        assert ("misfit" in flags) == (float(r["residual_over_noise"]) > 3), r
        assert "polish_minimum" not in flags or float(r["residual_over_noise"]) > 1, r
    return [
        ";".join(f for f in r["qc"].split(";") if f not in ("misfit", "polish_minimum"))
        for r in rows
    ]


def test_checkpoint_loads_without_lightning_with_typed_metadata(trained):
    loaded = load_model(trained)
    assert isinstance(loaded.quantifier, PhysicsQuantifier)
    meta = loaded.metadata
    assert meta.quantifier["model"] == "spectrum_physics"
    assert meta.quantifier["fit"]["grouping"] == "metabolites_and_mm"
    assert meta.acquisition["n_points"] == 2048
    assert meta.basis["content_hash"] == default_basis().content_hash()
    assert meta.train_config["seed"] == 3 and meta.training["steps"] == 3
    assert "Lip13" in loaded.quantifier.metabolites
    assert (trained.parent.parent / "train_config.yaml").is_file()


def test_quantify_writes_results_with_crlb_sds(trained, tmp_path):
    basis = default_basis()
    # no residual water: none just above the window either (the next test has some)
    prior = InvivoPrior(water_fraction=0.0)
    signals = simulate_invivo_batch(basis, prior, 2, np.random.default_rng(0))
    path = write_nifti_mrs(tmp_path / "svs.nii.gz", fid_on_grid(basis, signals.fids[0]))
    # an unsuppressed water reference: one line at the reference frequency
    water_fid = 2e4 * np.exp(-8.0 * basis.time_axis_s()).astype(np.complex128)
    water = write_nifti_mrs(tmp_path / "water.nii.gz", fid_on_grid(basis, water_fid))
    out = tmp_path / "out"
    args = ["quantify", str(path), "--water", str(water), "--model", str(trained)]
    # the model's own columns (the spectra its polish leaves to a flexible baseline are fitted
    # again by default: test_quantify_fits_again_where_the_polish_asks_for_a_flexible_baseline)
    assert main([*args, "--out", str(out), "--baseline-stiffness", "fixed"]) == 0
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    for name in ("NAA", "Cr", "Lip13"):
        assert float(rows[0][name]) >= 0
        # the network's own SD and the CRLB of the polished fit, side by side
        for suffix in ("_sd", "_crlb_sd"):
            assert np.isfinite(float(rows[0][f"{name}{suffix}"]))
        # LCModel's %SD: infinite for an amplitude of 0
        assert np.isfinite(float(rows[0][f"{name}_crlb_pct"])) == (float(rows[0][name]) > 0)
    model = load_model(trained).quantifier
    a, crlb_sd, network_sd, residual, fraction = model.predict_with_checks(
        fid_on_grid(basis, signals.fids[0]).samples
    )
    naa = model.metabolites.index("NAA")
    # the final model's relative residual, as the fit's column (was empty for these models)
    assert 0 < residual[0] < 10
    np.testing.assert_allclose(float(rows[0]["fit_residual"]), residual[0], rtol=1e-5)
    # a spectrum of metabolites: neither metabolites-over-data flag
    assert 0.1 < fraction[0] < 2 and _but_misfit(rows) == [""]
    np.testing.assert_allclose(float(rows[0]["NAA_crlb_sd"]), crlb_sd[0, naa], rtol=1e-5)
    np.testing.assert_allclose(float(rows[0]["NAA_sd"]), network_sd[0, naa], rtol=1e-5)
    # molarity for metabolites only: the fit's lipids have no proton count
    assert np.isfinite(float(rows[0]["NAA_mM"]))
    assert np.isnan(float(rows[0]["Lip13_mM"])) and np.isnan(float(rows[0]["Mac_mM"]))
    assert (out / "provenance.json").is_file()


def test_quantify_removes_water_just_above_the_models_window(trained, tmp_path):
    """Residual water just above the model's window makes its estimates err as the fit's would
    without its water removal (docs/history/physics-models-log.md "Residual water near the window
    and the physics-head models (session 19, `water19`)"). The model's ``invivo`` fit settings
    remove water: with a polish (K > 0) every spectrum is quantified less the water that the
    fit's HLSVD removes, as the fit does (session 28); the network alone (K = 0) only a spectrum
    whose ratio exceeds the flag's threshold, the other as it is. results.json lists each ratio
    of the spectra the model saw, and the run's notes say how many were changed and why."""
    basis = default_basis()
    prior = InvivoPrior(
        snr_range=(30.0, 30.0),
        singlet_fwhm_range_ppm=(0.03, 0.06),  # not too_broad
        water_fraction=1.0,
        water_centre_range_ppm=(4.30, 4.35),
        water_height_range=(10.0, 20.0),
    )
    wet = draw_invivo(prior, basis.names, 1, np.random.default_rng(4))
    dry = replace(wet, water_height=np.zeros_like(wet.water_height))
    samples = np.concatenate(
        [render_invivo(basis, p, np.random.default_rng(5)).fids for p in (dry, wet)]
    )
    samples = samples.astype(np.complex64).astype(complex)  # as the file holds them
    path = write_nifti_mrs(
        tmp_path / "mrsi.nii.gz", fid_on_grid(basis, samples.reshape(2, 1, 1, -1))
    )
    quantifier = load_model(trained).quantifier
    assert quantifier.config.fit_config.water_removal == "hlsvd"
    assert quantifier.config.polish_iterations > 0
    top = quantifier.config.fit_config.ppm_range[1]
    grid = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    raw = water_near_window(samples, *grid, top)
    assert raw[0] < WATER_NEAR_WINDOW_RATIO < raw[1]
    dried = remove_water(samples, *grid)
    names = quantifier.metabolites
    # K > 0 (the checkpoint's): both spectra less their water; K = 0: the wet one only
    for k, seen, said in (
        (None, dried, "2 spectra quantified less the water that the fit's HLSVD removes (as the fit, before the polish"),
        (0, np.stack([samples[0], dried[1]]), "1 spectrum quantified less the water that the fit's HLSVD removes (a water_near_window above 3"),
    ):  # fmt: skip
        out = tmp_path / f"out{k}"
        extra = [] if k is None else ["--polish-iterations", str(k)]
        argv = ["quantify", str(path), "--model", str(trained), "--out", str(out), *extra]
        assert main(argv) == 0
        with open(out / "results.json") as f:
            doc = json.load(f)
        got = [s["fit"]["water_near_window"] for s in doc["spectra"]]
        want = water_near_window(seen, *grid, top)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert want[1] < WATER_NEAR_WINDOW_RATIO  # the HLSVD removed it
        with open(out / "results.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert _but_misfit(rows) == ["", ""]
        # as the model quantifies those FIDs itself; to the polish's rounding (its batched
        # products round by the batch and the threads where MKL's reproducible mode, which the
        # command sets before torch loads, is not on: ~1e-7 on the network's output, which the
        # polish can grow: samples perturbed by 1e-7 move its estimates by up to 2.8e-4,
        # session 28, on those of the polish-iterations test below)
        estimates = quantifier.predict_with_checks(seen, polish_iterations=k)[0]
        table = np.array([[float(r[n]) for n in names] for r in rows])
        np.testing.assert_allclose(table, estimates, rtol=1e-3, atol=1e-6)
        as_they_are = quantifier.predict_with_checks(samples, polish_iterations=k)[0]
        assert np.max(np.abs(table[1] - as_they_are[1])) > 10 * 1e-3 * np.max(table[1])
        assert any(note.startswith(f"residual water: {said}") for note in doc["notes"]), doc[
            "notes"
        ]


def test_quantify_mrsi_runs_only_usable_voxels_through_the_model(trained, tmp_path, monkeypatch):
    """As ``fit``: the empty voxel of an MRSI input is not given to the model; its row is NaN
    (estimates, SDs, residual) and flagged, the others are the model's estimates of them."""
    basis = default_basis()
    signals = next(simulate_dataset(basis, SimulationConfig(snr=(50.0, 50.0)), 3, 2)).fids
    samples = np.concatenate([signals[:1], np.zeros_like(signals[:1]), signals[1:]])
    path = write_nifti_mrs(
        tmp_path / "mrsi.nii.gz", fid_on_grid(basis, samples.reshape(4, 1, 1, -1))
    )
    seen: list[int] = []
    original = PhysicsQuantifier.predict_estimates

    def spy(self, fids, **kwargs):
        seen.append(len(fids))
        return original(self, fids, **kwargs)

    monkeypatch.setattr(PhysicsQuantifier, "predict_estimates", spy)
    out = tmp_path / "out"
    argv = ["quantify", str(path), "--model", str(trained), "--out", str(out)]
    assert main([*argv, "--baseline-stiffness", "fixed"]) == 0
    assert seen == [3]
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert _but_misfit(rows) == ["", "empty", "", ""]
    for column in ("NAA", "NAA_sd", "NAA_crlb_sd", "fit_residual"):
        assert np.isnan(float(rows[1][column]))
    monkeypatch.undo()
    # with a polish, the spectra less the water that the fit's HLSVD removes, as the fit
    grid = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    a, crlb_sd, _, residual, _ = load_model(trained).quantifier.predict_with_checks(
        remove_water(np.delete(samples, 1, axis=0), *grid)
    )
    naa = load_model(trained).quantifier.metabolites.index("NAA")
    got = np.array([float(rows[j]["NAA"]) for j in (0, 2, 3)])
    np.testing.assert_allclose(got, a[:, naa], rtol=1e-6)
    got = np.array([float(rows[j]["fit_residual"]) for j in (0, 2, 3)])
    np.testing.assert_allclose(got, residual, rtol=1e-6)


def test_physics_flags_and_regression_flags_are_kept_apart(tmp_path, capsys, trained):
    out = tmp_path / "x"
    assert main(["train", "--model", "spectrum_physics", "--out", str(out), "--snr", "5", "9"]) == 2
    assert "--snr" in one_error_line(capsys, "train")
    assert main(["train", "--model", "spectrum_cnn", "--out", str(out), "--basis", "b.npz"]) == 2
    assert "--basis" in one_error_line(capsys, "train")
    assert not out.exists()
    basis = default_basis()
    path = write_nifti_mrs(tmp_path / "a.nii.gz", fid_on_grid(basis, basis.fids.sum(0)))
    code = main(["quantify", str(path), "--model", str(trained), "--out", str(out), "--refine"])
    assert code == 2
    assert "--refine" in one_error_line(capsys, "quantify")
    assert not out.exists()


def test_quantify_polish_iterations_set_at_the_run(trained, tmp_path, capsys, tiny_checkpoint):
    """``--polish-iterations K`` runs K polish iterations whatever the checkpoint holds (0: the
    network alone), and the run's notes say which K and where it came from; refused below 0 and
    for a regression CNN, in one line, before any output."""
    basis = default_basis()
    signals = simulate_invivo_batch(
        basis, InvivoPrior(water_fraction=0.0), 2, np.random.default_rng(2)
    )
    path = write_nifti_mrs(tmp_path / "two.nii.gz", fid_on_grid(basis, signals.fids))
    quantifier = load_model(trained).quantifier
    names = quantifier.metabolites
    samples = fid_on_grid(basis, signals.fids).samples
    grid = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    tables = {}
    for k in (None, 0, 2):
        out = tmp_path / f"k{k}"
        extra = [] if k is None else ["--polish-iterations", str(k)]
        argv = ["quantify", str(path), "--model", str(trained), "--out", str(out), *extra]
        assert main([*argv, "--baseline-stiffness", "fixed"]) == 0
        with open(out / "results.csv", newline="") as f:
            tables[k] = np.array([[float(r[n]) for n in names] for r in csv.DictReader(f)])
        doc = json.loads((out / "results.json").read_text())
        notes = doc["notes"]
        own = quantifier.config.polish_iterations
        said = f"(the checkpoint's K = {own})" if k is None else f"(--polish-iterations K = {k})"
        assert sum(said in note for note in notes) == 1, notes
        # the pairs the polish cannot tell apart, from its covariance, and the note naming
        # them, as fit's; the network alone forms no covariance: no pairs, no note
        pairs = [spectrum["fit"].get("anticorrelated") for spectrum in doc["spectra"]]
        noted = any(note.startswith("metabolites the fit cannot tell apart") for note in notes)
        assert all(p is not None for p in pairs) == noted == (k != 0), (pairs, notes)
    for k in (0, 2):
        # with a polish, each spectrum less the water that the fit's HLSVD removes (none here,
        # but the HLSVD's components in its band), as the fit
        seen = samples if k == 0 else remove_water(samples, *grid)
        want = quantifier.predict_with_checks(seen, polish_iterations=k)[0]
        # to the polish's rounding in this process (the test above): 1e-7 on the samples moves
        # these K = 2 estimates by up to 2.8e-4
        np.testing.assert_allclose(tables[k], want, rtol=1e-3, atol=1e-6)
    assert np.max(np.abs(tables[0] - tables[2])) > 1e-3 * np.max(tables[2])
    for model, flag in ((trained, "-1"), (tiny_checkpoint, "3")):
        out = tmp_path / "refused"
        argv = ["quantify", str(path), "--model", str(model), "--out", str(out)]
        assert main([*argv, "--polish-iterations", flag]) == 2
        assert "--polish-iterations" in one_error_line(capsys, "quantify")
        assert not out.exists()


def test_quantify_fits_again_where_the_polish_asks_for_a_flexible_baseline(
    trained, tmp_path, capsys, tiny_checkpoint
):
    """As the fit's default (``baseline_stiffness="adaptive"``): each spectrum's polish is
    screened with LCModel's F-test against the most flexible baseline; those that ask for one
    are fitted as ``fit`` fits them, their rows ``scaloquant fit``'s rows of the same file to
    the digit, window and stiffness included (also where the fit's own screen keeps a
    spectrum at its fixed stiffness over 0.2-4.2 ppm: until session 31 such a spectrum was
    fitted with the F-test over 0.2-4.0 ppm, another fit than ``fit``'s), the others the
    model's; results.json gives each row's stiffness and window, the notes say how many;
    ``--baseline-stiffness fixed`` keeps the polish for all, and the flag is refused for a
    regression CNN, in one line."""
    basis = default_basis()
    signals = simulate_invivo_batch(
        basis, InvivoPrior(water_fraction=0.0), 6, np.random.default_rng(0)
    )
    fid = fid_on_grid(basis, signals.fids.reshape(6, 1, 1, -1))
    path = write_nifti_mrs(tmp_path / "six.nii.gz", fid)
    quantifier = load_model(trained).quantifier
    names = quantifier.metabolites
    samples = fid.samples.reshape(6, -1)
    # the model sees the spectra less the water that the fit's HLSVD removes, as the fit; the
    # refit starts from the spectra as they are, as fit_spectra (which removes it itself)
    seen = remove_water(
        samples, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference
    )
    p = quantifier.predict_estimates(seen, correlations=True)
    screened = quantifier.asks_for_flexible_baseline(seen, p.theta)
    # the tiny model's polish leaves some spectra to a flexible baseline, not all
    assert 0 < screened.sum() < 6, screened
    # and those whose polish may have stopped in a worse minimum go to the same fit (session 35)
    grid = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    over_noise = residual_over_noise(p.residual_sd, seen, *grid)
    stopped = polish_stopped(
        p.fit_residual, over_noise, fid, quantifier.config.fit_config.ppm_range
    )
    flagged = screened | stopped
    assert flagged.sum() < 6, flagged
    tables, facts = {}, {}
    # fit (its default, the model's fit settings) on the same file and axis: the rows wanted
    fitted = tmp_path / "fit"
    assert (
        main(["fit", str(path), "--out", str(fitted), "--referencing", "off", "--max-figures", "0"])
        == 0
    )
    with open(fitted / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    want = np.array([[float(r[n]) for n in names] for r in rows])[flagged]
    want_residual = np.array([float(r["fit_residual"]) for r in rows])[flagged]
    # LCModel's combined rows and their CRLB SDs, from the covariance (fit's; the polish's)
    combos = [f"{c}{s}" for c in p.combined_names for s in ("", "_crlb_sd")]
    assert p.combined_names == ("tNAA", "tCr", "tCho", "Glx")
    want_combined = np.array([[float(r[c]) for c in combos] for r in rows])[flagged]
    fit_facts = [
        spectrum["fit"] for spectrum in json.loads((fitted / "results.json").read_text())["spectra"]
    ]
    fit_config = quantifier.config.fit_config
    fit_window = np.array(
        [f.get("window_ppm", fit_config.ppm_range) for f in fit_facts], dtype=float
    )[flagged]
    fit_stiffness = np.array([f["baseline_ed_per_ppm"] for f in fit_facts], dtype=float)[flagged]
    # the case that tells: the polish's screen flags a spectrum the fit's keeps at its fixed
    # stiffness over its whole window (here all three)
    assert np.any(np.all(fit_window == fit_config.ppm_range, axis=1)), fit_window
    for stiffness in ("adaptive", "fixed"):
        out = tmp_path / stiffness
        argv = ["quantify", str(path), "--model", str(trained), "--out", str(out)]
        # on the file's axis, as the fit above
        argv += ["--referencing", "off"]
        assert (
            main([*argv] + (["--baseline-stiffness", "fixed"] if stiffness == "fixed" else [])) == 0
        )
        with open(out / "results.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        tables[stiffness] = np.array([[float(r[n]) for n in names] for r in rows])
        tables[stiffness + "_residual"] = np.array([float(r["fit_residual"]) for r in rows])
        tables[stiffness + "_combined"] = np.array([[float(r[c]) for c in combos] for r in rows])
        doc = json.loads((out / "results.json").read_text())
        facts[stiffness] = [spectrum["fit"] for spectrum in doc["spectra"]]
        said = [note for note in doc["notes"] if note.startswith("the baseline: ")]
        assert len(said) == 1, doc["notes"]
        # the model's own fit figures (its final model; a spectrum fitted again, that fit's), of
        # the voxels at evenly spaced ranks of the fit residual, as fit draws an MRSI input's
        assert len(list((out / "figures").glob("*.png"))) == 5
        assert any("fit figures drawn for 5 of 6 voxels" in note for note in doc["notes"])
        facts[stiffness + "_note"] = said[0]
        facts[stiffness + "_notes"] = doc["notes"]
    got = tables["adaptive"]
    # fit's rows, written to 8 significant digits both, to the fit's rounding by batch and
    # threads (2.2e-6 seen; 0 here); before session 31 the flagged rows were 1-9 % of their
    # largest amplitude away
    np.testing.assert_allclose(got[flagged], want, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(tables["adaptive_residual"][flagged], want_residual, rtol=1e-6)
    np.testing.assert_allclose(
        tables["adaptive_combined"][flagged], want_combined, rtol=1e-5, atol=1e-9
    )
    by_polish = np.stack([p.combined_amplitudes, p.combined_sd], axis=-1).reshape(6, -1)
    np.testing.assert_allclose(
        tables["adaptive_combined"][~flagged], by_polish[~flagged], rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(tables["fixed_combined"], by_polish, rtol=1e-4, atol=1e-6)
    # the model's rows: its batches side by side round in the last digits (as above)
    np.testing.assert_allclose(got[~flagged], p.amplitudes[~flagged], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(tables["fixed"], p.amplitudes, rtol=1e-4, atol=1e-6)
    # each row's residual is the model's whose amplitudes it gives: the refit's above, the
    # polish's (at its fixed stiffness) here
    residual = tables["adaptive_residual"]
    np.testing.assert_allclose(residual[~flagged], p.fit_residual[~flagged], rtol=1e-5)
    np.testing.assert_allclose(tables["fixed_residual"], p.fit_residual, rtol=1e-5)
    assert np.all(residual[flagged] < p.fit_residual[flagged])  # not the polish's
    # the keys fit writes for the same spectra (one rule, quantify.rows.fitted_windows): no
    # window_ppm here, where fit's screen kept every spectrum over ppm_range (until session 31
    # quantify wrote it for every row where it refitted any)
    for key in ("window_ppm", "baseline_ed_per_ppm"):
        assert [key in f for f in facts["adaptive"]] == [key in f for f in fit_facts], key
    window = np.array(
        [f.get("window_ppm", fit_config.ppm_range) for f in facts["adaptive"]], dtype=float
    )
    np.testing.assert_array_equal(window[flagged], fit_window)
    np.testing.assert_array_equal(
        window[~flagged], np.tile(fit_config.ppm_range, ((~flagged).sum(), 1))
    )
    stiffness = np.array([f["baseline_ed_per_ppm"] for f in facts["adaptive"]], dtype=float)
    np.testing.assert_array_equal(stiffness[flagged], fit_stiffness)
    assert np.all(stiffness[~flagged] == fit_config.baseline_ed_per_ppm)
    assert facts["adaptive_note"].startswith(f"the baseline: {screened.sum()} spectra asked")
    restarted = int((stopped & ~screened).sum())
    minimum = [n for n in facts["adaptive_notes"] if n.startswith("the polish's minimum: ")]
    assert len(minimum) == (restarted > 0), (restarted, minimum)
    if restarted:
        assert f"the polish of {restarted} spectr" in minimum[0]
    assert "--baseline-stiffness fixed" in facts["fixed_note"]
    assert not any("window_ppm" in f for f in facts["fixed"])
    # the pairs the fit cannot tell apart: of the spectra fitted again, fit's own pairs among
    # the model's metabolites (its covariance); of the others, and of all with the polish
    # alone (fixed), the polish's covariance's, read as the fit's (until session 34: null)
    polished = anticorrelated(p.pair_correlations, names)
    pairs = [f["anticorrelated"] for f in facts["adaptive"]]
    for i in np.flatnonzero(flagged):
        own = {
            k: v
            for k, v in fit_facts[i]["anticorrelated"].items()
            if set(k.split("+")) <= set(names)
        }
        assert pairs[i] == own, (pairs[i], fit_facts[i]["anticorrelated"])
    fixed = [f["anticorrelated"] for f in facts["fixed"]]
    for got, rows in ((fixed, range(6)), (pairs, np.flatnonzero(~flagged))):
        for i in rows:
            # results.json's 3 decimals, of the polish's batches side by side (rounding)
            one, want = got[i], polished[i]
            assert want and one.keys() == want.keys(), (one, want)
            np.testing.assert_allclose(list(one.values()), list(want.values()), atol=6e-4)
    out = tmp_path / "refused"
    argv = ["quantify", str(path), "--model", str(tiny_checkpoint), "--out", str(out)]
    assert main([*argv, "--baseline-stiffness", "fixed"]) == 2
    assert "--baseline-stiffness" in one_error_line(capsys, "quantify")
    assert not out.exists()


def test_the_screen_in_the_polish_threads_flags_what_one_call_after_it_does(trained):
    """``predict_estimates(screen=True)`` screens each batch by the thread that polished it
    (quantify's adaptive baseline): the flags of one
    :meth:`~scaloquant.models.physics.PhysicsQuantifier.asks_for_flexible_baseline` call on
    all the spectra at the polished parameters, batches one after another or side by side, and
    the estimates of a run without the screen, bit for bit."""
    import torch

    basis = default_basis()
    signals = simulate_invivo_batch(
        basis, InvivoPrior(water_fraction=0.0), 6, np.random.default_rng(0)
    )
    grid = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    seen = remove_water(fid_on_grid(basis, signals.fids).samples, *grid)
    quantifier = load_model(trained).quantifier
    plain = quantifier.predict_estimates(seen, batch_size=2)
    assert plain.flexible is None
    want = quantifier.asks_for_flexible_baseline(seen, plain.theta)
    assert 0 < want.sum() < 6, want  # the test's spectra as the CLI test's above
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            got = quantifier.predict_estimates(seen, batch_size=2, screen=True)
            np.testing.assert_array_equal(got.flexible, want)
            for name in set(plain._fields) - {"flexible"}:
                np.testing.assert_array_equal(getattr(got, name), getattr(plain, name), name)
    finally:
        torch.set_num_threads(before)
    empty = quantifier.predict_estimates(seen[:0], screen=True)
    assert empty.flexible.shape == (0,) and empty.flexible.dtype == bool


CHALLENGE_BASIS = ISMRM2016_BASIS / "jmrui"


@pytest.mark.skipif(
    not CHALLENGE_BASIS.is_dir(), reason="../shared/data/ismrm2016/basis/jmrui is not present"
)
def test_train_for_an_outside_basis_file(tmp_path):
    """The ISMRM 2016 basis as jMRUI text files (22 signals with Ace, 123.22 MHz; not the
    embedded npz): the model takes its names, grid and measured macromolecules."""
    out = tmp_path / "run"
    args = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--out", str(out)]
    assert main([*args, "--basis", str(CHALLENGE_BASIS), "--simulation", "invivo"]) == 0
    loaded = load_model(out / "models" / "spectrum_physics.ckpt")
    names = loaded.quantifier.metabolites
    assert "Ace" in names and "Mac" in names and names[-3:] == ("Lip09", "Lip13", "Lip20")
    assert loaded.metadata.acquisition["spectrometer_freq_mhz"] == pytest.approx(123.22)
    assert loaded.metadata.basis["content_hash"] != default_basis().content_hash()


CHALLENGE_9 = CHALLENGE / "datasets_JMRUI" / "dataset9_WS.txt"


@pytest.mark.skipif(
    not (CHALLENGE_BASIS.is_dir() and CHALLENGE_9.is_file()),
    reason="../shared/data/ismrm2016 (the jMRUI basis and challenge datasets) is not present",
)
def test_a_polish_in_a_worse_minimum_is_fitted_again_or_flagged(tmp_path):
    """ISMRM 2016 challenge dataset 9 with a 3-step ``tiny`` model (seed 3): its polish stops in
    a worse minimum than the fit's (relative residual 0.113 against 0.057, residual over the
    noise 1.73, under the ``misfit`` flag's 3; Cr 2.48 / PCr 1.52 against 3.62 / 2.85) and its
    F-test screen asks for no flexible baseline, so until session 35 the row was the polish's,
    unflagged. Its misfit beyond the noise, 0.088, is above ``POLISH_MISFIT_MAX``: by default
    the spectrum is fitted again and its row is ``fit``'s, with a note; with
    ``--baseline-stiffness fixed`` the polish is kept and flagged ``polish_minimum``."""
    out = tmp_path / "run"
    args = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--seed", "3"]
    assert main([*args, "--basis", str(CHALLENGE_BASIS), "--out", str(out)]) == 0
    ckpt = str(out / "models" / "spectrum_physics.ckpt")
    water = ["--water", str(CHALLENGE_9.with_name("dataset9_nWS.txt")), "--max-figures", "0"]
    rows = {}
    for label, extra in (
        ("default", ["quantify", "--model", ckpt]),
        ("fixed", ["quantify", "--model", ckpt, "--baseline-stiffness", "fixed"]),
        ("fit", ["fit", "--basis", str(CHALLENGE_BASIS)]),
    ):
        res = tmp_path / label
        assert main([*extra, str(CHALLENGE_9), *water, "--out", str(res)]) == 0
        with open(res / "results.csv", newline="") as f:
            rows[label] = next(csv.DictReader(f))
        if label == "default":
            notes = json.loads((res / "results.json").read_text())["notes"]
    default, fixed, fit = rows["default"], rows["fixed"], rows["fit"]
    assert float(fixed["fit_residual"]) > 1.5 * float(fit["fit_residual"])  # the worse minimum
    assert fixed["qc"] == "polish_minimum"
    assert "polish_minimum" not in default["qc"]
    for name in ("Cr", "PCr", "NAA", "fit_residual", "residual_over_noise"):
        assert float(default[name]) == pytest.approx(float(fit[name]), rel=1e-6), name
    assert any(n.startswith("the polish's minimum: the polish of 1 spectrum") for n in notes)


PHILIPS = INVIVO / "philips-press30-spant" / "nifti_spec2nii" / "metab.nii.gz"


@pytest.mark.skipif(
    not PHILIPS.is_file(), reason="../shared/data/invivo/philips-press30-spant is not present"
)
def test_train_on_a_scanners_grid_then_quantify_without_force(tmp_path, capsys):
    """A Philips PRESS file (1024 points, 2000 Hz, 127.79 MHz; the embedded basis: 2048, 4000
    Hz, 123.26 MHz): the model is trained on the file's grid, with LCModel's parametric
    macromolecules (another scanner type), and quantify takes the file as it is. Its results
    have ``fit``'s combined rows, tCho's %SD from the polish's covariance near fit's (7.2 %
    against 6.4 % seen); the parts' SDs in quadrature, the report's sum until session 34, give
    27 %."""
    out = tmp_path / "run"
    args = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--out", str(out)]
    assert main([*args, "--grid-from", str(PHILIPS)]) == 0
    assert "basis: " in capsys.readouterr().out  # the conversion to the grid is reported
    ckpt = out / "models" / "spectrum_physics.ckpt"
    loaded = load_model(ckpt)
    assert loaded.metadata.acquisition["n_points"] == 1024
    assert loaded.metadata.acquisition["spectrometer_freq_mhz"] == pytest.approx(127.786142)
    assert "MM09" in loaded.quantifier.metabolites and "Mac" not in loaded.quantifier.metabolites
    res = tmp_path / "res"
    assert main(["quantify", str(PHILIPS), "--model", str(ckpt), "--out", str(res)]) == 0
    with open(res / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and np.isfinite(float(rows[0]["NAA"]))
    fitted = tmp_path / "fit"
    assert main(["fit", str(PHILIPS), "--out", str(fitted), "--max-figures", "0"]) == 0
    with open(fitted / "results.csv", newline="") as f:
        fit_row = next(csv.DictReader(f))
    row = rows[0]
    for combo in ("tNAA", "tCr", "tCho", "Glx"):
        assert np.isfinite(float(row[f"{combo}_crlb_pct"])), combo
        assert np.isnan(float(row[f"{combo}_sd"]))  # the network's SD is a component's
    pct, want = float(row["tCho_crlb_pct"]), float(fit_row["tCho_crlb_pct"])
    assert 0.8 * want < pct < 1.25 * want, (pct, want)
    parts = np.hypot(float(row["GPC_crlb_sd"]), float(row["PCho_crlb_sd"]))
    assert 100 * parts / float(row["tCho"]) > 3 * pct


def test_train_on_the_default_simulator_then_quantify(tmp_path, capsys):
    """``--simulation default``: the paper's simulator (here with noise, ``--snr``), the fit's
    per-metabolite model; the checkpoint records the simulation and quantify reads it."""
    out = tmp_path / "run"
    args = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--out", str(out)]
    assert main([*args, "--simulation", "default", "--snr", "20", "40"]) == 0
    ckpt = out / "models" / "spectrum_physics.ckpt"
    loaded = load_model(ckpt)
    meta = loaded.metadata
    assert meta.data["simulation"] == "default"
    assert meta.data["simulation_config"]["snr"] == [20.0, 40.0]
    assert meta.train_config["simulation"] == "default"
    assert meta.quantifier["fit"]["grouping"] == "per_metabolite"
    model = loaded.quantifier
    assert model.metabolites == default_basis().names  # the basis' own Mac, no lipids
    factors = model.config.network_sd_factors
    assert len(factors) == len(model.metabolites) and min(factors) > 0
    basis = default_basis()
    signals = next(simulate_dataset(basis, SimulationConfig(snr=(30.0, 30.0)), 2, 5))
    path = write_nifti_mrs(tmp_path / "svs.nii.gz", fid_on_grid(basis, signals.fids[0]))
    res = tmp_path / "res"
    assert main(["quantify", str(path), "--model", str(ckpt), "--out", str(res)]) == 0
    with open(res / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    assert np.isfinite(float(rows[0]["NAA"])) and np.isfinite(float(rows[0]["NAA_sd"]))


def test_simulation_flag_errors(tmp_path, capsys):
    out = tmp_path / "x"
    args = ["train", "--model", "spectrum_physics", "--out", str(out)]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--simulation", "paper"])
    assert exit_.value.code == 2
    # an argparse choice (session 32, `trainhelp32`; the names from scaloquant.presets)
    assert "argument --simulation: invalid choice: 'paper'" in one_error_line(capsys, "train")
    # the realism flags change the default simulation only
    assert main([*args, "--baseline"]) == 2
    assert "--baseline" in one_error_line(capsys, "train")
    assert not out.exists()


def test_a_physics_models_facts_without_a_spline_baseline_are_fits(trained):
    """The per-spectrum facts of a physics-head model whose fit has no spline baseline hold
    ``baseline_ed_per_ppm`` as null (NaN) and no ``window_ppm``, as ``fit``'s of such a fit
    (``FIT_FACTS``: one rule for both; until session 31 the stiffness was left out)."""
    from scaloquant.fit import fit_spectra
    from scaloquant.quantify.checks import spread_fit_facts
    from scaloquant.quantify.run import _physics_estimates

    trained_quantifier = load_model(trained).quantifier
    fit = {**trained_quantifier.config.fit, "baseline": "poly", "baseline_order": 2}
    fit["baseline_stiffness"] = "fixed"
    quantifier = PhysicsQuantifier(
        replace(trained_quantifier.config, fit=fit),
        trained_quantifier.basis_fids.numpy(),
    )
    quantifier.load_state_dict(trained_quantifier.state_dict())
    quantifier.eval()
    basis = default_basis()
    signals = simulate_invivo_batch(
        basis, InvivoPrior(water_fraction=0.0), 3, np.random.default_rng(0)
    )
    fid = fid_on_grid(basis, signals.fids)
    samples = fid.samples.reshape(3, -1)
    rows = _physics_estimates(quantifier, samples, fid, None, 0)
    assert list(rows.facts) == ["baseline_ed_per_ppm", "water_near_window"]
    assert np.isnan(rows.facts["baseline_ed_per_ppm"]).all()
    # fit's facts of the same spectra with the same fit model
    flat = fid.with_samples(samples)
    result = fit_spectra(flat, quantifier.basis(), quantifier.config.fit_config)
    fit_facts = spread_fit_facts(result, flat, np.arange(3), 3)
    assert {"baseline_ed_per_ppm", "window_ppm"} & set(fit_facts) == {"baseline_ed_per_ppm"}
    assert np.isnan(fit_facts["baseline_ed_per_ppm"]).all()
