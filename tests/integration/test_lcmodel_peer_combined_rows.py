"""LCModel itself (built from ``../shared/peers/lcmodel``, the benchmarks' peer) prints the combined
row the benchmarks' control file asks for where the basis spells a part otherwise than its
defaults, and the peer's reader reads it from the real ``.table``.

The run: LCModel's own test case (``test_lcm``: the Philips spant spectrum and ``3t.basis``)
with the basis' ``PCh`` renamed ``PCho``, as the ISMRM 2016 basis names it. LCModel's default
``GPC+PCh`` then finds no ``PCh``; the control file's ``chcomb(17)='GPC+PCho'`` gives the row
back, and every row must equal LCModel 6.3's reference table of the same spectrum with
``3t.basis`` as it is (``lcmodel_reference/out_ref_build_table.csv``): the renaming changes no
number, only the name. Skipped where the peer's source, the reference or gfortran (which the
build script would install) is absent."""

from __future__ import annotations

import csv
import re
import shutil
import sys
from pathlib import Path

import pytest

from _shared import INVIVO, SHARED

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import _lcmodel as lcm  # noqa: E402
import bench_lcmodel  # noqa: E402

PEER = SHARED / "peers/lcmodel"
TEST_CASE = PEER / "test_lcm"
REFERENCE = INVIVO / "philips-press30-spant/lcmodel_reference/out_ref_build_table.csv"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TEST_CASE.is_dir(), reason=f"LCModel's peer is not at {PEER}"),
    pytest.mark.skipif(
        not REFERENCE.is_file(), reason=f"LCModel's reference is not at {REFERENCE}"
    ),
]


@pytest.fixture(scope="module")
def lcmodel_exe() -> Path:
    """LCModel's executable, built once by the peer's script (cached in the user's folder)."""
    if shutil.which("gfortran") is None:
        pytest.skip("gfortran is missing: LCModel cannot be built (apt-get install gfortran)")
    return lcm.build()


def test_lcmodel_prints_the_combined_row_asked_for_in_the_basis_spelling(lcmodel_exe, tmp_path):
    basis = tmp_path / "pcho.basis"
    text = (TEST_CASE / "3t.basis").read_text()
    basis.write_text(re.sub(r"METABO\s*=\s*'PCh'", "METABO = 'PCho'", text))
    # 3t.basis' grid (1024 points, 0.5 ms, 127.786142 MHz), as test_lcm/control.file states it
    spectrum = lcm.Spectrum("pcho", TEST_CASE / "data.raw", basis, 1024, 5e-4, 127.786142)
    outcome = lcm.run_one(lcmodel_exe, spectrum, tmp_path / "run", lcm.Settings())
    assert outcome.error is None, outcome.error
    assert "chcomb(17)='GPC+PCho'" in outcome.files["control"].read_text()
    result = outcome.result

    with REFERENCE.open() as f:
        reference = {row["metabolite"].replace("PCh", "PCho"): row for row in csv.DictReader(f)}
    # every row of the reference, renamed, and no other: GPC+PCho where GPC+PCh was
    assert set(result.concentrations) == set(reference)
    for name, row in reference.items():
        assert result.concentrations[name] == float(row["conc_au"]), name
        assert result.percent_sd[name] == float(row["pct_SD"]), name
        assert result.ratios[name] == pytest.approx(float(row["ratio_to_CrPCr"]), abs=5e-4), name
    # the benchmark finds scaloquant's tCho in that row, and its ratio in it
    names = list(result.concentrations)
    assert bench_lcmodel.lcmodel_row_name("tCho", names) == "GPC+PCho"
    assert bench_lcmodel.group_ratios(result.concentrations)["tCho"] == pytest.approx(
        result.concentrations["GPC+PCho"] / result.concentrations["Cr+PCr"]
    )
    # LCModel's %SD of a sum comes from its covariance, not from its parts in quadrature:
    # NAA 5 %, NAAG 16 % would give 5 % for an uncorrelated sum; anticorrelated, it is 3 %
    naa, naag = (result.concentrations[n] * result.percent_sd[n] / 100 for n in ("NAA", "NAAG"))
    quadrature = 100 * (naa**2 + naag**2) ** 0.5 / result.concentrations["NAA+NAAG"]
    assert result.percent_sd["NAA+NAAG"] == 3.0 and quadrature > 4.5
