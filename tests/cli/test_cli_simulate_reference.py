"""``simulate --basis`` of a basis whose ppm reference is off (session 31, ``osref31``): the basis
is simulated with its reference corrected from its singlets as ``fit`` and ``train`` correct it
(:func:`scaloquant.fit.basis_grid.basis_for_data` on its own grid), said on the terminal and in
the file's header as the fit says it. Until then, Osprey's Philips TE 35 basis was simulated on
its file's 4.65 ppm axis with its singlets 0.03 ppm upfield of where the fit puts them; the
known-answer test below failed there (the singlets at nominal - 0.031 ppm, no sentence)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import h5py
import numpy as np
import pytest
import yaml

from _shared import INVIVO
from scaloquant.cli import main
from scaloquant.cli._common import load_basis_as_simulated
from scaloquant.fit.basis_grid import basis_for_data
from scaloquant.formats import ACQUISITION_VALUES
from scaloquant.io import default_basis, read_basis, read_fid, write_basis_npz
from scaloquant.metabolites import canonical
from scaloquant.signal import axes
from scaloquant.signal.peaks import main_peak_ppm

SPANT_BASIS = INVIVO / "philips-press30-spant" / "lcmodel_reference" / "3t.basis"
needs_spant_basis = pytest.mark.skipif(
    not SPANT_BASIS.is_file(), reason=f"needs the shared spant basis {SPANT_BASIS}"
)
#: The known offset: -4 Hz is -0.0313 ppm at the spant basis' 127.786 MHz, Osprey's TE 35
#: basis' -0.030 ppm (3.8 Hz at 127.73 MHz) and more.
SHIFT_HZ = -4.0
#: Singlet, where it belongs (ppm), and a window that holds it both there and moved by
#: SHIFT_HZ (so that a simulation on the uncorrected axis finds it 0.031 ppm off, not nothing).
#: What load_basis reads of the command line (every acquisition flag, here not given).
ACQUISITION_KEYS = list(ACQUISITION_VALUES)
SINGLETS = {"NAA": (2.008, (1.95, 2.06)), "Cr": (3.027, (2.97, 3.08)), "Cho": (3.21, (3.15, 3.26))}
#: The simulated basis signals: the singlets' metabolites only, so that no neighbour (NAAG at
#: 2.04 ppm, within NAA's window) is the tallest point.
SIMULATED = ("NAA", "Cr", "PCr", "GPC", "PCho")


def _shifted_basis(tmp_path):
    """The spant basis with every FID moved by SHIFT_HZ (an exact frequency shift) and still
    labelled 0 Hz = 4.65 ppm, as an .npz file; with the basis itself."""
    basis = read_basis(SPANT_BASIS)
    t = axes.time_axis_s(basis.n_points, basis.dwell_time_s)
    moved = replace(basis, fids=basis.fids * np.exp(2j * np.pi * SHIFT_HZ * t))
    path = tmp_path / "moved.npz"
    write_basis_npz(path, moved)
    return path, moved


def _config(tmp_path, names):
    """No shift and 2/s damping drawn; amplitudes in [0.5, 1] for SIMULATED, 0 for the rest."""
    config = {
        "amplitude_range": [0.0, 0.0],
        "damping_range_per_s": [2.0, 2.0],
        "shift_range_hz": [0.0, 0.0],
        "overrides": {
            n: {"amplitude_range": [0.5, 1.0]} for n in names if canonical(n) in SIMULATED
        },
    }
    path = tmp_path / "singlets.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@needs_spant_basis
def test_simulated_singlets_land_at_their_ppm_when_the_basis_reference_is_off(tmp_path, capsys):
    """A basis whose singlets sit SHIFT_HZ (-0.031 ppm) off on its file's axis: the simulated
    NAA, Cr and Cho singlets sit at 2.008, 3.027 and 3.21 ppm on the written file's own axis
    within 0.003 ppm (the unmoved spant basis places them within 0.001 ppm, measured by
    benchmarks/diag_simulate_reference.py; the correction is rounded to 0.001 ppm; the peak's
    parabola is exact to 0.001 Hz), and the file keeps the basis' grid (4.65 ppm). The
    terminal and the header (NIfTI and HDF5) say what the fit says of that basis, word for
    word."""
    path, moved = _shifted_basis(tmp_path)
    _, fit_says = basis_for_data(moved, moved.acquisition)
    assert len(fit_says) == 2 and fit_says[0].startswith("basis reference taken as 4.681 ppm")
    config = _config(tmp_path, moved.names)
    out = tmp_path / "sim.nii.gz"
    argv = ["simulate", "--n", "4", "--seed", "2", "--out", str(out), "--basis", str(path)]
    assert main([*argv, "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert all(f"basis: {sentence}" in printed for sentence in fit_says), printed
    sim = read_fid(out)
    assert sim.ppm_reference == 4.65 and sim.acquisition == moved.acquisition
    fids = sim.samples.reshape(-1, sim.n_points)
    for name, (nominal, window) in SINGLETS.items():
        ppm = main_peak_ppm(
            fids, sim.dwell_time_s, sim.spectrometer_freq_mhz, sim.ppm_reference, ppm_range=window
        )
        np.testing.assert_allclose(ppm, nominal, atol=0.003, err_msg=name)
    header = sim.provenance["header"]["scaloquant_simulation"]
    assert header["basis_conversions"] == list(fit_says)

    h5 = tmp_path / "sim.h5"
    argv = ["simulate", "--n", "2", "--seed", "2", "--out", str(h5), "--basis", str(path)]
    assert main([*argv, "--preset", "invivo"]) == 0
    with h5py.File(h5) as f:
        assert json.loads(f.attrs["basis_conversions"]) == list(fit_says)
        assert f.attrs["ppm_reference"] == 4.65 and "grid" not in f.attrs


@needs_spant_basis
def test_a_basis_whose_singlets_sit_where_they_belong_is_simulated_as_it_is(tmp_path):
    """The spant basis unmoved (its singlets within 0.001 ppm) and the embedded one: nothing is
    done to them, nothing recorded; the embedded basis' simulation is the one the README's
    figures were made with (the same file to the byte before and after this change: the log's
    session 31 section)."""
    for path in (SPANT_BASIS, None):
        args = argparse.Namespace(override_header=False)
        args.__dict__.update(dict.fromkeys(ACQUISITION_KEYS))
        basis, _, conversions = load_basis_as_simulated(path, args, flag="--basis")
        original = default_basis() if path is None else read_basis(path)
        assert conversions == () and basis.content_hash() == original.content_hash()
    out = tmp_path / "sim.h5"
    assert main(["simulate", "--n", "2", "--seed", "0", "--out", str(out)]) == 0
    with h5py.File(out) as f:
        assert "basis_conversions" not in f.attrs
        assert f.attrs["basis_sha256"] == default_basis().content_hash()
