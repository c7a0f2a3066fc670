"""``simulate --grid-from DATA`` (session 30's `simgrid30`): test spectra on a scanner file's
grid, the basis brought to it as the fit brings it; and the refusals of a simulation file as
``--basis`` or ``--grid-from`` and of ``reproduce --n-test 0`` in the flags' words. Each test
failed before (``--grid-from`` was not a flag of simulate; the refusals named 'scaloquant
evaluate' and the library's 'test set')."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest

from _shared import INVIVO, one_error_line
from scaloquant.cli import main
from scaloquant.io import read_fid
from scaloquant.signal.peaks import main_peak_ppm

SPANT = INVIVO / "philips-press30-spant"
SPANT_METAB = SPANT / "nifti_spec2nii" / "metab.nii.gz"
SPANT_RAW = SPANT / "lcmodel_reference" / "data.raw"
needs_spant = pytest.mark.skipif(
    not (SPANT_METAB.is_file() and SPANT_RAW.is_file()),
    reason=f"needs the shared spant spectrum (NIfTI-MRS and .RAW) under {SPANT}",
)


def _amplitudes(path, names=None):
    """``{name: (n,) amplitudes}`` of a truth CSV (``amplitudes_<name>``) or, with ``names``, of
    a results.csv's columns."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if names is None:
        names = [k[len("amplitudes_") :] for k in rows[0] if k.startswith("amplitudes_")]
        return {n: np.array([float(r[f"amplitudes_{n}"]) for r in rows]) for n in names}
    return {n: np.array([float(r[n]) for r in rows]) for n in names}


@needs_spant
def test_simulate_on_a_files_grid_puts_naa_at_its_ppm(tmp_path, capsys):
    """The spant spectrum's grid (1024 points, 0.5 ms, 127.786 MHz) against the embedded
    basis' (2048, 0.25 ms, 123.26 MHz): the written file has the data's grid, and NAA's CH3
    singlet sits at 2.008 ppm on its axis (no shifts drawn; 0.003 ppm is how closely simulated
    bases place their singlets, :data:`scaloquant.fit.basis_grid.SINGLET_REFERENCE_MIN_PPM`'s
    note; measured 2.0088). The conversions are said on the terminal and in the header."""
    out = tmp_path / "sim.nii.gz"
    argv = ["simulate", "--n", "6", "--seed", "3", "--out", str(out), "--shift-range", "0", "0"]
    argv += ["--damping-range", "2", "2", "--grid-from", str(SPANT_METAB)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "basis: basis Fourier-resampled to the data's dwell time 0.5 ms" in printed, printed
    data, sim = read_fid(SPANT_METAB), read_fid(out)
    assert sim.acquisition == data.acquisition
    truth = _amplitudes(tmp_path / "sim_truth.csv")
    naa_tall = np.flatnonzero(truth["NAA"] > 2 * truth["NAAG"])
    assert naa_tall.size, "no signal with NAA over twice NAAG: pick another seed"
    fids = sim.samples.reshape(-1, sim.n_points)[naa_tall]
    ppm = main_peak_ppm(
        fids, sim.dwell_time_s, sim.spectrometer_freq_mhz, sim.ppm_reference, ppm_range=(1.9, 2.1)
    )
    np.testing.assert_allclose(ppm, 2.008, atol=0.003)
    recorded = sim.provenance["header"]["scaloquant_simulation"]["grid"]
    assert recorded["grid_from"] == str(SPANT_METAB) and len(recorded["basis_conversions"]) == 3


@needs_spant
def test_simulate_on_a_raw_files_grid_records_it(tmp_path, capsys):
    """An LCModel .RAW does not record its grid: the acquisition flags describe the
    ``--grid-from`` file (as they describe fit's inputs); the HDF5 file records the grid's file
    and the basis' conversions, for both the default and the invivo presets."""
    grid = ["--grid-from", str(SPANT_RAW), "--dwell-time-s", "0.0005"]
    grid += ["--spectrometer-freq-mhz", "127.79"]
    for preset in ([], ["--preset", "invivo"]):
        out = tmp_path / f"sim{len(preset)}.h5"
        argv = ["simulate", "--n", "2", "--seed", "1", "--out", str(out), *grid, *preset]
        assert main(argv) == 0
        assert "basis: basis zero-filled 987 -> 1024 points" in capsys.readouterr().out
        with h5py.File(out) as f:
            assert f["fids"].shape == (2, 1024)
            assert f.attrs["dwell_time_s"] == 0.0005
            assert f.attrs["spectrometer_freq_mhz"] == 127.79
            recorded = json.loads(f.attrs["grid"])
        assert recorded["grid_from"] == str(SPANT_RAW)
        assert recorded["n_points"] == 1024
        assert any("Fourier-resampled" in s for s in recorded["basis_conversions"])


@needs_spant
def test_fit_recovers_what_was_simulated_on_a_files_grid(tmp_path):
    """``scaloquant fit`` of noiseless signals simulated on the spant grid, with the same
    (embedded) basis: the fit brings the basis to that grid as simulate did, so it fits its
    own model family (measured MAE 7e-8 on seed 4; the fit's documented noiseless accuracy is
    about 1e-3, so 1e-3 is the bound)."""
    sim = tmp_path / "sim.nii.gz"
    argv = ["simulate", "--n", "3", "--seed", "4", "--out", str(sim)]
    assert main([*argv, "--grid-from", str(SPANT_METAB)]) == 0
    out = tmp_path / "fit"
    argv = ["fit", str(sim), "--preset", "simulated", "--out", str(out), "--max-figures", "0"]
    assert main(argv) == 0
    truth = _amplitudes(tmp_path / "sim_truth.csv")
    fitted = _amplitudes(out / "results.csv", names=list(truth))
    errors = np.array([np.abs(fitted[n] - truth[n]) for n in truth])
    assert errors.mean() < 1e-3, errors.mean()


def test_a_simulation_file_as_basis_or_grid_is_refused_in_the_flags_words(tmp_path, capsys):
    """'not a FID file; ...; evaluate a simulation file with scaloquant evaluate' was meant for
    an input: as ``--basis`` it should ask for the basis, as ``--grid-from`` for a data file."""
    sim = tmp_path / "sim.h5"
    assert main(["simulate", "--n", "2", "--seed", "0", "--out", str(sim)]) == 0
    capsys.readouterr()
    out = tmp_path / "again.h5"
    assert (
        main(["simulate", "--n", "2", "--seed", "0", "--out", str(out), "--basis", str(sim)]) == 2
    )
    line = one_error_line(capsys, "simulate")
    assert f"--basis {sim} is a simulation file" in line, line
    assert "give the basis set it was simulated from" in line and "not a FID" not in line
    argv = ["simulate", "--n", "2", "--seed", "0", "--out", str(out), "--grid-from", str(sim)]
    assert main(argv) == 2
    line = one_error_line(capsys, "simulate")
    assert f"--grid-from {sim} is a simulation file" in line, line
    assert "leave --grid-from out" in line and "evaluate" not in line
    argv = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--grid-from", str(sim)]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    assert f"--grid-from {sim} is a simulation file" in one_error_line(capsys, "train")
    spectra = tmp_path / "sim.nii.gz"
    assert main(["simulate", "--n", "1", "--seed", "0", "--out", str(spectra)]) == 0
    capsys.readouterr()
    argv = ["fit", str(spectra), "--basis", str(sim), "--out", str(tmp_path / "fit")]
    assert main(argv) == 2
    assert f"--basis {sim} is a simulation file" in one_error_line(capsys, "fit")
    assert not out.exists() and not (tmp_path / "run").exists()


def test_reproduce_n_test_is_refused_in_the_flags_words(tmp_path, capsys):
    """``reproduce --n-test 0``: 'the test set needs at least 2 signals' named no flag."""
    out = tmp_path / "r"
    assert main(["reproduce", "--preset", "tiny", "--out", str(out), "--n-test", "0"]) == 2
    assert "--n-test (the test set's signals) must be a whole number >= 2" in one_error_line(
        capsys, "reproduce"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ({"EchoTime": 0.144}, "states TE 144 ms and the embedded basis set TE 30 ms"),
        ({"SequenceName": "STEAM"}, "states sequence STEAM and the embedded basis set PRESS"),
    ],
)
def test_simulate_refuses_a_grid_file_of_another_echo_time_or_sequence(
    tmp_path, capsys, header, words
):
    """The checks the fit makes with the basis (PRESS, TE 30 ms), before anything is written:
    a TE 144 ms or STEAM file's grid would give test signals that fit then refuses (without
    --force) with the basis they were made from."""
    from scaloquant.io import default_basis, write_nifti_mrs
    from scaloquant.types import FID

    basis = default_basis()
    acq = basis.acquisition
    fid = FID(
        samples=basis.fids[0],
        dwell_time_s=acq.dwell_time_s,
        spectrometer_freq_mhz=acq.spectrometer_freq_mhz,
        ppm_reference=acq.ppm_reference,
    )
    grid = write_nifti_mrs(tmp_path / "grid.nii.gz", fid, extra_header=header)
    out = tmp_path / "sim.h5"
    argv = ["simulate", "--n", "2", "--seed", "0", "--out", str(out), "--grid-from", str(grid)]
    assert main(argv) == 2
    line = one_error_line(capsys, "simulate")
    assert f"--grid-from {grid} {words}" in line, line
    assert "scaloquant fit would refuse that file with this basis" in line
    assert not out.exists()


def _grid_file(path, **acquisition):
    """A NIfTI-MRS file of the embedded basis' first FID on its grid, ``acquisition`` changed."""
    from scaloquant.io import default_basis, write_nifti_mrs
    from scaloquant.types import FID

    basis = default_basis()
    acq = {
        "dwell_time_s": basis.dwell_time_s,
        "spectrometer_freq_mhz": basis.spectrometer_freq_mhz,
        "ppm_reference": basis.ppm_reference,
        **acquisition,
    }
    return write_nifti_mrs(path, FID(samples=basis.fids[0], **acq))


@pytest.mark.parametrize(
    ("command", "remedy"),
    [
        (["simulate", "--n", "2", "--seed", "0"], "simulate from a basis set (--basis)"),
        (
            ["train", "--model", "spectrum_physics", "--preset", "tiny"],
            "train from a basis set (--basis)",
        ),
    ],
)
def test_a_grid_file_of_another_field_is_refused_with_the_commands_remedy(
    tmp_path, capsys, command, remedy
):
    """A 7 T file's grid: the library's 'train a model (or fit) with a basis set for 297.2 MHz'
    was off for ``simulate``, which needs a basis for that field (session 31, `words31`)."""
    grid = _grid_file(tmp_path / "7t.nii.gz", spectrometer_freq_mhz=297.2)
    out = tmp_path / ("sim.h5" if command[0] == "simulate" else "out")  # a file, a folder
    assert main([*command, "--out", str(out), "--grid-from", str(grid)]) == 2
    line = one_error_line(capsys, command[0])
    assert f"--grid-from {grid}: acquired at 297.2 MHz (1H, 7.0 T)" in line, line
    assert f"{remedy} for 297.2 MHz" in line and "train a model" not in line, line
    assert not out.exists()


@needs_spant
def test_a_raw_grid_file_without_its_flags_names_the_flags_to_add(tmp_path, capsys):
    """``simulate --grid-from data.raw`` without the acquisition flags: the reader's 'data.raw
    does not record the dwell time; pass --dwell-time-s (or dwell_time_s=... in Python)' named
    neither --grid-from nor the second flag the file lacks (session 31, `words31`); then 'does
    not record the dwell time: add --dwell-time-s S (and --spectrometer-freq-mhz MHZ if it lacks
    that too)' of a file that lacks both (session 35, `words35`)."""
    out = tmp_path / "sim.h5"
    argv = ["simulate", "--n", "2", "--seed", "0", "--out", str(out), "--grid-from", str(SPANT_RAW)]
    assert main(argv) == 2
    line = one_error_line(capsys, "simulate")
    assert (
        f"--grid-from {SPANT_RAW} does not record the dwell time or the spectrometer frequency: "
        "add --dwell-time-s S and --spectrometer-freq-mhz MHZ; the acquisition flags describe"
    ) in line, line
    assert "Python" not in line
    assert main([*argv, "--dwell-time-s", "0.0005"]) == 2
    line = one_error_line(capsys, "simulate")
    assert "does not record the spectrometer frequency: add --spectrometer-freq-mhz MHZ;" in line
    assert not out.exists()


def _records_its_frequency(path):
    """An LCModel .RAW that records its spectrometer frequency ($SEQPAR's HZPPPM) and not its
    dwell time."""
    points = " 1.0 0.0\n" * 64
    path.write_text(
        f" $SEQPAR\n HZPPPM=123.2\n $END\n $NMID ID='x', FMTDAT='(2E16.8)' $END\n{points}"
    )
    return path


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["simulate", "--n", "2", "--seed", "0", "--out", "sim.h5", "--grid-from"],
            "--grid-from {raw} does not record the dwell time: add --dwell-time-s S; the "
            "acquisition flags describe the --grid-from file",
        ),
        (
            ["train", "--model", "spectrum_physics", "--preset", "tiny", "--out", "run"]
            + ["--grid-from"],
            "--grid-from {raw} does not record the dwell time, and train takes no acquisition "
            "flags: rewrite it as NIfTI-MRS with them, e.g. scaloquant convert {raw} f.nii.gz "
            "--dwell-time-s S, and give that file",
        ),
        (
            ["fit", "{raw}", "--dwell-time-s", "0.00025", "--spectrometer-freq-mhz", "123.2"]
            + ["--out", "fit", "--basis"],
            "--basis {raw} does not record the dwell time, and a basis must record its own "
            "grid: give one that does (LCModel .BASIS, .npz, a folder of FSL-MRS .json), or "
            "write this one with its grid: scaloquant basis convert {raw} basis.npz "
            "--dwell-time-s S",
        ),
    ],
)
def test_a_file_that_records_its_frequency_is_asked_for_its_dwell_time_alone(
    tmp_path, capsys, monkeypatch, argv, said
):
    """A ``--grid-from`` or ``--basis`` file that lacks one grid value: the refusal names that
    one and its flag alone, where the remedies named both flags ('(and --spectrometer-freq-mhz
    MHZ if it lacks that too)', 'basis convert ... --dwell-time-s S --spectrometer-freq-mhz
    MHZ') though the file records the frequency (session 35, `words35`)."""
    monkeypatch.chdir(tmp_path)
    raw = _records_its_frequency(tmp_path / "f.RAW")
    assert main([*(a.format(raw=raw) for a in argv), str(raw)]) == 2
    assert one_error_line(capsys, argv[0]).endswith(said.format(raw=raw))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.RAW"]  # nothing written
