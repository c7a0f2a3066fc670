"""Known answer: an analytic Lorentzian at 2.01 ppm lands at 2.01 ppm after every writer/reader
and from files written in each foreign convention.

Tolerance: +-0.005 ppm (0.6 Hz at 123.2 MHz). The peak finder (16x zero fill, parabolic vertex)
is exact to < 0.001 Hz on this grid (checked below), and the 6-digit LCModel print adds < 1e-5
relative error; a sign error would put the peak at 4.65 + 2.64 = 7.29 ppm, a wrong ppm
reference or frequency unit moves it by > 0.01 ppm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from scaloquant.errors import InputFileError, InvalidDataError
from scaloquant.io import lcmodel as lcmodel_io
from scaloquant.io import (
    read_basis,
    read_basis_npz,
    read_fid,
    read_fsl_basis,
    read_lcmodel_basis,
    read_lcmodel_raw,
    read_nifti_mrs,
    read_text_fid,
    write_basis_npz,
    write_fsl_basis,
    write_lcmodel_raw,
    write_nifti_mrs,
)
from scaloquant.signal import axes
from scaloquant.signal.peaks import main_peak_ppm
from scaloquant.types import FID, BasisSet

DWELL_S = 2.5e-4
MHZ = 123.2
N = 2048
PPM = 2.01
TOL_PPM = 0.005
GRID = {"dwell_time_s": DWELL_S, "spectrometer_freq_mhz": MHZ}


def lorentzian(shift_ppm: float = PPM, damping_per_s: float = 10.0) -> np.ndarray:
    """Internal convention: exp(+2 pi i f t) appears at +f Hz = ppm_reference + f / MHz."""
    t = axes.time_axis_s(N, DWELL_S)
    f_hz = axes.ppm_to_hz(shift_ppm, MHZ, 4.65)
    return 3.0 * np.exp((-damping_per_s + 2j * np.pi * f_hz) * t)


def peak(
    samples: np.ndarray,
    mhz: float = MHZ,
    ppm_reference: float = 4.65,
    ppm_range: tuple[float, float] = (0.2, 4.3),
) -> np.ndarray:
    return main_peak_ppm(samples, DWELL_S, mhz, ppm_reference, ppm_range=ppm_range)


def assert_peak(fid: FID, expected: float = PPM, ppm_range=(0.2, 4.3)) -> None:
    assert fid.dwell_time_s == pytest.approx(DWELL_S)
    assert fid.spectrometer_freq_mhz == pytest.approx(MHZ)
    found = peak(fid.samples, fid.spectrometer_freq_mhz, fid.ppm_reference, ppm_range)
    np.testing.assert_allclose(found, expected, atol=TOL_PPM)


@pytest.fixture
def fid() -> FID:
    return FID(lorentzian(), DWELL_S, MHZ, 4.65, provenance={"source": "/x/analytic.RAW"})


def test_peak_finder_is_exact_on_lorentzians():
    shifts = np.linspace(1.0, 4.0, 7)
    fids = np.array(
        [lorentzian(s, damping_per_s=d) for s, d in zip(shifts, np.linspace(6, 30, 7), strict=True)]
    )
    np.testing.assert_allclose(peak(fids), shifts, atol=0.001 / MHZ)  # 0.001 Hz
    # a sign error would be caught: the conjugate line is mirrored about 4.65 ppm
    mirrored = main_peak_ppm(np.conj(lorentzian(3.0)), DWELL_S, MHZ, 4.65, ppm_range=(0.0, 9.0))
    assert mirrored == pytest.approx(6.3, abs=0.001)


# ---- our writers -> our readers -------------------------------------------------------------


def test_lcmodel_raw_round_trip(tmp_path, fid):
    out = write_lcmodel_raw(tmp_path / "lor.RAW", fid, name="Lor")
    back = read_lcmodel_raw(out)  # HZPPPM and DELTAT come back from the header
    assert_peak(back)
    np.testing.assert_allclose(back.samples, fid.samples, rtol=0, atol=1e-7)
    assert back.provenance["name"] == "lor"
    # The file itself is in LCModel's sign: its first rows are conj(fid).
    rows = [
        line.split()
        for line in out.read_text().splitlines()
        if "E" in line and "$" not in line and "=" not in line
    ][:3]
    first = np.array([[float(a), float(b)] for a, b in rows])
    np.testing.assert_allclose(first[:, 0] + 1j * first[:, 1], np.conj(fid.samples[:3]), atol=1e-7)


def test_nifti_round_trip_single_voxel(tmp_path, fid):
    out = write_nifti_mrs(tmp_path / "lor.nii.gz", fid)
    back = read_nifti_mrs(out)
    assert back.samples.shape == (1, 1, 1, N)
    assert_peak(back)
    np.testing.assert_array_equal(back.samples[0, 0, 0], fid.samples)
    header = back.provenance["header"]
    assert header["SpectrometerFrequency"] == [MHZ]
    assert header["ResonantNucleus"] == ["1H"]
    assert header["ConversionMethod"].startswith("scaloquant ")
    assert header["OriginalFile"] == ["analytic.RAW"]


def test_nifti_on_disk_is_the_conjugate_and_nifti_mrs_accessor_gives_internal(tmp_path, fid):
    """NIfTI-MRS Appendix A: on disk the conjugate of the internal (FSL-MRS internal)
    orientation; nifti_mrs's img[:], which FSL-MRS reads through, conjugates back."""
    from nifti_mrs.nifti_mrs import NIFTI_MRS

    out = write_nifti_mrs(tmp_path / "lor.nii", fid)
    on_disk = np.asanyarray(nib.load(out).dataobj)[0, 0, 0]
    np.testing.assert_array_equal(on_disk, np.conj(fid.samples))
    np.testing.assert_array_equal(NIFTI_MRS(str(out))[:][0, 0, 0], fid.samples)


def test_nifti_written_file_is_valid_nifti_mrs(tmp_path, fid):
    from nifti_mrs import validator
    from nifti_mrs.nifti_mrs import NIFTI_MRS

    out = write_nifti_mrs(tmp_path / "lor.nii.gz", fid, extra_header={"EchoTime": 0.03})
    img = NIFTI_MRS(str(out))
    validator.validate_nifti_mrs(img)
    assert img.dwelltime == pytest.approx(DWELL_S)
    assert img.hdr_ext["EchoTime"] == 0.03


def test_nifti_two_d_goes_along_dim5(tmp_path):
    shifts = np.array([1.3, 2.01, 3.03])
    fid = FID(np.array([lorentzian(s) for s in shifts]), DWELL_S, MHZ)
    out = write_nifti_mrs(tmp_path / "dyn.nii.gz", fid)
    assert nib.load(out).shape == (1, 1, 1, N, 3)
    back = read_nifti_mrs(out)
    assert back.samples.shape == (1, 1, 1, 3, N)
    assert back.provenance["dim_tags"] == ["DIM_DYN"]
    np.testing.assert_allclose(peak(back.samples[0, 0, 0]), shifts, atol=TOL_PPM)


def test_nifti_extra_dims_and_tags_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    samples = lorentzian() * (1 + 0.1 * rng.standard_normal((2, 1, 1, 4, 3, 1)))
    fid = FID(samples, DWELL_S, MHZ)
    out = write_nifti_mrs(tmp_path / "mrsi.nii.gz", fid, dim_tags=["DIM_COIL", "DIM_DYN"])
    assert nib.load(out).shape == (2, 1, 1, N, 4, 3)
    back = read_nifti_mrs(out)
    assert back.samples.shape == (2, 1, 1, 4, 3, N)
    assert back.provenance["dim_tags"] == ["DIM_COIL", "DIM_DYN"]
    np.testing.assert_array_equal(back.samples, samples)
    # re-writing a file read from NIfTI keeps its tags
    again = read_nifti_mrs(write_nifti_mrs(tmp_path / "again.nii", back))
    assert again.provenance["dim_tags"] == ["DIM_COIL", "DIM_DYN"]


def test_nifti_samples_copied_by_tiles_are_the_conjugate_in_c_order(tmp_path):
    # shapes that cut the tiles (256 voxels x 64 points) off at every edge, and a round trip
    from scaloquant.io.nifti import _conjugated_c_order

    rng = np.random.default_rng(1)
    for shape in [(1, 1, 1, 7), (300, 1, 1, 130), (40, 9, 2, 3, 65), (3, 5, 1, 2, 2, 129)]:
        on_disk = np.asfortranarray(rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
        moved = np.moveaxis(on_disk, 3, -1)
        out = _conjugated_c_order(moved)
        assert out.flags.c_contiguous
        np.testing.assert_array_equal(out, np.conjugate(moved))
    samples = rng.standard_normal((300, 2, 1, 3, 70)) + 1j * rng.standard_normal((300, 2, 1, 3, 70))
    fid = FID(samples, DWELL_S, MHZ)
    np.testing.assert_array_equal(
        read_nifti_mrs(write_nifti_mrs(tmp_path / "t.nii", fid)).samples, samples
    )


def test_npz_basis_round_trip_is_exact_and_deterministic(tmp_path):
    basis = BasisSet(
        ("A", "B"),
        np.array([lorentzian(2.01), lorentzian(3.0)]),
        DWELL_S,
        MHZ,
        metadata={"echo_time_ms": 30.0},
        provenance={"note": "test"},
    )
    a = write_basis_npz(tmp_path / "a.npz", basis)
    b = write_basis_npz(tmp_path / "b.npz", basis)
    assert a.read_bytes() == b.read_bytes()
    back = read_basis_npz(a)
    np.testing.assert_array_equal(back.fids, basis.fids)
    assert back.names == ("A", "B") and back.metadata["echo_time_ms"] == 30.0
    np.testing.assert_allclose(peak(back.fids), [2.01, 3.0], atol=TOL_PPM)


def test_fsl_basis_round_trip(tmp_path):
    basis = BasisSet(("NAA", "Cr"), np.array([lorentzian(2.01), lorentzian(3.03)]), DWELL_S, MHZ)
    folder = write_fsl_basis(tmp_path / "fsl", basis)
    back = read_basis(folder)
    assert back.names == ("Cr", "NAA")  # FSL-MRS order: sorted file names
    np.testing.assert_allclose(peak(back.fids), [3.03, 2.01], atol=TOL_PPM)


def test_lcmodel_basis_writer_lays_out_what_makebasis_does(tmp_path):
    """Our .BASIS holds the numbers of LCModel's layout (the helper below, as makebasis and the
    ISMRM 2016 basis: orthonormal FFT of conj(fid) zero-filled x2) to the 6 digits that helper
    prints, and reads back to the FIDs to our 9 (9 digits: 1e-7 of the largest sample), with
    the peaks at their ppm, echo time, sequence and line width (FWHMBA, ppm in the file)."""
    fids = np.array([lorentzian(2.01), lorentzian(3.03, damping_per_s=20)])
    meta = {"echo_time_ms": 30.0, "sequence": "PRESS", "fwhm_hz": [2.5, 2.5]}
    basis = BasisSet(("NAA", "Cr"), fids, DWELL_S, MHZ, metadata=meta)
    ours = lcmodel_io.write_lcmodel_basis(tmp_path / "ours.BASIS", basis)
    text = ours.read_text()
    for line in ("FMTBAS = '(6E16.8)'", f"NDATAB = {2 * N}", "CONC = 1.", "ISHIFT = 0"):
        assert line in text
    assert f"FWHMBA = {2.5 / MHZ!r}" in text
    write_lcmodel_basis(tmp_path / "makebasis.BASIS", ["NAA", "Cr"], fids)
    back, theirs = read_basis(ours), read_basis(tmp_path / "makebasis.BASIS")
    np.testing.assert_allclose(back.fids, theirs.fids, atol=2e-5 * np.abs(fids).max())
    np.testing.assert_allclose(back.fids, fids, rtol=0, atol=1e-7 * np.abs(fids).max())
    assert back.names == ("NAA", "Cr")
    assert back.metadata["fwhm_hz"] == pytest.approx([2.5, 2.5], rel=1e-12)
    assert (back.metadata["echo_time_ms"], back.metadata["sequence"]) == (30.0, "PRESS")
    np.testing.assert_allclose(peak(back.fids), [2.01, 3.03], atol=TOL_PPM)


def test_lcmodel_basis_is_scaled_by_tramp_over_volume_and_conc_as_lcmodel_scales_it(tmp_path):
    """LCModel scales each basis spectrum by TRAMP / (VOLUME * CONC) of its $BASIS block
    (LCModel.f: SCALE=TRAMP/(VOLUME*CONC); its GAMMA bases state CONC = 100), so that an
    amplitude is a concentration in its units: Cr stated at CONC = 4, TRAMP = 2 reads as half
    the FID the file holds, NAA (all 1) as written; a value not above 0 is refused in one line
    naming the key and the metabolite, as LCModel stops there; a key a block leaves out keeps
    the value of the block before, as LCModel's namelist reads keep it."""
    fids = np.array([lorentzian(2.01), lorentzian(3.03)])
    basis = BasisSet(("NAA", "Cr"), fids, DWELL_S, MHZ)
    text = lcmodel_io.write_lcmodel_basis(tmp_path / "ours.BASIS", basis).read_text()
    head, naa, cr = text.split(" $BASIS\n")
    assert "'Cr'" in cr and "CONC = 1.," in cr and "TRAMP = 1.," in cr
    (tmp_path / "conc.BASIS").write_text(
        " $BASIS\n".join([head, naa, cr.replace("CONC = 1.,", "CONC = 4.,").replace(
            "TRAMP = 1.,", "TRAMP = 2.,")])
    )  # fmt: skip
    back = read_basis(tmp_path / "conc.BASIS")
    np.testing.assert_allclose(back.fids, fids * [[1.0], [0.5]], atol=1e-7 * np.abs(fids).max())
    assert back.provenance["scaled"] == {"Cr": 0.5}
    assert "scaled" not in read_basis(tmp_path / "ours.BASIS").provenance
    (tmp_path / "zero.BASIS").write_text(
        " $BASIS\n".join([head, naa, cr.replace("VOLUME = 1.,", "VOLUME = 0.,")])
    )
    with pytest.raises(InputFileError, match=r"zero.BASIS: VOLUME = 0 for Cr; LCModel needs"):
        read_basis(tmp_path / "zero.BASIS")
    # a key a block leaves out keeps the earlier block's value (LCModel's namelist reads):
    # CONC = 4 stated for NAA only scales Cr too
    (tmp_path / "carried.BASIS").write_text(
        " $BASIS\n".join([head, naa.replace("CONC = 1.,", "CONC = 4.,"), cr.replace(
            " CONC = 1.,\n", "")])
    )  # fmt: skip
    carried = read_basis(tmp_path / "carried.BASIS")
    np.testing.assert_allclose(carried.fids, fids / 4, atol=1e-7 * np.abs(fids).max())


def test_lcmodel_basis_writer_moves_0_hz_to_4_65_ppm(tmp_path):
    """LCModel takes 0 Hz of a basis as 4.65 ppm: a basis on 4.70 ppm is moved there, so its NAA
    read back (at 4.65) is still at 2.01 ppm; unmoved it would read at 1.96, 10x the tolerance."""
    basis = BasisSet(
        ("NAA",), lorentzian(2.01 - 0.05)[None], DWELL_S, MHZ, ppm_reference=4.70
    )  # 2.01 ppm on a 4.70 ppm reference
    assert peak(basis.fids, ppm_reference=4.70) == pytest.approx([2.01], abs=TOL_PPM)
    back = read_basis(lcmodel_io.write_lcmodel_basis(tmp_path / "moved.BASIS", basis))
    assert back.ppm_reference == 4.65
    np.testing.assert_allclose(peak(back.fids), [2.01], atol=TOL_PPM)


def test_lcmodel_basis_writer_names_as_lcmodel_reads_them(tmp_path):
    """LCModel keeps 6 characters of METABO (MCHMET): MM_measured is written as MM_mea; two
    names that LCModel would read as one are refused, and nothing is written."""
    fids = np.array([lorentzian(0.9), lorentzian(2.01)])
    basis = BasisSet(("MM_measured", "NAA"), fids, DWELL_S, MHZ)
    back = read_basis(lcmodel_io.write_lcmodel_basis(tmp_path / "mm.BASIS", basis))
    assert back.names == ("MM_mea", "NAA")
    np.testing.assert_allclose(back.fids, fids, rtol=0, atol=1e-7 * np.abs(fids).max())
    twins = BasisSet(("Lip13a_1", "Lip13a_2"), fids, DWELL_S, MHZ)
    with pytest.raises(InvalidDataError, match="'Lip13a_1' and 'Lip13a_2' are both 'Lip13a'"):
        lcmodel_io.write_lcmodel_basis(tmp_path / "twins.BASIS", twins)
    long = BasisSet(("NAA",), np.ones((1, 65537), complex), DWELL_S, MHZ)
    with pytest.raises(InvalidDataError, match="at most 65536 points"):
        lcmodel_io.write_lcmodel_basis(tmp_path / "long.BASIS", long)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mm.BASIS"]


# ---- files written in each foreign convention -------------------------------------------------


def test_jmrui_txt_as_jmrui_writes_it(tmp_path):
    """jMRUI text: SamplingInterval in ms, TransmitterFrequency in Hz, samples not conjugated."""
    two = np.array([lorentzian(2.01), lorentzian(3.2)])
    lines = [
        "jMRUI Data Textfile",
        "",
        "Filename: lor.txt",
        "",
        f"PointsInDataset: {N}",
        "DatasetsInFile: 2",
        "SamplingInterval: 2.5E-1",
        f"TransmitterFrequency: {MHZ}E6",
        "MagneticField: 2.9E0",
        "",
        "Signal and FFT",
        "sig(real)\tsig(imag)\tfft(real)\tfft(imag)",
    ]
    for k, sig in enumerate(two, start=1):
        spec = np.fft.fft(sig)
        lines.append(f"Signal {k} out of 2 in file")
        lines += [
            f"{z.real:.8e}\t{z.imag:.8e}\t{s.real:.6e}\t{s.imag:.6e}"
            for z, s in zip(sig, spec, strict=True)
        ]
    path = tmp_path / "lor.txt"
    path.write_text("\n".join(lines) + "\n")
    fid = read_fid(path)
    assert fid.samples.shape == (2, N)
    assert_peak(FID(fid.samples[0], fid.dwell_time_s, fid.spectrometer_freq_mhz))
    np.testing.assert_allclose(peak(fid.samples), [2.01, 3.2], atol=TOL_PPM)


@pytest.mark.parametrize("columns", [2, 4])
def test_text_as_the_ismrm_challenge_writes_it(tmp_path, columns):
    """ISMRM text files hold conj(fid); 4-column files add the water FID in columns 3-4."""
    metab, water = np.conj(lorentzian(2.01)), np.conj(lorentzian(4.65, damping_per_s=5))
    table = np.column_stack([metab.real, metab.imag, water.real, water.imag][:columns])
    path = tmp_path / "lor.txt"
    np.savetxt(path, table, fmt="%.7e")
    assert_peak(read_fid(path, **GRID))
    if columns == 4:
        water_fid = read_text_fid(path, **GRID, signal="water")
        assert_peak(water_fid, expected=4.65, ppm_range=(3.0, 6.0))


@pytest.mark.parametrize("kind", ["jmrui", "text"])
def test_a_text_file_saved_with_a_byte_order_mark_reads_as_without(tmp_path, kind):
    """A UTF-8 byte-order mark (Windows editors save one) before a text FID is not its first
    character: the jMRUI file was refused as not starting with 'jMRUI Data Textfile' and the
    ISMRM text file as not having 2 or 4 columns (audit34b)."""
    sig = lorentzian(2.01)
    plain = tmp_path / "plain.txt"
    if kind == "jmrui":
        head = ["jMRUI Data Textfile", f"PointsInDataset: {N}", "DatasetsInFile: 1"]
        head += ["SamplingInterval: 2.5E-1", f"TransmitterFrequency: {MHZ}E6", "Signal 1 out of 1"]
        rows = [f"{z.real:.8e}\t{z.imag:.8e}\t0\t0" for z in sig]
        plain.write_text("\n".join(head + rows) + "\n")
    else:
        np.savetxt(plain, np.column_stack([np.conj(sig).real, np.conj(sig).imag]), fmt="%.7e")
    marked = tmp_path / f"marked{plain.suffix}"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    grid = {} if kind == "jmrui" else GRID
    np.testing.assert_array_equal(read_fid(marked, **grid).samples, read_fid(plain, **grid).samples)


def test_lcmodel_raw_as_lcmodel_writes_it(tmp_path):
    """A .RAW with only $NMID (as LCModel's bin2raw and the ISMRM files): conj(fid), 8E13.5."""
    values = np.column_stack([np.conj(lorentzian()).real, np.conj(lorentzian()).imag]).ravel()
    rows = ["".join(f"{v:13.5E}" for v in values[i : i + 8]) for i in range(0, values.size, 8)]
    path = tmp_path / "lor.RAW"
    path.write_text(
        " $NMID ID='lor', FMTDAT='(8E13.5)'\n TRAMP=1., VOLUME=1. $END\n" + "\n".join(rows) + "\n"
    )
    assert_peak(read_fid(path, **GRID))


def write_lcmodel_basis(path: Path, names, fids: np.ndarray, mhz: float = MHZ) -> None:
    """A .BASIS as LCModel's makebasis lays it out: orthonormal FFT of conj(fid) zero-filled x2."""
    n_data = 2 * fids.shape[1]
    parts = [
        f" $SEQPAR\n FWHMBA = -1.,\n HZPPPM = {mhz:.6f},\n ECHOT = 30.,\n SEQ = 'PRESS'\n $END\n",
        f" $BASIS1\n IDBASI = 'test',\n FMTBAS = '(6E13.5)',\n BADELT = {DWELL_S:.9g},\n"
        f" NDATAB = {n_data}\n $END\n",
    ]
    for name, fid in zip(names, fids, strict=True):
        spec = np.fft.fft(np.r_[np.conj(fid), np.zeros(fid.size)], norm="ortho")
        values = np.column_stack([spec.real, spec.imag]).ravel()
        rows = ["".join(f"{v:13.5E}" for v in values[i : i + 6]) for i in range(0, values.size, 6)]
        parts.append(
            f" $NMUSED\n FILRAW = '{name}.RAW',\n $END\n $BASIS\n ID = '{name}',\n"
            f" METABO = '{name}',\n CONC = 1.,\n ISHIFT = 0\n $END\n" + "\n".join(rows) + "\n"
        )
    path.write_text("".join(parts))


def test_lcmodel_basis_as_lcmodel_writes_it(tmp_path):
    fids = np.array([lorentzian(2.01), lorentzian(3.03, damping_per_s=20)])
    path = tmp_path / "test.BASIS"
    write_lcmodel_basis(path, ["NAA", "Cr"], fids)
    basis = read_basis(path)
    assert basis.names == ("NAA", "Cr")
    assert basis.n_points == N  # zero fill removed
    assert basis.metadata == {"echo_time_ms": 30.0, "sequence": "PRESS"}
    np.testing.assert_allclose(peak(basis.fids), [2.01, 3.03], atol=TOL_PPM)
    np.testing.assert_allclose(basis.fids, fids, atol=2e-5 * np.abs(fids).max())
    assert read_lcmodel_basis(path).names == basis.names


def test_lcmodel_basis_with_an_empty_namelist_value(tmp_path):
    """spant writes ``ECHOT =  ,`` when it does not know the echo time: a Fortran namelist null
    (the variable keeps its default), read as absent rather than refused."""
    path = tmp_path / "spant.BASIS"
    write_lcmodel_basis(path, ["NAA"], lorentzian()[None])
    path.write_text(path.read_text().replace(" ECHOT = 30.,", " ECHOT =  ,"))
    basis = read_basis(path)
    assert basis.metadata == {"sequence": "PRESS"}
    np.testing.assert_allclose(peak(basis.fids), [PPM], atol=TOL_PPM)


def test_fsl_json_as_fsl_mrs_writes_it(tmp_path):
    """FSL-MRS's internal orientation is ours; it writes basis.conj() (fsl_io.write_fsl_basis_file)
    and conjugates again on reading (readFSLBasisFiles)."""
    fsl_internal = lorentzian()
    stored = fsl_internal.conj()
    folder = tmp_path / "fsl"
    folder.mkdir()
    (folder / "NAA.json").write_text(
        json.dumps(
            {
                "basis": {
                    "basis_re": stored.real.tolist(),
                    "basis_im": stored.imag.tolist(),
                    "basis_dwell": DWELL_S,
                    "basis_centre": MHZ,
                    "basis_width": 3.0,
                    "basis_name": "NAA",
                },
                "meta": {"time": "20240101_000000", "SimVersion": "test"},
            }
        )
    )
    basis = read_fsl_basis(folder)
    assert basis.names == ("NAA",)
    assert basis.metadata["fwhm_hz"] == [3.0]
    np.testing.assert_allclose(peak(basis.fids), [PPM], atol=TOL_PPM)


def test_nifti_built_with_nibabel_following_the_standard(tmp_path):
    """Independent of the nifti-mrs package: NIfTI-2, complex64, intent mrs_v0_2, ext code 44,
    samples in the standard's (Levitt's) orientation, the conjugate of the internal one."""
    data = np.conj(lorentzian()).astype(np.complex64).reshape(1, 1, 1, N)
    img = nib.Nifti2Image(data, affine=np.eye(4))
    img.header["pixdim"][4] = DWELL_S
    img.header.set_xyzt_units(xyz="mm", t="sec")
    img.header["intent_name"] = b"mrs_v0_2"
    ext = {"SpectrometerFrequency": [MHZ], "ResonantNucleus": ["1H"], "EchoTime": 0.03}
    img.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(ext).encode()))
    path = tmp_path / "std.nii.gz"
    nib.save(img, path)
    fid = read_fid(path)
    assert_peak(fid)
    assert fid.provenance["header"]["EchoTime"] == 0.03
    assert fid.ppm_reference == 4.65  # the standard's default for 1H


def test_nifti_ppm_reference_from_header(tmp_path, fid):
    out = write_nifti_mrs(tmp_path / "ref.nii", FID(fid.samples, DWELL_S, MHZ, ppm_reference=4.7))
    back = read_nifti_mrs(out)
    assert back.ppm_reference == pytest.approx(4.7)
    assert_peak(back, expected=PPM + 0.05)


SPEC2NII = shutil.which("spec2nii") or (Path(sys.executable).parent / "spec2nii")


@pytest.mark.skipif(not Path(SPEC2NII).exists(), reason="spec2nii is not installed")
def test_spec2nii_raw_subcommand_writes_the_opposite_orientation(tmp_path):
    """spec2nii's ``raw`` (LCModel) subcommand conjugates the .RAW and stores the result
    unconjugated: the opposite orientation to its vendor converters (and to the standard), a
    known exception (../shared/data/invivo/README.md). Read as it is, the peak is mirrored and
    the mirror check flags it; with ``conjugate=True`` it is the original.

    The .RAW has LCModel's own minimal header ($NMID only): spec2nii (0.8.15) turns a $SEQPAR
    HZPPPM into SpectrometerFrequency in Hz, which the NIfTI-MRS reader refuses as implausible.
    """
    values = np.column_stack([np.conj(lorentzian()).real, np.conj(lorentzian()).imag]).ravel()
    raw = tmp_path / "lor.RAW"
    raw.write_text(
        " $NMID ID='lor', FMTDAT='(2E16.8)' $END\n"
        + "".join(f"{a:16.8E}{b:16.8E}\n" for a, b in values.reshape(-1, 2))
    )
    subprocess.run(
        [
            str(SPEC2NII),
            "raw",
            "-n",
            "1H",
            "-i",
            str(MHZ),
            "-b",
            str(1 / DWELL_S),
            "-f",
            "s2n",
            "-o",
            str(tmp_path),
            str(raw),
        ],
        check=True,
        capture_output=True,
    )
    as_stored = read_fid(tmp_path / "s2n.nii.gz")
    assert_peak(as_stored, expected=2 * 4.65 - PPM, ppm_range=(4.7, 9.0))
    converted = read_fid(tmp_path / "s2n.nii.gz", conjugate=True)
    assert converted.provenance["conjugated"] is True
    assert_peak(converted)
    np.testing.assert_allclose(converted.samples.reshape(-1), lorentzian(), atol=1e-7)
