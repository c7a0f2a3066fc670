"""The report's content from a hand-made run: combined metabolites, %SD marks, per-spectrum
columns found without knowing their names, facts said once, and the page's structure."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from scaloquant.quantify import Run, SpectraInput, SpectraResult
from scaloquant.report import (
    format_pct,
    format_value,
    input_facts,
    metabolite_table,
    report_header,
    report_html,
    report_markdown,
    run_spectrum_columns,
)
from scaloquant.report.check import ReportPage
from scaloquant.report.content import row_labels, row_titles
from scaloquant.types import FID

NAMES = ("NAA", "NAAG", "Cr", "PCr", "Glu")


def _input(name: str, n: int, water: str | None = None) -> SpectraInput:
    fid = FID(np.ones((n, 64), dtype=complex), 2.5e-4, 123.2)
    return SpectraInput(Path(name), fid, None, None if water is None else Path(water), None, ())


def _result(name, amplitudes, sd, *, warnings=(), water=None, cls=SpectraResult, **extra):
    amplitudes = np.asarray(amplitudes, dtype=float)
    total = amplitudes[:, 2:4].sum(axis=1, keepdims=True)
    columns = {
        "": amplitudes,
        "_crlb_sd": np.asarray(sd, dtype=float),
        "_ratio_tcr": amplitudes / total,
    }
    inp = _input(name, len(amplitudes), water)
    return cls(inp, inp.fid, ("zero-filled to 64 points",), tuple(warnings), columns, **extra)


def _run(*results) -> Run:
    return Run(
        command="fit",
        names=NAMES,
        results=tuple(results),
        suffixes=("", "_crlb_sd", "_ratio_tcr"),
        sd_suffix="_crlb_sd",
        notes=("ratios are to total creatine, Cr + PCr",),
        facts={"basis_name": "test basis"},
    )


def _simple_run() -> Run:
    a = _result("a.RAW", [[10, 2, 6, 2, 8]], [[1, 0.2, 0.6, 0.2, 4]], water="a.H2O")
    b = _result("b.RAW", [[12, 0, 5, 3, 9]], [[1.2, 0.3, 0.5, 0.3, 0.9]], warnings=["odd"])
    return _run(a, b)


def test_combined_metabolites_are_sums_with_quadrature_sd():
    table = metabolite_table(_simple_run())
    assert table.names == ("tNAA", "tCr", *NAMES)  # Glx needs Gln, tCho GPC and PCho
    assert table.combined == 2 and table.units == ("ratio", "amplitude")
    np.testing.assert_allclose(table.values["amplitude"][:, 0], [12, 12])
    np.testing.assert_allclose(table.values["ratio"][:, 1], [1, 1])
    np.testing.assert_allclose(table.pct_sd[0, 0], 100 * np.hypot(1, 0.2) / 12)
    # %SD > 20 marked: Glu of a (50%), NAAG of b (zero amplitude, infinite %SD)
    assert table.unreliable[0].tolist() == [False, False, False, False, False, False, True]
    assert table.unreliable[1, 3]


def test_a_combined_column_of_the_run_is_used_as_it_is():
    run = _simple_run()
    names = ("tNAA", *NAMES[2:])  # a basis with one tNAA spectrum instead of NAA and NAAG
    results = tuple(
        dataclasses.replace(r, columns={k: v[:, [0, 2, 3, 4]] for k, v in r.columns.items()})
        for r in run.results
    )
    table = metabolite_table(dataclasses.replace(run, names=names, results=results))
    assert table.names == ("tNAA", "tCr", "Cr", "PCr", "Glu") and table.combined == 2
    np.testing.assert_allclose(table.values["amplitude"][:, 0], [10, 12])
    np.testing.assert_allclose(table.pct_sd[:, 0], [10, 10])


def test_facts_shared_by_every_input_are_said_once():
    facts = input_facts(_simple_run())
    assert [k for k, _ in facts.shared] == ["acquisition", "conversion"]
    assert facts.shared_by == "all 2 inputs"
    assert set(facts.partial) == {
        ("water", "water reference a.H2O", ("a.RAW",)),
        ("warning", "odd", ("b.RAW",)),
        ("water", "no water reference", ("b.RAW",)),
    }


@dataclasses.dataclass(frozen=True)
class _WithQuality(SpectraResult):
    """A result with the per-spectrum columns another change adds (names unknown here)."""

    quality: dict = dataclasses.field(default_factory=dict)
    qc: tuple = ()


def test_per_spectrum_columns_are_found_and_shown():
    a = _result(
        "mrs.RAW",
        [[10, 2, 6, 2, 8], [11, 2, 6, 2, 8]],
        [[1, 1, 0.6, 0.5, 0.4]] * 2,
        cls=_WithQuality,
        quality={"snr": np.array([25.0, 3.0]), "fwhm_ppm": np.array([0.05, 0.2])},
        qc=("", "low_snr;broad"),
    )
    run = _run(a)
    cols = run_spectrum_columns(run)
    assert list(cols) == ["snr", "fwhm_ppm", "qc"]
    assert cols["qc"] == ["", "low_snr;broad"]
    page = report_html(run, report_header(run, version="0", created_utc="now"))
    assert "<th class='qc'>snr</th>" in page and "low_snr, broad" in page
    assert "| snr | fwhm_ppm | qc |" in report_markdown(
        run, report_header(run, version="0", created_utc="now")
    )
    # and without them, no such columns
    assert run_spectrum_columns(_simple_run()) == {}


@pytest.mark.parametrize("with_mM", [False, True])
def test_page_has_one_overview_row_per_spectrum(with_mM):
    run = _simple_run()
    if with_mM:
        results = tuple(
            dataclasses.replace(r, columns={**r.columns, "_mM": 2 * r.columns[""]})
            for r in run.results
        )
        run = dataclasses.replace(run, results=results, suffixes=(*run.suffixes, "_mM"))
    header = report_header(run, version="9.9", created_utc="2026-01-01T00:00:00+00:00")
    page = report_html(run, header, {(1, 0): b"\x89PNG fake"})
    parsed = ReportPage(page)
    assert parsed.rows["overview"] == 2
    assert ("overview-mM" in parsed.rows) is False  # the first table is the mM one
    assert ("overview-ratio" in parsed.rows) is with_mM
    assert "concentration (mM" in page if with_mM else "ratio to total creatine" in page
    assert "data:image/png;base64," in page and "#fit-1-0" in parsed.urls
    assert not parsed.external_urls
    assert page.count("zero-filled to 64 points") == 1  # shared: said once
    assert "scaloquant fit a.RAW b.RAW" in page and "9.9" in page


def test_numbers_read_as_in_lcmodel_tables():
    assert [format_value(v, "ratio") for v in (0.00546, 0.9996, 1.234, np.nan)] == [
        "0.005",
        "1.00",
        "1.23",
        "–",
    ]
    assert [format_value(v) for v in (1.234e-6, 12345.6)] == ["1.23e-06", "12346"]
    # 3 significant digits with their trailing zeros: the summary of spant's spectrum read
    # NAA "13" beside tNAA "13.8" mM, Gln "2.9", sIns "1" (session 34, `audit34`)
    assert [format_value(v, "mM") for v in (13.04, 2.9, 0.9996, 100.2, 999.7)] == [
        "13.0",
        "2.90",
        "1.00",
        "100",
        "1000",
    ]
    assert [format_value(v) for v in (1.1e-5, 2.0, 0.0, -0.0)] == ["1.10e-05", "2.00", "0", "0"]
    assert [format_pct(v) for v in (19.6, np.inf, np.nan)] == ["20%", ">999%", "–"]


def test_water_reference_figures_form_one_table_not_a_sentence_each():
    """Each input's measured water peak (28 for the challenge) is a row of one small table, not
    a sentence each above the overview; inputs without a measured water reference have none."""
    figures = {"fwhm_hz": 6.04, "fwhm_ppm": 0.049, "water_ratio": 1554.4}
    a = _result("a.RAW", [[10, 2, 6, 2, 8]], [[1, 0.2, 0.6, 0.2, 4]], water="a.H2O")
    a = dataclasses.replace(a, water_quality=figures)
    b = _result("b.RAW", [[12, 0, 5, 3, 9]], [[1.2, 0.3, 0.5, 0.3, 0.9]])
    run = _run(a, b)
    facts = input_facts(run)
    assert facts.water == (("a.RAW", "a.H2O", "6.0", "0.049", "1554x"),)
    assert not any("FWHM" in text for _, text in facts.shared + tuple(p[:2] for p in facts.partial))
    header = report_header(run, version="0", created_utc="now")
    html = report_html(run, header)
    assert "<table class='water'>" in html and "<td>1554x</td>" in html
    assert "| a.RAW | a.H2O | 6.0 | 0.049 | 1554x |" in report_markdown(run, header)


def test_a_spectrum_beyond_the_voxel_grid_is_named_by_its_dimension():
    """A NIfTI-MRS of 8 transients titled its figures "voxel 0,0,0,3", a voxel of no grid
    (session 34, ``audit34``): each index past x, y, z is named by its dimension's tag."""
    fid = FID(np.ones((1, 1, 1, 2, 3, 64), dtype=complex), 2.5e-4, 123.2)
    tags = ("DIM_COIL", "DIM_DYN")
    inp = SpectraInput(Path("t.nii.gz"), fid, None, None, np.eye(4), tags)
    result = SpectraResult(inp, fid, (), (), {"": np.ones((6, len(NAMES)))})
    run = _run(result)
    assert row_titles(run, [(0, 5)]) == ["t.nii.gz, voxel 0,0,0, DIM_COIL 1, DIM_DYN 2"]
    assert row_labels(run, [(0, 0)]) == {"spectrum": ["voxel 0,0,0, DIM_COIL 0, DIM_DYN 0"]}
    mrsi = SpectraInput(Path("m.nii.gz"), FID(np.ones((2, 1, 1, 64), complex), 2.5e-4, 123.2),
                        None, None, np.eye(4), ())  # fmt: skip
    assert row_titles(_run(dataclasses.replace(result, input=mrsi)), [(0, 1)]) == [
        "m.nii.gz, voxel 1,0,0"
    ]
    assert row_titles(_run(_result("a.RAW", [[1] * 5] * 2, [[1] * 5] * 2)), [(0, 1)]) == [
        "a.RAW, spectrum 1"
    ]
