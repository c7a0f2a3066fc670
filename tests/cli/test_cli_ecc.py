"""``fit --ecc`` and ``quantify --ecc``: eddy-current correction by the water reference's phase
(Klose 1990; docs/fit.md "Eddy-current correction"): opt-in, refused without a water
reference and for MRSI with a single-voxel water, said in the conversions and results.json."""

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

SPANT = INVIVO / "philips-press30-spant" / "nifti_spec2nii"


@pytest.fixture(scope="module")
def basis():
    return default_basis()


@pytest.fixture(scope="module")
def simulated(basis):
    return simulate_batch(basis, SimulationConfig(), 1, np.random.default_rng(3))


def _fid(basis, samples):
    acq = basis.acquisition
    return FID(
        samples=samples,
        dwell_time_s=acq.dwell_time_s,
        spectrometer_freq_mhz=acq.spectrometer_freq_mhz,
        ppm_reference=acq.ppm_reference,
    )


def _row(out):
    with open(out / "results.csv", newline="") as f:
        return next(csv.DictReader(f))


def _eddy(basis):
    t = basis.acquisition.time_axis_s()
    return np.exp(1j * 1.0 * np.exp(-t / 0.03)), t


def test_fit_ecc_restores_the_fit_of_undistorted_data(basis, simulated, tmp_path):
    """A spectrum and its water under the same eddy phase ``1 rad exp(-t / 30 ms)``: with
    ``--ecc`` the fit is that of the undistorted spectrum (the correction is exact on a
    noiseless water on resonance); without it, it is not. Said in the conversions, the notes
    and results.json."""
    eddy, t = _eddy(basis)
    clean = simulated.fids[0]
    water = 5e3 * np.exp(-t / 0.05)
    write_lcmodel_raw(tmp_path / "clean.RAW", _fid(basis, clean), name="c")
    write_lcmodel_raw(tmp_path / "clean.H2O", _fid(basis, water), name="w")
    write_lcmodel_raw(tmp_path / "eddy.RAW", _fid(basis, clean * eddy), name="e")
    write_lcmodel_raw(tmp_path / "eddy.H2O", _fid(basis, water * eddy), name="w")
    common = ["--preset", "simulated", "--max-figures", "0", "--threads", "1"]
    runs = {
        "clean": ["fit", str(tmp_path / "clean.RAW")],
        "eddy": ["fit", str(tmp_path / "eddy.RAW")],
        "ecc": ["fit", str(tmp_path / "eddy.RAW"), "--ecc"],
    }
    rows = {}
    for name, args in runs.items():
        assert main([*args, "--out", str(tmp_path / name), *common]) == 0
        rows[name] = _row(tmp_path / name)
    names = ["NAA", "Cr", "GPC", "Ins", "Glu"]
    for name in names:
        assert float(rows["ecc"][name]) == pytest.approx(float(rows["clean"][name]), rel=1e-3)
    off = max(abs(float(rows["eddy"][n]) / float(rows["clean"][n]) - 1) for n in names)
    assert off > 0.01  # the distortion changes the fit: the test can fail
    doc = json.loads((tmp_path / "ecc" / "results.json").read_text())
    (conversion,) = [c for c in doc["inputs"][0]["conversions"] if "eddy-current" in c]
    assert "samples" in conversion
    assert doc["eddy_current_correction"]["method"] == "klose"
    assert doc["eddy_current_correction"]["water_references"][0].endswith("eddy.H2O")
    assert any("eddy-current correction (--ecc)" in n for n in doc["notes"])
    plain = json.loads((tmp_path / "eddy" / "results.json").read_text())
    assert "eddy_current_correction" not in plain
    assert not any("eddy" in c for c in plain["inputs"][0]["conversions"])


@pytest.mark.parametrize("command", ["fit", "quantify"])
def test_ecc_without_water_is_refused(command, basis, simulated, tmp_path, capsys, tiny_checkpoint):
    path = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, simulated.fids[0]))
    out = tmp_path / "out"
    more = ["--model", str(tiny_checkpoint)] if command == "quantify" else []
    assert main([command, str(path), "--ecc", "--out", str(out), *more]) == 2
    line = one_error_line(capsys, command, "--ecc corrects the spectra by the phase")
    assert "give the water reference (--water), or leave out --ecc" in line
    assert not out.exists()


def test_ecc_refusals_name_the_library_options_for_python_callers(basis, simulated, tmp_path):
    """The library names its keywords (ecc=True, water), the CLI its flags."""
    from scaloquant.errors import NeedsOption
    from scaloquant.fit.config import FIT_PRESETS
    from scaloquant.quantify import Options, fit_inputs, read_inputs

    path = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, simulated.fids[0]))
    options = Options(max_figures=0, fit_config=FIT_PRESETS["invivo"], ecc=True)
    with pytest.raises(NeedsOption) as err:
        fit_inputs(read_inputs([path]), basis, basis_name="default", options=options)
    assert "ecc=True corrects the spectra" in str(err.value)
    assert "--" not in str(err.value)


def test_ecc_mrsi_with_a_single_voxel_water_is_refused(basis, simulated, tmp_path, capsys):
    """One voxel's water phase holds that voxel's frequency offset: refused for MRSI."""
    eddy, t = _eddy(basis)
    mrsi = write_nifti_mrs(
        tmp_path / "mrsi.nii.gz",
        _fid(basis, np.stack([simulated.fids[0]] * 2).reshape(2, 1, 1, -1)),
    )
    water, other = (
        write_nifti_mrs(tmp_path / name, _fid(basis, 5e3 * np.exp(-t / 0.05) * eddy))
        for name in ("w.nii.gz", "w2.nii.gz")
    )
    out = tmp_path / "out"
    args = ["fit", str(mrsi), "--water", str(water), "--ecc", "--out", str(out)]
    assert main(args) == 2
    line = one_error_line(capsys, "fit", "--ecc: mrsi.nii.gz is MRSI")
    assert "MRSI water reference of the same grid" in line
    assert "its water reference w.nii.gz a single voxel" in line  # the file's name, as elsewhere
    assert str(tmp_path) not in line
    assert not out.exists()


def test_ecc_water_of_another_length_is_refused(basis, simulated, tmp_path, capsys):
    _, t = _eddy(basis)
    data = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, simulated.fids[0]))
    water = write_nifti_mrs(tmp_path / "w.nii.gz", _fid(basis, 5e3 * np.exp(-t / 0.05)[:1024]))
    out = tmp_path / "out"
    assert (
        main(["fit", str(data), "--water", str(water), "--ecc", "--force", "--out", str(out)]) == 2
    )
    line = one_error_line(capsys, "fit", "eddy-current correction needs the water reference")
    assert "1024 points" in line
    assert not out.exists()


@pytest.mark.skipif(not SPANT.is_dir(), reason=f"needs the shared spant spectrum in {SPANT}")
def test_fit_ecc_on_a_scanner_spectrum(tmp_path):
    """spant's Philips PRESS spectrum with its water (spec2nii NIfTI-MRS): corrected over the
    water's samples above its noise, the water then at the ppm reference, NAA still at 2.01."""
    out = tmp_path / "out"
    args = ["fit", str(SPANT / "metab.nii.gz"), "--water", str(SPANT / "wref.nii.gz"), "--ecc"]
    assert main([*args, "--out", str(out), "--max-figures", "0", "--threads", "1"]) == 0
    doc = json.loads((out / "results.json").read_text())
    (conversion,) = [c for c in doc["inputs"][0]["conversions"] if "eddy-current" in c]
    assert "of 1024 samples" in conversion
    assert doc["eddy_current_correction"]["water_references"] == [str(SPANT / "wref.nii.gz")]
    row = _row(out)
    assert 1.0 < float(row["tNAA_ratio_tcr"]) < 1.6 and row["qc"] == ""


def test_quantify_ecc_says_it_in_the_conversions(basis, simulated, tmp_path, tiny_checkpoint):
    """``quantify --ecc`` corrects before the model's matching, and says so as ``fit`` does."""
    eddy, t = _eddy(basis)
    raw = write_lcmodel_raw(tmp_path / "s.RAW", _fid(basis, simulated.fids[0] * eddy), name="s")
    write_lcmodel_raw(tmp_path / "s.H2O", _fid(basis, 5e3 * np.exp(-t / 0.05) * eddy), name="w")
    out = tmp_path / "out"
    args = ["quantify", str(raw), "--model", str(tiny_checkpoint), "--ecc", "--out", str(out)]
    assert main([*args, "--max-figures", "0"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert any("eddy-current correction" in c for c in doc["inputs"][0]["conversions"])
    assert doc["eddy_current_correction"]["water_references"][0].endswith("s.H2O")


def test_one_water_for_several_inputs_is_said(basis, simulated, tmp_path):
    """--water given once for two inputs under --ecc: both are corrected by that one water's
    phase, right only for spectra of its session, voxel and shim; a note names the water and how
    many inputs it corrected (audit33: Osprey's sub-02 corrected by sub-01's water said
    nothing). One water per input: no such note."""
    eddy, t = _eddy(basis)
    a = write_nifti_mrs(tmp_path / "a.nii.gz", _fid(basis, simulated.fids[0] * eddy))
    b = write_nifti_mrs(tmp_path / "b.nii.gz", _fid(basis, simulated.fids[0] * eddy))
    water, other = (
        write_nifti_mrs(tmp_path / name, _fid(basis, 5e3 * np.exp(-t / 0.05) * eddy))
        for name in ("w.nii.gz", "w2.nii.gz")
    )
    common = ["--ecc", "--preset", "simulated", "--max-figures", "0", "--threads", "1"]
    shared = ["fit", str(a), str(b), "--water", str(water), "--out", str(tmp_path / "one")]
    own = [*shared[:4], str(water), "--water", str(other), "--out", str(tmp_path / "own")]
    assert main([*shared, *common]) == 0
    assert main([*own, *common]) == 0
    said = "--ecc corrected 2 inputs by the one water reference w.nii.gz: right only for"
    notes = json.loads((tmp_path / "one" / "results.json").read_text())["notes"]
    assert [n for n in notes if n.startswith("--ecc corrected")] == [
        next(n for n in notes if n.startswith(said))
    ]
    assert said in (tmp_path / "one" / "summary.md").read_text()
    notes = json.loads((tmp_path / "own" / "results.json").read_text())["notes"]
    assert not [n for n in notes if n.startswith("--ecc corrected")]


def test_ecc_by_a_water_that_does_not_look_like_water_is_refused_under_force(
    basis, simulated, tmp_path, capsys
):
    """The spectrum given as its own water reference: --force lets the mM columns use it (with a
    warning), but its phase is its lines', and --ecc by it is refused (audit33: it "corrected"
    Osprey's sub-01 by its own phase with --force)."""
    path = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, simulated.fids[0]))
    out = tmp_path / "out"
    args = ["fit", str(path), "--water", str(path), "--force", "--ecc", "--out", str(out)]
    assert main(args) == 2
    line = one_error_line(capsys, "fit", "--ecc: the water reference of svs.nii.gz does not look")
    assert "leave out --ecc" in line
    assert not out.exists()
    assert main([*args[:5], "--out", str(out), "--max-figures", "0"]) == 0  # without --ecc
