"""LCModel itself (built from ``../shared/peers/lcmodel``, the benchmarks' peer) fits a spectrum
with a ``.BASIS`` that scaloquant wrote as it fits it with the original: the writer's file is
what LCModel reads, not only what our reader reads back.

Three runs against three originals: LCModel's own test case (``test_lcm``: the Philips spant
spectrum and spant's ``3t.basis``, against LCModel 6.3's reference table of it); the Siemens
spectrum with LCModel's GAMMA basis ``press_30ms_3T.basis``, whose ``CONC = 100`` scaloquant's
reader applies as LCModel does (the FIDs scaled by ``TRAMP / (VOLUME * CONC)``; until session 36
it did not, and LCModel's concentrations with our copy were the original's / 100); and the ISMRM 2016 challenge's first spectrum with the basis
written from another format (the jMRUI folder of the same FIDs, conjugated on disk) against
``press3T_30ms.BASIS``.

Tolerance: LCModel prints 3 significant digits (``7.20E-08``, ``2.997``): two prints of one
value differ by at most half a unit in the third digit, 0.5 % of a value near 1.00; 6e-3 of the
value, plus 1e-3 of the largest row for the rows it prints as 0. %SD (integers) within 1.
Measured: every row equal to the print except two of the jMRUI run, -CrCH2 0.765 vs 0.764 and
Lip20 0.00345 vs 0.00344 (the jMRUI files print 6 digits: FIDs 1.5e-6 of their largest apart),
and LCModel's simulated MM/lipid rows of the test case (see its test: spant's basis lacks the
zero fill that ours has).
Skipped where the peer's source, the data or gfortran (which the build script would install)
is absent."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from _shared import CHALLENGE, INVIVO, ISMRM2016_BASIS, SHARED
from scaloquant.io import read_basis, read_fid, write_lcmodel_basis

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import _lcmodel as lcm  # noqa: E402

TEST_CASE = SHARED / "peers/lcmodel/test_lcm"
REFERENCE = INVIVO / "philips-press30-spant/lcmodel_reference/out_ref_build_table.csv"
SIEMENS = INVIVO / "siemens-press30-suspect"
CHALLENGE_BASIS = ISMRM2016_BASIS / "lcmodel/press3T_30ms.BASIS"
#: The challenge's grid (its .RAW files lack it): 4000 Hz and the basis' HZPPPM.
CHALLENGE_GRID = {"dwell_time_s": 2.5e-4, "spectrometer_freq_mhz": 123.261703}
RTOL, ATOL_OF_LARGEST, SD_POINTS = 6e-3, 1e-3, 1.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TEST_CASE.is_dir(), reason=f"LCModel's peer is not at {TEST_CASE}"),
]


def needs(*paths: Path) -> None:
    for path in paths:
        if not path.exists():
            pytest.skip(f"{path} is absent (../shared data are not in this checkout)")


@pytest.fixture(scope="module")
def lcmodel_exe() -> Path:
    """LCModel's executable, built once by the peer's script (cached in the user's folder)."""
    if shutil.which("gfortran") is None:
        pytest.skip("gfortran is missing: LCModel cannot be built (apt-get install gfortran)")
    return lcm.build()


def fit(exe: Path, spectrum: lcm.Spectrum, folder: Path) -> lcm.Result:
    outcome = lcm.run_one(exe, spectrum, folder, lcm.Settings())
    assert outcome.result is not None, outcome.error
    return outcome.result


def assert_same_fit(
    expected: dict[str, float],
    expected_sd: dict[str, float],
    got: lcm.Result,
    rows: list[str] | None = None,
) -> None:
    """Every row of ``expected`` in ``got`` to LCModel's print; the same rows
    in both unless ``rows`` names those compared."""
    if rows is None:
        assert set(got.concentrations) == set(expected)
    largest = max(abs(v) for v in expected.values())
    for name, value in expected.items():
        assert got.concentrations[name] == pytest.approx(
            value, rel=RTOL, abs=ATOL_OF_LARGEST * largest
        ), name
        assert abs(got.percent_sd[name] - expected_sd[name]) <= SD_POINTS, name


def test_lcmodel_test_case_with_our_basis_gives_its_reference_table(lcmodel_exe, tmp_path):
    """The rows of the basis' metabolites (and their sums) are the reference's. LCModel's own
    simulated macromolecules and lipids (MM09 ... Lip20) come out 2.3-2.5 % larger: spant wrote
    3t.basis without LCModel's zero fill (NDATAB = 1024 = the FID's points), ours has it (2048,
    as makebasis, the GAMMA and ISMRM 2016 bases), and LCModel scales its simulated components
    by a basis area on the basis' own grid. Measured: the same FIDs written with NDATAB = 1024
    give the reference to the digit; 4 % bounds that layout effect, and a sign or scale error
    in the metabolites would miss the first check by far more."""
    needs(REFERENCE)
    basis = read_basis(TEST_CASE / "3t.basis")
    ours = write_lcmodel_basis(tmp_path / "3t.basis", basis)
    # 3t.basis' grid (1024 points, 0.5 ms, 127.786142 MHz), as test_lcm/control.file states it
    spectrum = lcm.Spectrum("ours", TEST_CASE / "data.raw", ours, 1024, 5e-4, 127.786142)
    got = fit(lcmodel_exe, spectrum, tmp_path / "run")
    with REFERENCE.open() as f:
        rows = list(csv.DictReader(f))
    conc = {r["metabolite"]: float(r["conc_au"]) for r in rows}
    sd = {r["metabolite"]: float(r["pct_SD"]) for r in rows}
    assert set(got.concentrations) == set(conc)
    ours_rows = [n for n in conc if set(n.split("+")) <= set(basis.names)]
    simulated = [n for n in conc if n not in ours_rows and conc[n] > 0]
    assert len(ours_rows) == 21 and "MM09" in simulated
    assert_same_fit({n: conc[n] for n in ours_rows}, sd, got, rows=ours_rows)
    for name in simulated:
        assert 1.0 < got.concentrations[name] / conc[name] < 1.04, name


def test_siemens_spectrum_with_our_gamma_basis_as_with_lcmodels(lcmodel_exe, tmp_path):
    original = SIEMENS / "press_30ms_3T.basis"
    nifti = SIEMENS / "nifti/SVS_30_rda.nii.gz"
    needs(original, nifti)
    fid = read_fid(nifti)
    raw = lcm.write_raw(
        tmp_path / "siemens.RAW",
        np.asarray(nib.load(str(nifti)).dataobj).reshape(-1),  # on disk: LCModel's orientation
        dwell_time_s=fid.dwell_time_s,
        spectrometer_freq_mhz=fid.spectrometer_freq_mhz,
        name="siemens",
    )
    ours = write_lcmodel_basis(tmp_path / "ours.basis", read_basis(original))
    grid = (fid.n_points, fid.dwell_time_s, fid.spectrometer_freq_mhz)
    theirs = fit(lcmodel_exe, lcm.Spectrum("theirs", raw, original, *grid, echo_time_ms=30.0),
                 tmp_path / "theirs")  # fmt: skip
    got = fit(lcmodel_exe, lcm.Spectrum("ours", raw, ours, *grid, echo_time_ms=30.0),
              tmp_path / "ours")  # fmt: skip
    # LCModel divides the original by its CONC = 100; our reader does too, and our copy
    # states CONC = 1: the same concentrations (the reader without the scale: / 100)
    assert "CONC =  100." in original.read_text()
    assert "CONC = 1." in ours.read_text()
    assert_same_fit(dict(theirs.concentrations), dict(theirs.percent_sd), got)


def test_challenge_spectrum_with_our_basis_from_jmrui_files(lcmodel_exe, tmp_path):
    raw = CHALLENGE / "datasets_LCModel/dataset1.RAW"
    needs(raw, CHALLENGE_BASIS, ISMRM2016_BASIS / "jmrui")
    original = read_basis(CHALLENGE_BASIS)
    jmrui = read_basis(ISMRM2016_BASIS / "jmrui", **CHALLENGE_GRID).subset(original.names)
    ours = write_lcmodel_basis(tmp_path / "jmrui.BASIS", jmrui)
    n_points = read_fid(raw, **CHALLENGE_GRID).n_points
    grid = (n_points, CHALLENGE_GRID["dwell_time_s"], CHALLENGE_GRID["spectrometer_freq_mhz"])
    theirs = fit(lcmodel_exe, lcm.Spectrum("theirs", raw, CHALLENGE_BASIS, *grid, echo_time_ms=30.0),
                 tmp_path / "theirs")  # fmt: skip
    got = fit(lcmodel_exe, lcm.Spectrum("ours", raw, ours, *grid, echo_time_ms=30.0),
              tmp_path / "ours")  # fmt: skip
    assert_same_fit(dict(theirs.concentrations), dict(theirs.percent_sd), got)
