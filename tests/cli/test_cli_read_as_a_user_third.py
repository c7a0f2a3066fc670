"""Session 30's audit of the outputs read as a user (third round): ``simulate``, ``basis
info``, ``scalogram``, ``train --basis/--grid-from`` and ``quantify`` with a physics-head model
and ``--adapt``, on the real bases and spectra of ``../shared`` (skipped, saying so, where
absent). Each test failed before its mend (docs/history/fit-log.md, "Outputs read as a user,
third round")."""

from __future__ import annotations

import csv
import dataclasses
import json

import h5py
import numpy as np
import pytest

from _shared import CHALLENGE, INVIVO, one_error_line
from scaloquant.cli import main

SPANT = INVIVO / "philips-press30-spant"
SPANT_METAB = SPANT / "nifti_spec2nii" / "metab.nii.gz"
SPANT_WATER = SPANT / "nifti_spec2nii" / "wref.nii.gz"
SPANT_BASIS = SPANT / "lcmodel_reference" / "3t.basis"
RAW = CHALLENGE / "datasets_LCModel" / "dataset7.RAW"
needs_spant = pytest.mark.skipif(
    not (SPANT_METAB.is_file() and SPANT_BASIS.is_file()),
    reason=f"needs the shared spant spectrum and basis under {SPANT}",
)


@needs_spant
def test_a_basis_metabolite_without_signal_is_refused(tmp_path, capsys):
    """LCModel's spant basis with GABA's samples all zero: fit reported GABA 0 and a NaN CRLB
    for every metabolite (a singular Fisher matrix), simulate wrote the signals without it,
    'basis info' put its main peak at 0.200 ppm, the window's edge."""
    from scaloquant.io import read_basis, write_basis_npz

    basis = read_basis(SPANT_BASIS)
    fids = basis.fids.copy()
    fids[basis.index("GABA")] = 0
    broken = write_basis_npz(tmp_path / "gaba0.npz", dataclasses.replace(basis, fids=fids))
    out = tmp_path / "fit"
    assert main(["fit", str(SPANT_METAB), "--basis", str(broken), "--out", str(out)]) == 2
    line = one_error_line(capsys, "fit")
    assert f"{broken}: GABA has no signal (every sample is zero)" in line, line
    assert not out.exists()
    sim = tmp_path / "sim.h5"
    argv = ["simulate", "--n", "2", "--seed", "0", "--basis", str(broken), "--out", str(sim)]
    assert main(argv) == 2
    assert "GABA has no signal" in one_error_line(capsys, "simulate")
    assert not sim.exists()
    assert main(["basis", "info", str(broken)]) == 2
    assert "GABA has no signal" in one_error_line(capsys, "basis info")


@pytest.fixture(scope="module")
def spant_physics(tmp_path_factory):
    """A physics-head model trained (2 steps) for the spant spectrum's basis and grid."""
    if not (SPANT_METAB.is_file() and SPANT_BASIS.is_file()):
        pytest.skip(f"needs the shared spant spectrum and basis under {SPANT}")
    out = tmp_path_factory.mktemp("spant_physics")
    argv = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--max-steps", "2"]
    argv += ["--basis", str(SPANT_BASIS), "--grid-from", str(SPANT_METAB), "--out", str(out)]
    assert main(argv) == 0
    return out / "models" / "spectrum_physics.ckpt"


def test_a_physics_model_of_another_basis_says_it_carries_it(spant_physics, tmp_path, capsys):
    """quantify with a physics-head model trained on the spant basis, no --basis: the summary
    said 'no fit figures, no --refine and no mM (give --basis ...)' above a table of mM and
    beside a drawn fit figure (the model keeps its basis). With --adapt on the one spectrum:
    'on the 1 usable spectra ... (1 steps of 1 spectra'."""
    out = tmp_path / "out"
    argv = ["quantify", str(SPANT_METAB), "--water", str(SPANT_WATER)]
    argv += ["--model", str(spant_physics), "--out", str(out), "--threads", "1"]
    assert main([*argv, "--adapt", "--adapt-steps", "1"]) == 0
    summary = (out / "summary.md").read_text()
    assert "no fit figures, no --refine and no mM" not in summary
    assert "basis: the model's own, kept in its checkpoint (trained with 3t.basis)" in summary
    assert "on the 1 usable spectrum of this run" in summary
    assert "(1 step of 1 spectrum, learning rate" in summary
    (row,) = csv.DictReader((out / "results.csv").open())
    assert np.isfinite(float(row["NAA_mM"]))
    assert list((out / "figures").glob("*.png"))
    note = json.loads((out / "results.json").read_text())
    assert "kept in its checkpoint" in json.dumps(note)
    capsys.readouterr()


@pytest.mark.skipif(not RAW.is_file(), reason=f"needs the shared {RAW}")
def test_train_grid_from_a_file_without_its_grid_names_a_remedy_train_has(tmp_path, capsys):
    """``train --grid-from dataset7.RAW`` (no dwell time recorded): 'pass --dwell-time-s', a
    flag train does not have."""
    out = tmp_path / "run"
    argv = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--grid-from", str(RAW)]
    assert main([*argv, "--out", str(out), "--max-steps", "2"]) == 2
    line = one_error_line(capsys, "train")
    assert "pass --dwell-time-s" not in line, line
    # both values, where it named the dwell time alone (session 35, `words35`)
    lacks = "does not record the dwell time or the spectrometer frequency"
    assert f"--grid-from {RAW} {lacks}" in line, line
    remedy = "--dwell-time-s S --spectrometer-freq-mhz MHZ, and give that file"
    assert f"scaloquant convert {RAW} dataset7.nii.gz {remedy}" in line, line
    assert not out.exists()


@needs_spant
def test_a_short_fid_names_the_scalogram_flag(tmp_path, capsys):
    """The spant FID (1024 points) with the paper preset (1536): 'use a config with n_points
    <= the FID length'; scalogram takes no config, and has --n-points."""
    out = tmp_path / "s.npy"
    assert main(["scalogram", str(SPANT_METAB), "--out", str(out)]) == 2
    line = one_error_line(capsys, "scalogram")
    assert "has 1024 points but --preset paper takes the first 1536" in line, line
    assert "pass --n-points 1024 (or fewer)" in line
    assert not out.exists()
    assert main(["scalogram", str(SPANT_METAB), "--out", str(out), "--n-points", "1024"]) == 0
    assert np.load(out).shape == (2, 340, 1024)


def test_one_acquisition_flag_without_a_basis_is_worded_as_one(tmp_path, capsys):
    """'--spectrometer-freq-mhz describe a basis file; give --basis or drop them'."""
    out = tmp_path / "sim.h5"
    argv = ["simulate", "--n", "2", "--seed", "0", "--out", str(out)]
    assert main([*argv, "--spectrometer-freq-mhz", "127.7"]) == 2
    line = one_error_line(capsys, "simulate")
    assert line.endswith("--spectrometer-freq-mhz describes a basis file; give --basis or drop it")
    assert main([*argv, "--spectrometer-freq-mhz", "127.7", "--override-header"]) == 2
    assert one_error_line(capsys, "simulate").endswith(
        "describe a basis file; give --basis or drop them"
    )
    assert not out.exists()


@needs_spant
def test_a_basis_header_override_is_reported(tmp_path, capsys):
    """simulate and 'basis info' with --override-header (the help: 'each replacement is
    reported with the results'): neither said that 123.2 MHz replaced the 127.7861 MHz the
    spant basis records, nor did the simulation file."""
    sim = tmp_path / "sim.h5"
    flags = ["--basis", str(SPANT_BASIS), "--spectrometer-freq-mhz", "123.2", "--override-header"]
    assert main(["simulate", "--n", "2", "--seed", "0", "--out", str(sim), *flags]) == 0
    said = (
        "--override-header: spectrometer frequency 123.2 MHz used instead of the 127.7861 MHz "
        "the file records"
    )
    assert f"basis: {said}" in capsys.readouterr().out
    with h5py.File(sim) as f:
        assert f.attrs["spectrometer_freq_mhz"] == 123.2
        assert json.loads(f.attrs["header_overrides"]) == {
            "spectrometer_freq_mhz": {"recorded": 127.7861, "used": 123.2}
        }
    assert main(["basis", "info", *flags[1:]]) == 0
    assert f"header:                 {said}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--model", "spectrum_cnn", "--preset", "tiny"],
        ["train", "--model", "spectrum_physics", "--preset", "tiny", "--max-steps", "2"],
        ["reproduce", "--preset", "tiny"],
    ],
)
def test_a_negative_seed_is_one_line(argv, tmp_path, capsys):
    """``--seed -1``: numpy's 'ValueError: expected non-negative integer' traceback, exit 1."""
    out = tmp_path / "run"
    assert main([*argv, "--seed", "-1", "--out", str(out)]) == 2
    assert one_error_line(capsys, argv[0]).endswith("seed must be a whole number >= 0, got -1")
    assert not out.exists()


LCMODEL_RAWS = CHALLENGE.parent / "ismrm2016" / "basis" / "lcmodel"


@pytest.mark.skipif(
    not (LCMODEL_RAWS / "NAA.RAW").is_file() or not RAW.is_file(),
    reason=f"needs the shared ISMRM 2016 basis as LCModel .RAW files ({LCMODEL_RAWS}) and {RAW}",
)
def test_a_basis_of_raw_files_has_a_way_in(tmp_path, capsys):
    """The ISMRM 2016 basis as a folder of LCModel .RAW files (no grid recorded) given to fit:
    refused, naming NIfTI-MRS as a basis format that records it (it is not read as a basis),
    and no command took the grid for a basis that fit, quantify or train would then read. The
    message now names 'scaloquant basis convert', which does."""
    out = tmp_path / "fit"
    grid = ["--dwell-time-s", "0.00025", "--spectrometer-freq-mhz", "123.2"]
    argv = ["fit", str(RAW), *grid, "--out", str(out), "--max-figures", "0", "--threads", "1"]
    assert main([*argv, "--basis", str(LCMODEL_RAWS)]) == 2
    line = one_error_line(capsys, "fit")
    assert "NIfTI-MRS" not in line, line
    # both values, where it named the dwell time alone (session 35, `words35`)
    assert "does not record the dwell time or the spectrometer frequency, and a basis" in line
    npz = tmp_path / "basis.npz"
    remedy = "basis.npz --dwell-time-s S --spectrometer-freq-mhz MHZ"
    assert line.endswith(f"scaloquant basis convert {LCMODEL_RAWS} {remedy}"), line
    assert main(["basis", "convert", str(LCMODEL_RAWS), str(npz), *grid]) == 0
    said = capsys.readouterr().out
    assert f"wrote {npz}: 22 metabolites, 2048 points, dwell 0.25 ms, 123.2 MHz" in said
    assert main([*argv, "--basis", str(npz)]) == 0
    (row,) = csv.DictReader((out / "results.csv").open())
    assert 14 < float(row["NAA_mM"]) < 15  # 14.48 mM with the embedded basis
    assert main(["basis", "convert", str(LCMODEL_RAWS), str(npz), *grid]) == 2
    assert "already exists" in one_error_line(capsys, "basis convert")


OSPREY = INVIVO / "philips-press-osprey"
OSPREY_BASIS = OSPREY / "basis_philips_press35" / "3T_PRESS_Philips_35ms_noMM.BASIS"
OSPREY_TE30 = OSPREY / "nifti" / "UnEdited_with_MM_data" / "sub-01_ses-01_PRESS_raw-act_noID.nii.gz"
OSPREY_TE35 = OSPREY / "nifti" / "UnEdited" / "sub-01_PRESS_35_act.nii.gz"


@pytest.mark.skipif(
    not (OSPREY_BASIS.is_file() and OSPREY_TE30.is_file() and OSPREY_TE35.is_file()),
    reason=f"needs the shared Osprey spectra (TE 30 and 35) and TE 35 basis under {OSPREY}",
)
def test_train_for_a_files_grid_checks_its_echo_time_and_records_the_grid(tmp_path, capsys):
    """``train --basis`` Osprey's TE 35 basis ``--grid-from`` its TE 30 spectrum: trained
    without a word, then quantify refused that very file with the model ('TE 30 ms and the
    model's TE 35 ms'). And train_config.yaml named the grid's file alone: not the grid, nor
    the basis' conversions to it (reference 4.68 ppm, 4000 -> 2000 Hz, 8192 -> 2048 points),
    which only the terminal said."""
    import yaml

    out = tmp_path / "run"
    argv = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--max-steps", "2"]
    argv += ["--basis", str(OSPREY_BASIS), "--out", str(out)]
    assert main([*argv, "--grid-from", str(OSPREY_TE30)]) == 2
    line = one_error_line(capsys, "train")
    assert "states TE 30 ms and the basis set" in line and "TE 35 ms" in line, line
    assert not out.exists()
    assert main([*argv, "--grid-from", str(OSPREY_TE35)]) == 0
    data = yaml.safe_load((out / "train_config.yaml").read_text())["data"]
    assert data["acquisition"] == {
        "n_points": 2048,
        "dwell_time_s": 0.0005,
        "spectrometer_freq_mhz": pytest.approx(127.7509, abs=1e-4),
        "ppm_reference": 4.65,
        "nucleus": "1H",
    }
    assert data["basis_conversions"][0].startswith("basis reference taken as 4.68 ppm")
    assert f"basis: {data['basis_conversions'][-1]}" in capsys.readouterr().out


def test_an_adapted_checkpoint_says_so_when_used_again(spant_physics, tmp_path, capsys):
    """A checkpoint written by ``quantify --adapt --save-adapted`` (its encoder fine-tuned on
    the one spant spectrum), given to a later quantify: the outputs read as those of the model as
    trained, though the checkpoint records its adaptation."""
    adapted = tmp_path / "adapted.ckpt"
    argv = ["quantify", str(SPANT_METAB), "--threads", "1", "--max-figures", "0"]
    first = [*argv, "--model", str(spant_physics), "--adapt", "--adapt-steps", "1"]
    assert main([*first, "--save-adapted", str(adapted), "--out", str(tmp_path / "a")]) == 0
    assert main([*argv, "--model", str(adapted), "--out", str(tmp_path / "b")]) == 0
    summary = (tmp_path / "b" / "summary.md").read_text()
    said = (
        "the model is an adapted one (quantify --adapt: its encoder fine-tuned on 1 spectrum of "
        f"an earlier run, 1 step, from {spant_physics})"
    )
    assert said in summary
    assert "adapted one" not in (tmp_path / "a" / "summary.md").read_text()
    capsys.readouterr()


@needs_spant
def test_a_converted_basis_does_not_report_its_override_again(tmp_path, capsys):
    """``basis convert`` the spant basis with --spectrometer-freq-mhz 123.2 --override-header:
    every later reader of the .npz said '--override-header: ... used instead of the 127.7861 MHz
    the file records' (the .npz records 123.2), and simulate wrote it into a file made without
    the flag. The replacement is kept under provenance['converted_from']."""
    from scaloquant.io import read_basis

    npz = tmp_path / "b.npz"
    flags = ["--spectrometer-freq-mhz", "123.2", "--override-header"]
    assert main(["basis", "convert", str(SPANT_BASIS), str(npz), *flags]) == 0
    assert "basis: --override-header: spectrometer frequency 123.2 MHz" in capsys.readouterr().out
    assert main(["basis", "info", str(npz)]) == 0
    assert "override" not in capsys.readouterr().out
    sim = tmp_path / "sim.h5"
    assert (
        main(["simulate", "--n", "2", "--seed", "0", "--basis", str(npz), "--out", str(sim)]) == 0
    )
    assert "override" not in capsys.readouterr().out
    with h5py.File(sim) as f:
        assert "header_overrides" not in f.attrs
    converted = read_basis(npz).provenance["converted_from"]
    assert converted["header_overrides"]["spectrometer_freq_mhz"]["recorded"] == 127.7861
