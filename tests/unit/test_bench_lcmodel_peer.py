"""The pure parts of the LCModel benchmark peer (``benchmarks/_lcmodel.py``): its control file,
its table parser and its ``.RAW`` writing, checked against LCModel's reference run on the
Philips spant spectrum in ../shared. Needs neither gfortran nor LCModel."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared/data/invivo/philips-press30-spant/lcmodel_reference"
NIFTI = REPO.parent / "shared/data/invivo/philips-press30-spant/nifti_spec2nii/metab.nii.gz"
pytestmark = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason="../shared/data/invivo (LCModel's reference run) is absent"
)
sys.path.insert(0, str(REPO / "benchmarks"))

import _lcmodel as lcm  # noqa: E402


def _namelist(text: str) -> dict[str, str]:
    """``key=value`` lines of a ``$LCMODL`` namelist, keys lower-case, quotes removed."""
    body = text.split("$LCMODL", 1)[1].split("$END", 1)[0]
    return {
        k.lower(): v.strip().strip("'")
        for k, v in re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*$", body, flags=re.M)
    }


def _reference_spectrum(**kwargs) -> lcm.Spectrum:
    return lcm.Spectrum(
        "ref", REFERENCE / "data.raw", REFERENCE / "3t.basis", 1024, 5e-4, 127.786142, **kwargs
    )


def _reference_rows() -> list[dict[str, str]]:
    with (REFERENCE / "out_ref_build_table.csv").open() as f:
        return list(csv.DictReader(f))


def _lcmodel_number(x: float, width: int, e_digits: int) -> str:
    """A number as LCModel's table prints it: 3 decimals in its usual range, else E format
    (``7.20E-08`` in the concentration column, ``3.9E-02`` in the ratio column)."""
    if x == 0 or 0.1 <= abs(x) < 1e3:
        return f"{x:{width}.3f}"
    return f"{x:{width}.{e_digits}E}"


def _reference_table(flagged: str = "") -> str:
    """LCModel's ``.table`` layout holding the reference results (the CSV of its run)."""
    rows = _reference_rows()
    lines = [
        " LCModel (Version 6.3-1N)",
        "",
        f"$$CONC {len(rows) + 1} lines in following concentration table = NCONC+1",
        "    Conc.  %SD /Cr+PCr  Metabolite",
    ]
    for row in rows:
        flag = "+" if row["metabolite"] == flagged else " "
        lines.append(
            _lcmodel_number(float(row["conc_au"]), 9, 2)
            + f"{int(row['pct_SD']):4d}%"
            + _lcmodel_number(float(row["ratio_to_CrPCr"]), 8, 1)
            + flag
            + row["metabolite"]
        )
    lines += [
        "",
        "$$MISC  6 lines in following misc. output table",
        "  FWHM = 0.084 ppm    S/N =  21",
        "  Data shift = 0.008 ppm",
        "  Ph:   9 deg       2.2 deg/ppm",
        "",
        "$$DIAG  1 lines in following diagnostic table:",
        "   1 info      STARTV 24",
    ]
    return "\n".join(lines) + "\n"


def test_control_file_states_the_reference_runs_grid_and_files():
    spectrum = _reference_spectrum()
    files = lcm.run_files(spectrum, Path("/tmp/run"))
    ours = _namelist(lcm.control_text(spectrum, files, lcm.Settings()))
    reference = _namelist((REFERENCE / "control.file").read_text())
    for key in ("key", "nunfil", "deltat", "hzpppm"):
        assert float(ours[key]) == pytest.approx(float(reference[key]), rel=1e-12), key
    for key in ("filbas", "filraw"):
        assert Path(ours[key]).name == reference[key]
    assert ours["ltable"] == "7" and ours["filtab"] == "/tmp/run/ref.table"
    assert ours["filps"] == "/tmp/run/ref.ps"  # LCModel stops (MYCONT 3) without FILPS
    assert not {"filh2o", "dows", "wconc", "atth2o", "ppmst", "ppmend"} & ours.keys()


def test_control_file_with_water_scaling_and_extra_keys():
    spectrum = _reference_spectrum(water=REFERENCE / "data.raw", echo_time_ms=30.0)
    settings = lcm.Settings(
        ppm_start=4.2, ppm_end=0.2, water_conc_mM=35815.6, water_attenuation=1.0, extra=("x=1",)
    )
    text = lcm.control_text(spectrum, lcm.run_files(spectrum, Path("/tmp/run")), settings)
    ours = _namelist(text)
    assert ours["dows"] == "T" and ours["filh2o"].endswith("data.raw")
    assert float(ours["wconc"]) == 35815.6 and float(ours["atth2o"]) == 1.0
    assert float(ours["ppmst"]) == 4.2 and float(ours["ppmend"]) == 0.2
    assert float(ours["echot"]) == 30.0 and ours["x"] == "1"
    assert text.startswith("$LCMODL\n") and text.endswith("$END\n")


def test_quotes_in_file_names_are_doubled():
    spectrum = _reference_spectrum()
    files = {**lcm.run_files(spectrum, Path("/tmp/run")), "raw": Path("/tmp/it's.raw")}
    assert "filraw='/tmp/it''s.raw'" in lcm.control_text(spectrum, files, lcm.Settings())


def test_table_parser_recovers_the_reference_results():
    result = lcm.parse_table(_reference_table(flagged="GSH"))
    rows = _reference_rows()
    assert list(result.concentrations) == [r["metabolite"] for r in rows]
    for row in rows:
        name = row["metabolite"]
        assert result.concentrations[name] == pytest.approx(float(row["conc_au"]), rel=5e-3)
        assert result.percent_sd[name] == float(row["pct_SD"])
        assert result.ratios[name] == pytest.approx(float(row["ratio_to_CrPCr"]), abs=5e-4)
    # the README's figures of LCModel 6.3's run
    assert result.ratios["NAA+NAAG"] == 1.306 and result.ratios["Glu+Gln"] == 1.51
    assert result.ratios["Ins"] == 0.911 and result.ratios["GPC+PCh"] == 0.25
    assert result.denominator == "Cr+PCr" and result.flags == {"GSH": "+"}
    assert (result.fwhm_ppm, result.snr, result.shift_ppm) == (0.084, 21.0, 0.008)
    assert (result.phase0_deg, result.phase1_deg_per_ppm) == (9.0, 2.2)
    assert result.diagnostics == ("1 info      STARTV 24",)


def test_table_parser_refuses_a_failed_run_and_an_unknown_layout():
    with pytest.raises(lcm.LCModelError, match="no concentration table"):
        lcm.parse_table("***      FATAL ERROR  MYCONT  3\n")
    broken = _reference_table().replace(" 166%", " 166 percent")
    with pytest.raises(lcm.LCModelError, match="states"):
        lcm.parse_table(broken)


def test_write_raw_keeps_lcmodels_orientation(tmp_path):
    """NIfTI-MRS samples on disk, written by the peer through scaloquant's writer, equal the
    .RAW spant wrote for LCModel's reference run (same SDAT), and read back through scaloquant's
    reader as their conjugate (its internal orientation)."""
    nibabel = pytest.importorskip("nibabel")
    from scaloquant.io import read_lcmodel_raw

    disk = np.asarray(nibabel.load(str(NIFTI)).dataobj).reshape(-1)
    path = lcm.write_raw(
        tmp_path / "x.RAW", disk, dwell_time_s=5e-4, spectrometer_freq_mhz=127.786142, name="x"
    )
    ref_text = (REFERENCE / "data.raw").read_text().rsplit("$END", 1)[1]
    reference = np.array(ref_text.split(), dtype=np.float64).view(np.complex128)
    written = np.array(path.read_text().rsplit("$END", 1)[1].split(), float).view(complex)
    assert np.allclose(written, reference, rtol=0, atol=1e-6 * np.abs(reference).max())
    back = read_lcmodel_raw(path)
    assert np.allclose(back.samples, np.conj(disk), rtol=0, atol=1e-7 * np.abs(disk).max())


def test_long_input_paths_are_linked_under_short_names(tmp_path):
    deep = tmp_path.joinpath(*["d" * 60] * 4)
    deep.mkdir(parents=True)
    raw = deep / "data.raw"
    raw.write_text("x")
    spectrum = lcm.Spectrum("s", raw, REFERENCE / "3t.basis", 1024, 5e-4, 127.786142)
    files = lcm.run_files(spectrum, tmp_path)
    assert files["raw"] == tmp_path / "data.raw" and files["raw"].resolve() == raw
    assert files["basis"] == (REFERENCE / "3t.basis").resolve()  # short enough: as it is


def test_group_ratios_of_the_reference_concentrations_match_lcmodels_combinations():
    import bench_lcmodel

    result = lcm.parse_table(_reference_table())
    ratios = bench_lcmodel.group_ratios(result.concentrations)
    # LCModel's own combined rows, to the rounding of its 3-significant-digit concentrations
    assert ratios["tNAA"] == pytest.approx(result.ratios["NAA+NAAG"], rel=5e-3)
    assert ratios["Glx"] == pytest.approx(result.ratios["Glu+Gln"], rel=5e-3)
    assert ratios["tCho"] == pytest.approx(result.ratios["GPC+PCh"], rel=5e-3)
    assert ratios["Ins"] == pytest.approx(result.ratios["Ins"], rel=5e-3)
    assert np.isnan(bench_lcmodel.group_ratios({"NAA": 1.0})["tNAA"])  # no creatine


def test_run_many_runs_in_parallel_folders_and_reports_failures(tmp_path):
    """A stand-in executable (a shell script) that writes the reference table where the
    control file says, or fails like LCModel for a spectrum named ``bad``."""
    table = tmp_path / "reference.table"
    table.write_text(_reference_table())
    exe = tmp_path / "fake-lcmodel"
    exe.write_text(
        "#!/bin/sh\n"
        "ctl=$(cat)\n"
        "case \"$ctl\" in *bad.table*) echo ' ***  FATAL ERROR  MYCONT  3'; exit 0;; esac\n"
        "tab=$(printf '%s\\n' \"$ctl\" | sed -n \"s/^ filtab='\\(.*\\)'$/\\1/p\")\n"
        f'cp {table} "$tab"\n'
    )
    exe.chmod(0o755)
    spectra = [
        lcm.Spectrum(name, REFERENCE / "data.raw", REFERENCE / "3t.basis", 1024, 5e-4, 127.786)
        for name in ("a", "bad", "c")
    ]
    outcomes, wall_s = lcm.run_many(exe, spectra, tmp_path / "runs", lcm.Settings(), workers=2)
    assert [o.spectrum.name for o in outcomes] == ["a", "bad", "c"] and wall_s > 0
    assert outcomes[0].result.ratios["NAA+NAAG"] == 1.306 and outcomes[0].result.seconds > 0
    assert outcomes[1].result is None and "MYCONT" in outcomes[1].error
    assert (tmp_path / "runs/c/c.control").is_file()
    with pytest.raises(ValueError, match="unique"):
        lcm.run_many(exe, spectra[:1] * 2, tmp_path / "runs", lcm.Settings())


def test_table_parser_reads_the_regularisers():
    text = _reference_table().replace(
        "  Ph:   9 deg       2.2 deg/ppm",
        "  Ph:   9 deg       2.2 deg/ppm\n  alphaB,S = 1.7E-01,   3.7E-01\n   28 spline knots.   Ns = 5(1)",
    )
    result = lcm.parse_table(text)
    assert (result.alpha_b, result.alpha_s, result.n_knots) == (0.17, 0.37, 28)
    assert np.isnan(lcm.parse_table(_reference_table()).alpha_b)


def test_lcmodel_roughness_is_the_integrated_squared_second_derivative():
    from scipy.interpolate import BSpline

    # 6 x int B_i'' B_j'' over the knot span of unit-spaced cubic B-splines, inner rows
    n = 12
    knots = np.arange(n + 4) - 3.0
    x = np.linspace(0, n - 3, 20001)
    second = np.stack(
        [BSpline(knots, np.eye(n)[i], 3).derivative(2)(x) for i in range(n)]
    )  # (n, X)
    gram = 6 * np.trapezoid(second[:, None] * second[None], x, axis=-1)
    r = lcm.lcmodel_roughness(n)
    np.testing.assert_allclose(r[3:-3, 3:-3], gram[3:-3, 3:-3], atol=1e-3)


def test_lcmodel_baseline_ed_runs_from_all_knots_to_a_straight_line():
    ppm = np.linspace(4.0, 0.2, 995)
    span = 3.8
    free = lcm.baseline_ed_per_ppm(ppm, 1e-12, 28, 1.0, 1.0)
    stiff = lcm.baseline_ed_per_ppm(ppm, 100.0, 28, 1.0, 1.0)
    assert free == pytest.approx(28 / span, rel=1e-6)
    assert stiff == pytest.approx(2 / span, rel=1e-4)  # the null space of R: a line
    # only SDREF / RMSAMP matters, and a larger alphaB is stiffer
    a = lcm.baseline_ed_per_ppm(ppm, 0.03, 28, 0.04, 1.0)
    assert a == pytest.approx(lcm.baseline_ed_per_ppm(ppm, 0.03, 28, 4.0, 100.0))
    assert lcm.baseline_ed_per_ppm(ppm, 0.17, 28, 0.04, 1.0) < a


#: The ISMRM 2016 basis' names (``press3T_30ms.BASIS``): phosphocholine is ``PCho``.
ISMRM_NAMES = ("Mac", "Ala", "Asp", "Asc", "Cr", "GABA", "Glc", "Gln", "Glu", "Gly", "GPC", "GSH",
               "Ins", "sIns", "Lac", "PCr", "PCho", "PE", "NAA", "NAAG", "Tau")  # fmt: skip


def test_combinations_are_spelled_as_the_basis_spells_its_parts():
    assert lcm.combinations(ISMRM_NAMES) == {
        "tNAA": "NAA+NAAG",
        "tCr": "Cr+PCr",
        "tCho": "GPC+PCho",
        "Glx": "Glu+Gln",
    }
    # LCModel's spellings, PCr before Cr in the file, no NAAG: parts in COMBINATIONS order,
    # a combination with a part missing left out
    names = ("PCr", "Cre", "NAA", "PCh", "GPC", "mI", "Glu", "Gln")
    assert lcm.combinations(names) == {"tCr": "Cre+PCr", "tCho": "GPC+PCh", "Glx": "Glu+Gln"}


def test_combination_lines_ask_only_for_the_rows_lcmodels_defaults_lack():
    assert lcm.combination_lines(ISMRM_NAMES) == ("ncombi=17", "chcomb(17)='GPC+PCho'")
    # LCModel's own basis: every row is among its 16 defaults, nothing to add
    spant = ("Ala", "Asp", "Cr", "GABA", "Glc", "Gln", "GSH", "Glu", "GPC", "Ins", "Lac", "NAA",
             "NAAG", "PCh", "PCr", "sIns", "Tau")  # fmt: skip
    assert lcm.combination_lines(spant) == ()
    assert lcm.combination_lines(("NAA", "Cr")) == ()
    assert lcm.combination_lines(("GPC", "Cho", "Cr", "PCr", "NAA", "NAAG")) == ()  # GPC+Cho
    # the one row the defaults lack, numbered on after them, whatever else the basis spells
    assert lcm.combination_lines(("Cre", "PCr", "GPC", "PCho", "Glu", "Gln", "NAA")) == (
        "ncombi=17",
        "chcomb(17)='GPC+PCho'",
    )
    assert lcm.LCMODEL_COMBINATIONS[:5] == ("GPC+PCh", "GPC+Cho", "PCh+Cho", "Cho+GPC+PCh",
                                            "NAA+NAAG")  # fmt: skip
    assert len(lcm.LCMODEL_COMBINATIONS) == 16  # LCModel.f's NCOMBI


def test_control_file_asks_for_the_combined_rows_before_the_extra_keys():
    spectrum = _reference_spectrum()
    files = lcm.run_files(spectrum, Path("/tmp/run"))
    settings = lcm.Settings(extra=("nomit=1", "chomit(1)='Mac'"))
    text = lcm.control_text(spectrum, files, settings, basis_names=ISMRM_NAMES)
    body = [line.strip() for line in text.splitlines()]
    assert body[-5:] == ["ncombi=17", "chcomb(17)='GPC+PCho'", "nomit=1", "chomit(1)='Mac'", "$END"]
    # without the basis' names: LCModel's defaults only, as before
    assert "chcomb" not in lcm.control_text(spectrum, files, settings)


def test_run_one_reads_the_basis_names_for_the_combined_rows(tmp_path):
    """The control file run_one writes (a stand-in executable that does nothing) asks for
    ``GPC+PCho`` where the basis spells phosphocholine so, and for nothing with LCModel's own."""
    exe = tmp_path / "fake-lcmodel"
    exe.write_text("#!/bin/sh\ncat > /dev/null\n")
    exe.chmod(0o755)
    basis = tmp_path / "pcho.basis"
    basis.write_text(
        re.sub(r"METABO\s*=\s*'PCh'", "METABO = 'PCho'", (REFERENCE / "3t.basis").read_text())
    )
    renamed = lcm.run_one(exe, _reference_spectrum(), tmp_path / "a", lcm.Settings())
    spectrum = lcm.Spectrum("ref", REFERENCE / "data.raw", basis, 1024, 5e-4, 127.786142)
    own = lcm.run_one(exe, spectrum, tmp_path / "b", lcm.Settings())
    assert renamed.result is None and "wrote no table" in renamed.error
    assert "chcomb" not in renamed.files["control"].read_text()
    assert "\n ncombi=17\n chcomb(17)='GPC+PCho'\n" in own.files["control"].read_text()
    # a basis that is none: no run, the reason in the outcome (run_one never raises)
    broken = tmp_path / "broken.basis"
    broken.write_text("not a basis\n")
    spectrum = lcm.Spectrum("ref", REFERENCE / "data.raw", broken, 1024, 5e-4, 127.786142)
    outcome = lcm.run_one(exe, spectrum, tmp_path / "c", lcm.Settings())
    assert outcome.result is None and outcome.error.startswith("cannot read the basis' names")
    assert not outcome.files["control"].exists()


def test_group_ratios_read_each_tools_combined_rows_before_their_parts():
    import bench_lcmodel

    # LCModel's rows are the unrounded sums: they, not the printed parts, give the ratios
    lcmodel = {"Cr": 1.0, "PCr": 1.0, "GPC": 0.2, "PCho": 0.1, "NAA": 1.5, "NAAG": 0.2,
               "Cr+PCr": 2.004, "GPC+PCho": 0.301, "NAA+NAAG": 1.704}  # fmt: skip
    ratios = bench_lcmodel.group_ratios(lcmodel)
    assert ratios["tCho"] == 0.301 / 2.004 and ratios["tNAA"] == 1.704 / 2.004
    assert np.isnan(ratios["Glx"]) and np.isnan(ratios["GABA"])
    # scaloquant's own combined columns
    ours = {"Cr": 1.0, "PCr": 1.0, "GPC": 0.2, "PCho": 0.1, "tCr": 2.5, "tCho": 0.5}
    assert bench_lcmodel.group_ratios(ours)["tCho"] == 0.2
    # the truth has none: the sums of its parts
    truth = {"Cr": 1.0, "PCr": 1.0, "GPC": 0.2, "PCho": 0.1, "NAA": 1.0}
    ratios = bench_lcmodel.group_ratios(truth)
    assert ratios["tCho"] == pytest.approx(0.15) and ratios["tNAA"] == 0.5


def test_write_basis_renames_and_keeps_the_fids(tmp_path):
    """The peer's basis writer (scaloquant's .BASIS writer, names renamed first, its round trip
    checked): spant's 3t.basis with PCh spelt PCho reads back with that name and its FIDs, to
    the writer's 9 digits (1e-7 of the largest sample)."""
    from scaloquant.io import read_lcmodel_basis

    basis = read_lcmodel_basis(REFERENCE / "3t.basis")
    path = lcm.write_basis(tmp_path / "pcho.basis", basis, renamed={"PCh": "PCho"})
    back = read_lcmodel_basis(path)
    assert back.names == tuple("PCho" if n == "PCh" else n for n in basis.names)
    np.testing.assert_allclose(back.fids, basis.fids, rtol=0, atol=1e-7 * abs(basis.fids).max())
