"""HDF5 simulation files: layout, round trip, byte-identical reruns, clear errors."""

import hashlib
import time

import h5py
import numpy as np
import pytest

from scaloquant import __version__
from scaloquant.errors import InputFileError, OutputExistsError
from scaloquant.io.hdf5 import read_simulation, write_simulation
from scaloquant.signal import lineshapes
from scaloquant.simulate import SimulationConfig, simulate_dataset
from scaloquant.types import BasisSet, SignalSet

N, DWELL_S, MHZ, REF = 128, 5e-4, 123.26, 4.65
CONFIG = SimulationConfig.from_dict({"snr": [20, 40], "phase0_range_deg": [-10, 10]})


@pytest.fixture(scope="module")
def basis():
    fids = [
        lineshapes.singlet_fid(N, DWELL_S, MHZ, REF, ppm, damping_per_s=20.0) for ppm in (3.0, 2.0)
    ]
    return BasisSet(["Cr", "NAA"], np.array(fids), DWELL_S, MHZ, REF)


def write(path, basis, n=30, seed=4, chunk_size=8, **kwargs):
    chunks = simulate_dataset(basis, CONFIG, n, seed, chunk_size=chunk_size)
    return write_simulation(
        path,
        chunks,
        n_signals=n,
        basis=basis,
        basis_name="two singlets",
        config=CONFIG.to_dict(),
        seed=seed,
        **kwargs,
    )


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_matches_the_issue(tmp_path, basis):
    path = write(tmp_path / "sim.h5", basis)
    with h5py.File(path, "r") as f:
        assert f["fids"].shape == (30, N) and f["fids"].dtype == np.complex64
        assert f["amplitudes"].shape == (30, 2) and f["amplitudes"].dtype == np.float32
        for name in (
            "damping_per_s",
            "shift_hz",
            "snr",
            "noise_sd",
            "phase0_deg",
            "reference_height",
        ):
            assert f[name].shape[0] == 30
        assert list(f.attrs["metabolites"]) == ["Cr", "NAA"]
        assert f.attrs["dwell_time_s"] == DWELL_S and f.attrs["spectrometer_freq_mhz"] == MHZ
        assert f.attrs["ppm_reference"] == REF and f.attrs["seed"] == 4
        assert f.attrs["scaloquant_version"] == __version__
        assert f.attrs["basis_sha256"] == basis.content_hash()
    assert not list(tmp_path.glob(".sim.h5*"))  # no temporary file left


def test_round_trip(tmp_path, basis):
    path = write(tmp_path / "sim.h5", basis)
    want = SignalSet.concatenate(list(simulate_dataset(basis, CONFIG, 30, 4)))
    got = read_simulation(path)
    assert got.fids.shape == (30, N)
    np.testing.assert_array_equal(got.fids, want.fids.astype(np.complex64))
    assert (
        got.acquisition.dwell_time_s,
        got.acquisition.spectrometer_freq_mhz,
        got.acquisition.ppm_reference,
    ) == (
        DWELL_S,
        MHZ,
        REF,
    )
    np.testing.assert_array_equal(got.amplitudes, want.amplitudes.astype(np.float32))
    assert set(got.parameters) == set(want.columns()) - {"amplitudes"}
    np.testing.assert_allclose(got.parameters["snr"], want.parameters["snr"], rtol=1e-7)
    assert got.metabolites == ("Cr", "NAA") and got.seed == 4 and got.version == __version__
    assert SimulationConfig.from_dict(got.config) == CONFIG
    assert got.basis_name == "two singlets" and got.n_total == 30


@pytest.mark.parametrize(
    ("index", "rows"),
    [(3, [3]), (-1, [29]), (slice(5, 9), [5, 6, 7, 8]), (np.array([7, 2, 7, 0]), [7, 2, 7, 0])],
)
def test_index_selects_rows(tmp_path, basis, index, rows):
    path = write(tmp_path / "sim.h5", basis)
    everything = read_simulation(path)
    part = read_simulation(path, index=index)
    np.testing.assert_array_equal(part.indices, rows)
    np.testing.assert_array_equal(part.fids, everything.fids[rows])
    np.testing.assert_array_equal(part.amplitudes, everything.amplitudes[rows])
    np.testing.assert_array_equal(
        part.parameters["shift_hz"], everything.parameters["shift_hz"][rows]
    )


def test_index_out_of_range(tmp_path, basis):
    with pytest.raises(IndexError, match="out of range for a file of 30 signals"):
        read_simulation(write(tmp_path / "sim.h5", basis), index=30)


def test_same_seed_gives_a_byte_identical_file(tmp_path, basis):
    first = write(tmp_path / "a.h5", basis, chunk_size=8)
    time.sleep(1.1)  # a creation time in seconds, if any were stored, would now differ
    second = write(tmp_path / "b.h5", basis, chunk_size=13)
    assert sha256(first) == sha256(second)
    assert sha256(write(tmp_path / "c.h5", basis, seed=5)) != sha256(first)


def test_existing_output_is_untouched_without_overwrite(tmp_path, basis):
    path = tmp_path / "sim.h5"
    path.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write(path, basis)
    assert path.read_bytes() == b"precious"
    write(path, basis, overwrite=True)
    assert read_simulation(path).n_total == 30


def test_failed_write_leaves_no_file(tmp_path, basis):
    def broken():
        chunks = simulate_dataset(basis, CONFIG, 30, 0, chunk_size=8)
        yield next(iter(chunks))
        raise OSError(28, "No space left on device")

    with pytest.raises(InputFileError, match="cannot write .*free disk space"):
        write_simulation(
            tmp_path / "sim.h5",
            broken(),
            n_signals=30,
            basis=basis,
            basis_name="x",
            config={},
            seed=0,
        )
    assert list(tmp_path.iterdir()) == []


def test_missing_garbled_truncated_and_foreign_files(tmp_path, basis):
    with pytest.raises(InputFileError, match="does not exist"):
        read_simulation(tmp_path / "nope.h5")
    garbled = tmp_path / "garbled.h5"
    garbled.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(InputFileError, match="not a readable HDF5 file"):
        read_simulation(garbled)
    good = write(tmp_path / "sim.h5", basis)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputFileError) as err:
        read_simulation(truncated)
    assert "\n" not in str(err.value)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(InputFileError, match="no dataset 'fids'"):
        read_simulation(foreign)
