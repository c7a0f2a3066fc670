"""LCModel's ``.coord`` output read back (:mod:`scaloquant.io.lcmodel_output`): a file LCModel
writes in the test (the peer of ``../shared/peers/lcmodel``, built by its script; skipped where
it cannot be built) on its own reference spectrum, against the ``.table`` of the same run and the
reference figures of ``../shared/data/invivo/README.md``; and files in its layout with every
curve, and the refusals of files that are not one."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from _shared import INVIVO
from scaloquant.errors import InputFileError
from scaloquant.io import read_lcmodel_coord

REPO = Path(__file__).resolve().parents[2]
REFERENCE = INVIVO / "philips-press30-spant" / "lcmodel_reference"


@pytest.fixture(scope="module")
def lcmodel_run(tmp_path_factory):
    """LCModel 6.3 run on the spant spectrum of its reference run, writing its ``.coord``
    (``LCOORD=9``, ``NEACH=999``): ``(coord path, the run's parsed .table)``."""
    if not REFERENCE.is_dir():
        pytest.skip(f"LCModel's reference run is absent ({REFERENCE})")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import _lcmodel as lcm

    try:
        exe = lcm.build()
    except lcm.LCModelError as err:
        pytest.skip(f"the LCModel peer cannot be built here: {err}")
    run = tmp_path_factory.mktemp("lcmodel")
    coord = run / "ref.coord"
    spectrum = lcm.Spectrum(
        "ref", REFERENCE / "data.raw", REFERENCE / "3t.basis", 1024, 5e-4, 127.786142
    )
    settings = replace(lcm.Settings(), extra=("lcoord=9", "neach=999", f"filcoo='{coord}'"))
    outcome = lcm.run_one(exe, spectrum, run, settings)
    assert outcome.result is not None, outcome.error
    return coord, outcome.result


def test_coord_that_lcmodel_wrote_holds_its_table_and_its_fit(lcmodel_run):
    """Known answers: the concentration table equals the ``.table`` of the same run, row by
    row (both are LCModel's printed figures), and gives the reference run's ratios to Cr+PCr
    (``../shared/data/invivo/README.md``); the axis runs from LCModel's PPMST 4.0 ppm down to
    its PPMEND 0.2 (its last point within one step above); the fit is the background plus every
    metabolite's curve less the background, to the rounding of the printed curves (6 digits
    each, 22 curves: 1e-3 of the fit's peak)."""
    path, table = lcmodel_run
    coord = read_lcmodel_coord(path)
    assert coord.provenance == {"source": str(path), "format": "lcmodel-coord"}
    assert dict(coord.table.concentrations) == dict(table.concentrations)
    assert dict(coord.table.percent_sd) == dict(table.percent_sd)
    assert dict(coord.table.ratios) == dict(table.ratios)
    assert dict(coord.table.flags) == dict(table.flags)
    assert coord.table.denominator == table.denominator == "Cr+PCr"
    reference = {"NAA+NAAG": 1.306, "Glu+Gln": 1.510, "Ins": 0.911, "GPC+PCh": 0.250}
    assert {k: coord.table.ratios[k] for k in reference} == reference
    step = coord.ppm[0] - coord.ppm[1]
    assert coord.ppm[0] == 4.0 and 0.2 <= coord.ppm[-1] < 0.2 + step
    assert np.all(np.diff(coord.ppm) < 0)
    assert all(v.shape == coord.ppm.shape for v in (coord.data, coord.fit, coord.background))
    # every metabolite with a positive concentration has its curve (NEACH=999)
    positive = {n for n, c in coord.table.concentrations.items() if c > 0 and "+" not in n}
    assert set(coord.components) == positive
    parts = sum(v - coord.background for v in coord.components.values())
    residual = coord.fit - coord.background - parts
    assert np.abs(residual).max() < 1e-3 * np.abs(coord.fit).max()


def _coord_text(ppm: np.ndarray, blocks: dict[str, np.ndarray], rows: list[str]) -> str:
    """A ``.coord`` file in LCModel's layout (``LCOORD=9``, ``NEACH=999``): the concentration
    table's ``rows``, then its FORMAT statements ``(1X,10F13.6)`` for the axis,
    ``(1X,1P10E13.5)`` for the curves."""

    def lines_of(values: np.ndarray, fmt: str) -> list[str]:
        return [
            " " + "".join(format(v, fmt).rjust(13) for v in values[i : i + 10])
            for i in range(0, values.size, 10)
        ]

    lines = [
        " LCModel (Version 6.3-1N)",
        "",
        f" {len(rows) + 1} lines in following concentration table = NCONC+1",
        "    Conc.  %SD /Cr+PCr  Metabolite",
        *rows,
        "   1 lines in following misc. output table",
        "  FWHM = 0.084 ppm    S/N =  21",
        f" {ppm.size} points on ppm-axis = NY",
    ]
    lines += lines_of(ppm, ".6f")
    titles = {
        "data": " NY phased data points follow",
        "fit": " NY points of the fit to the data follow",
        "background": " NY background values follow",
    }
    for name, values in blocks.items():
        lines.append(titles.get(name, f" {name:6s}   Conc. = 1.00E+00"))
        lines += lines_of(values, ".5E")
    lines += [
        "  0 lines in following diagnostic table:",
        "  2 lines in following table of input changes:",
    ]
    return "\n".join(lines) + "\n"


ROWS = [" 1.91E-06   5%   1.047 NAA", " 7.20E-08 166% 3.9E-02+Ala", "    0.000 999%   0.000 -CrCH2"]


def test_coord_reader_reads_every_curve_and_row(tmp_path):
    rng = np.random.default_rng(0)
    ppm = np.linspace(4.0, 0.2, 23)
    blocks = {k: rng.normal(size=23) for k in ("data", "fit", "background", "NAA", "-CrCH2")}
    path = tmp_path / "x.coord"
    path.write_text(_coord_text(ppm, blocks, ROWS))
    coord = read_lcmodel_coord(path)
    np.testing.assert_allclose(coord.ppm, ppm, atol=1e-6)
    for name in ("data", "fit", "background"):
        np.testing.assert_allclose(getattr(coord, name), blocks[name], rtol=1e-5)
    assert list(coord.components) == ["NAA", "-CrCH2"]
    np.testing.assert_allclose(coord.components["-CrCH2"], blocks["-CrCH2"], rtol=1e-5)
    assert dict(coord.table.concentrations) == {"NAA": 1.91e-06, "Ala": 7.2e-08, "-CrCH2": 0.0}
    assert dict(coord.table.percent_sd) == {"NAA": 5.0, "Ala": 166.0, "-CrCH2": 999.0}
    assert dict(coord.table.ratios) == {"NAA": 1.047, "Ala": 0.039, "-CrCH2": 0.0}
    assert dict(coord.table.flags) == {"Ala": "+"}
    # without NEACH: no curves of their own, and without a background block: zeros
    path.write_text(_coord_text(ppm, {"data": blocks["data"], "fit": blocks["fit"]}, ROWS))
    coord = read_lcmodel_coord(path)
    assert not coord.components and not coord.background.any()


def test_coord_reader_refuses_other_files_and_short_blocks(tmp_path):
    """Each refusal is one line naming the file (InputFileError), nothing returned."""
    path = tmp_path / "x.coord"
    path.write_text("$$CONC 3 lines\n")
    with pytest.raises(InputFileError, match="is not an LCModel .coord file"):
        read_lcmodel_coord(path)
    good = _coord_text(np.linspace(4, 0.2, 12), {"data": np.ones(12), "fit": np.ones(12)}, ROWS)
    cases = {
        "holds 11 numbers, not its NY = 12": good.replace("1.00000E+00\n", "\n", 1),
        "read 2 rows of LCModel's concentration table but it states 3": good.replace(
            ROWS[1], " 7.20E-08 166 percent Ala"
        ),
        "without its phased data or fit block": good.replace(
            "NY points of the fit to the data follow", "NY values of something else"
        ),
    }
    for message, text in cases.items():
        path.write_text(text)
        with pytest.raises(InputFileError, match=message) as err:
            read_lcmodel_coord(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(InputFileError, match="empty"):
        (tmp_path / "empty.coord").write_text("")
        read_lcmodel_coord(tmp_path / "empty.coord")


def test_coord_of_a_run_lcmodel_stopped_names_its_fatal_error(tmp_path):
    """LCModel 6.3 on a FID of zeros writes a .coord of its diagnostics alone (the head below,
    from the peer's run, audit34b); it was refused as 'not an LCModel .coord file'."""
    path = tmp_path / "z.coord"
    path.write_text(
        " LCModel (Version 6.3-1N) Copyright: S.W. Provencher.\n  \n"
        "   1 lines in following diagnostic table:\n"
        "   1 FATAL     FTDATA  1\n"
        "  11 lines in following table of input changes:\n"
        " neach=999\n"
    )
    with pytest.raises(InputFileError) as err:
        read_lcmodel_coord(path)
    message = str(err.value)
    assert "stopped with the fatal error FTDATA 1" in message and str(path) in message
    assert "\n" not in message
