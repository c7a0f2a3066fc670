"""``scaloquant simulate`` in-process: outputs, reproducibility, overrides, and bad input."""

import csv
import hashlib

import numpy as np
import pytest

from _shared import one_error_line
from scaloquant.cli import main
from scaloquant.io import default_basis, read_nifti_mrs, write_basis_npz
from scaloquant.io.hdf5 import read_simulation
from scaloquant.signal import lineshapes
from scaloquant.simulate import SimulationConfig
from scaloquant.types import BasisSet


def simulate(*args):
    return main(["simulate", *map(str, args)])


def test_default_run_writes_the_paper_dataset(tmp_path, capsys):
    out = tmp_path / "sim.h5"
    assert simulate("--n", 10, "--seed", 1, "--out", out) == 0
    captured = capsys.readouterr()
    assert "wrote 10 simulated signals" in captured.out
    assert captured.err == ""  # no progress bar off a terminal for a short run
    sim = read_simulation(out)
    basis = default_basis()
    assert sim.metabolites == basis.names and len(sim.metabolites) == 21
    assert sim.fids.shape == (10, 2048)
    assert sim.acquisition.dwell_time_s == 2.5e-4 and sim.acquisition.ppm_reference == 4.65
    assert (
        sim.amplitudes.shape == (10, 21) and 0 <= sim.amplitudes.min() <= sim.amplitudes.max() <= 1
    )
    assert set(sim.parameters) == {"damping_per_s", "shift_hz"}
    assert sim.config == SimulationConfig().to_dict() and sim.seed == 1
    assert sim.basis_sha256 == basis.content_hash()


def test_same_seed_same_bytes_whatever_the_chunk_size(tmp_path):
    a, b, c = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    assert simulate("--n", 12, "--seed", 7, "--out", a) == 0
    assert simulate("--n", 12, "--seed", 7, "--out", b, "--chunk-size", 5) == 0
    assert simulate("--n", 12, "--seed", 8, "--out", c) == 0
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1] != digest[2]


def test_flags_override_the_config_file(tmp_path):
    config = tmp_path / "sim.yaml"
    config.write_text("snr: 10\nlineshape: voigt\namplitude_range: [0.5, 1]\n")
    out = tmp_path / "sim.h5"
    code = simulate(
        "--n",
        6,
        "--seed",
        2,
        "--out",
        out,
        "--config",
        config,
        "--snr",
        30,
        "--phase0-range",
        -5,
        5,
        "--global-shift-damping",
        "--baseline",
    )
    assert code == 0
    sim = read_simulation(out)
    assert sim.config["snr"] == [30.0, 30.0] and sim.config["per_metabolite"] is False
    assert sim.config["lineshape"] == "voigt" and sim.config["amplitude_range"] == [0.5, 1.0]
    assert sim.config["baseline"]["n_humps"] == 3
    np.testing.assert_allclose(sim.parameters["snr"], 30)
    assert sim.amplitudes.min() >= 0.5
    assert np.all(sim.parameters["shift_hz"] == sim.parameters["shift_hz"][:, :1])
    for name in ("phase0_deg", "gaussian_damping_per_s", "baseline_height", "noise_sd"):
        assert name in sim.parameters


def test_nifti_output_with_truth_csv(tmp_path):
    h5, nifti = tmp_path / "sim.h5", tmp_path / "sim.nii.gz"
    assert simulate("--n", 5, "--seed", 3, "--out", h5, "--snr", 20) == 0
    assert simulate("--n", 5, "--seed", 3, "--out", nifti, "--snr", 20) == 0
    fid = read_nifti_mrs(nifti)
    assert fid.samples.shape == (1, 1, 1, 5, 2048)
    assert fid.provenance["dim_tags"][0] == "DIM_USER_0"
    assert fid.dwell_time_s == 2.5e-4 and fid.ppm_reference == pytest.approx(4.65)
    sim = read_simulation(h5)
    # NIfTI keeps float64, HDF5 float32: agreement to float32 rounding of the largest sample
    scale = np.abs(sim.fids).max()
    np.testing.assert_allclose(fid.samples[0, 0, 0], sim.fids, rtol=0, atol=1e-6 * scale)
    with open(tmp_path / "sim_truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["index"]) for r in rows] == [0, 1, 2, 3, 4]
    naa = [float(r["amplitudes_NAA"]) for r in rows]
    np.testing.assert_allclose(naa, sim.amplitudes[:, sim.metabolites.index("NAA")], rtol=1e-6)
    np.testing.assert_allclose(
        [float(r["noise_sd"]) for r in rows], sim.parameters["noise_sd"], rtol=1e-6
    )
    assert "shift_hz_Mac" in rows[0] and "snr" in rows[0]


def test_user_basis_file(tmp_path):
    fids = [
        lineshapes.singlet_fid(512, 5e-4, 123.26, 4.65, ppm, damping_per_s=10) for ppm in (3.0, 2.0)
    ]
    path = write_basis_npz(
        tmp_path / "two.npz", BasisSet(["Cr", "NAA"], np.array(fids), 5e-4, 123.26)
    )
    out = tmp_path / "sim.h5"
    assert simulate("--n", 4, "--seed", 0, "--out", out, "--basis", path) == 0
    sim = read_simulation(out)
    assert sim.metabolites == ("Cr", "NAA") and sim.fids.shape == (4, 512)
    assert sim.basis_name == str(path)


@pytest.fixture
def bad_configs(tmp_path):
    garbled = tmp_path / "garbled.yaml"
    garbled.write_text("snr: [1, 2\n  - ]: :")
    unknown_name = tmp_path / "unknown.yaml"
    unknown_name.write_text("overrides:\n  Foo:\n    amplitude_range: [0, 1]\n")
    unknown_key = tmp_path / "key.yaml"
    unknown_key.write_text("snrr: 3\n")
    return {"garbled": garbled, "unknown_name": unknown_name, "unknown_key": unknown_key}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--amplitude-range", "1", "0"], "error: --amplitude-range: min 1 > max 0"),
        (["--damping-range", "-1", "5"], "error: --damping-range must not go below 0"),
        (["--n", "-5"], "error: --n must be a whole number >= 1"),
        (["--seed", "-1"], "error: --seed must be a whole number >= 0"),
        (["--snr", "-3"], "error: --snr must be positive"),
        (["--snr", "1", "2", "3"], "--snr takes one value or MIN MAX"),
        (["--config", "{missing}"], "does not exist"),
        (["--config", "{garbled}"], "as YAML"),
        (["--config", "{unknown_key}"], "valid keys: amplitude_range"),
        (["--config", "{unknown_name}"], "valid names: Mac, Ala, Asp"),
        (["--basis", "{missing}"], "does not exist"),
        (
            ["--dwell-time-s", "1e-3"],
            "--dwell-time-s describes a basis file; give --basis or drop it",
        ),
        (["--format", "nifti"], "name the output"),
        (["--format", "nifti", "--out", "{nifti}", "--n", "40000"], "use --format hdf5"),
    ],
)
def test_bad_input_gives_one_line_and_no_file(tmp_path, capsys, bad_configs, extra, message):
    paths = {**bad_configs, "missing": tmp_path / "missing.yaml", "nifti": tmp_path / "s.nii.gz"}
    # argparse keeps the last value of a repeated option: `extra` can replace the defaults
    base = ["--n", "4", "--seed", "0", "--out", str(tmp_path / "sim.h5")]
    argv = base + [token.format(**paths) for token in extra]
    assert main(["simulate", *argv]) == 2
    assert message in one_error_line(capsys, "simulate")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in bad_configs.values()
    )


def test_existing_output_is_untouched(tmp_path, capsys):
    out = tmp_path / "sim.h5"
    out.write_bytes(b"precious")
    assert simulate("--n", 3, "--seed", 0, "--out", out) == 2
    assert "pass --overwrite" in one_error_line(capsys, "simulate")
    assert out.read_bytes() == b"precious"
    assert simulate("--n", 3, "--seed", 0, "--out", out, "--overwrite") == 0
    assert read_simulation(out).n_total == 3


def test_existing_truth_csv_blocks_a_nifti_run(tmp_path, capsys):
    truth = tmp_path / "sim_truth.csv"
    truth.write_text("mine")
    assert simulate("--n", 3, "--seed", 0, "--out", tmp_path / "sim.nii.gz") == 2
    assert "sim_truth.csv already exists" in one_error_line(capsys, "simulate")
    assert truth.read_text() == "mine" and sorted(tmp_path.iterdir()) == [truth]


@pytest.mark.parametrize("where", ["missing_folder", "is_a_folder"])
def test_unwritable_output(tmp_path, capsys, where):
    out = tmp_path / "nope" / "sim.h5" if where == "missing_folder" else tmp_path
    assert simulate("--n", 3, "--seed", 0, "--out", out) == 2
    one_error_line(capsys, "simulate")
    assert list(tmp_path.iterdir()) == []


def test_invivo_preset_writes_concentrations_and_its_prior(tmp_path, capsys):
    out = tmp_path / "invivo.h5"
    assert simulate("--preset", "invivo", "--n", 6, "--seed", 2, "--out", out) == 0
    assert "preset invivo" in capsys.readouterr().out
    sim = read_simulation(out)
    assert sim.fids.shape == (6, 2048)
    assert sim.config["preset"] == "invivo" and sim.config["groups"] == [
        "metabolites",
        "macromolecules",
        "lipids",
    ]
    assert sim.config["snr_range"] == [5.0, 150.0]
    conc = sim.parameters["concentrations_mm"]
    np.testing.assert_allclose(conc, sim.amplitudes)
    naa = sim.metabolites.index("NAA")
    assert np.all((conc[:, naa] >= 0) & (conc[:, naa] <= 34.0))
    assert sim.parameters["damping_per_s"].shape == (6, 3)
    assert np.all((sim.parameters["snr"] >= 5) & (sim.parameters["snr"] <= 150))


def test_invivo_preset_refuses_range_flags(tmp_path, capsys):
    out = tmp_path / "invivo.h5"
    assert simulate("--preset", "invivo", "--n", 2, "--seed", 2, "--out", out, "--snr", 10) != 0
    assert "--snr" in one_error_line(capsys, "simulate") and not out.exists()


def test_invivo_preset_to_nifti_names_its_truth_columns(tmp_path):
    nifti = tmp_path / "invivo.nii.gz"
    assert simulate("--preset", "invivo", "--n", 3, "--seed", 2, "--out", nifti) == 0
    assert read_nifti_mrs(nifti).samples.shape == (1, 1, 1, 3, 2048)
    with open(tmp_path / "invivo_truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    for column in (
        "concentrations_mm_NAA",
        "shift_hz_metabolites",
        "component_amplitudes_mm_Lip13",
    ):
        assert column in rows[0], column
    h5 = tmp_path / "invivo.h5"
    assert simulate("--preset", "invivo", "--n", 3, "--seed", 2, "--out", h5) == 0
    naa = [float(r["concentrations_mm_NAA"]) for r in rows]
    sim = read_simulation(h5)
    np.testing.assert_allclose(naa, sim.amplitudes[:, sim.metabolites.index("NAA")], rtol=1e-6)
