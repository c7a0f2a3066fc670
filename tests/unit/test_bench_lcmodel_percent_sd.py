"""The %SD comparison of the LCModel benchmark (``benchmarks/bench_lcmodel.py``): LCModel's
combined rows found by their parts, both tools' %SD and their ratio, and the calibration of each
tool's SDs against a truth, on a small example worked by hand. Needs neither LCModel nor the
shared data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_lcmodel as bench  # noqa: E402


@pytest.mark.parametrize(
    ("name", "table", "row"),
    [
        ("tCho", ["GPC", "PCh", "NAA", "GPC+PCh"], "GPC+PCh"),  # LCModel's spelling of PCho
        ("tCr", ["Cr", "PCr", "Cr+PCr"], "Cr+PCr"),
        ("tNAA", ["NAA", "Cr"], "NAA"),  # a basis without NAAG: its NAA row
        ("tCho", ["NAA", "Cr"], "tCho"),  # no choline at all: absent from the table
        ("tCho", ["GPC", "PCh"], "tCho"),  # both parts, no combined row printed
        ("NAA", ["NAA", "NAA+NAAG"], "NAA"),
    ],
)
def test_lcmodel_row_name(name, table, row):
    assert bench.lcmodel_row_name(name, table) == row


def _row(truth, lcmodel, ours) -> dict:
    """One results.json row: ``lcmodel`` and ``ours`` name -> (estimate, %SD)."""
    return {
        "name": "s",
        "truth": truth,
        "lcmodel": {
            "concentrations": {n: c for n, (c, _) in lcmodel.items()},
            "percent_sd": {n: p for n, (_, p) in lcmodel.items()},
        },
        "scaloquant_amplitudes": {n: a for n, (a, _) in ours.items()},
        "scaloquant_crlb_sd": {n: a * p / 100 for n, (a, p) in ours.items()},
    }


#: Truth (Cr, PCr, NAA) = (4, 4, 10) and (2, 6, 8). LCModel at twice the scale, its Cr of the
#: second spectrum 0 (%SD 999); scaloquant on the truth's scale, off by 1 on the second.
ROWS = [
    _row(
        {"Mac": 3.0, "Cr": 4.0, "PCr": 4.0, "NAA": 10.0},
        {"Mac": (1, 3), "Cr": (8, 10), "PCr": (8, 20), "NAA": (20, 5), "Cr+PCr": (16, 4)},
        {"Cr": (4, 15), "PCr": (4, 10), "NAA": (10, 10), "tCr": (8, 5)},
    ),
    _row(
        {"Mac": 3.0, "Cr": 2.0, "PCr": 6.0, "NAA": 8.0},
        {"Mac": (1, 3), "Cr": (0, 999), "PCr": (16, 5), "NAA": (18, 10), "Cr+PCr": (16, 5)},
        {"Cr": (3, 10), "PCr": (5, 10), "NAA": (9, 10), "tCr": (8, 10)},
    ),
]


def test_sd_comparison_by_hand():
    comparison = bench.sd_comparison(ROWS)
    # combined rows first; Mac is not among scaloquant's columns here
    assert comparison["names"] == ["tCr", "Cr", "PCr", "NAA"]
    lcm_pct, our_pct = (comparison["percent_sd"][t] for t in bench.TOOLS)
    np.testing.assert_allclose(lcm_pct, [[4, 10, 20, 5], [5, np.nan, 5, 10]])
    np.testing.assert_allclose(our_pct, [[5, 15, 10, 10], [10, 10, 10, 10]])
    # no ratio where LCModel's estimate is 0
    np.testing.assert_allclose(comparison["ratio"], [[1.25, 1.5, 0.5, 2], [2, np.nan, 2, 1]])
    assert comparison["scale"] == {"lcmodel": 2.0, "scaloquant": 1.0}
    # NAA: LCModel's (20, 18) / 2 = (10, 9) against (10, 8), SDs (1, 1.8) / 2; scaloquant's
    # (10, 9), SDs (1, 0.9): errors (0, 1), RMS sqrt(1/2), SD about their mean 1/2
    for tool, sds in (("lcmodel", (0.5, 0.9)), ("scaloquant", (1.0, 0.9))):
        naa = comparison["calibration"][tool]["NAA"]
        rms_sd = np.sqrt(np.mean(np.square(sds)))
        assert naa["n"] == 2
        assert naa["rms_error_over_sd"] == pytest.approx(np.sqrt(0.5) / rms_sd)
        assert naa["sd_error_over_sd"] == pytest.approx(0.5 / rms_sd)
    # Cr: one spectrum left (LCModel's 0), too few for an SD
    assert comparison["calibration"]["scaloquant"]["Cr"]["n"] == 0
    # tCr: truth 8 and 8 (the parts' sum); LCModel (16, 16) / 2, scaloquant (8, 8): no error
    assert comparison["calibration"]["lcmodel"]["tCr"]["rms_error_over_sd"] == 0.0


def test_sd_comparison_needs_an_lcmodel_result():
    row = dict(ROWS[0], lcmodel=None)
    assert bench.sd_comparison([row]) is None


def test_sd_calibration_of_sds_that_describe_the_errors():
    rng = np.random.default_rng(0)
    sd = rng.uniform(0.5, 2.0, 20000)
    truth = rng.uniform(1, 10, sd.size)
    estimates = truth + 0.3 + sd * rng.standard_normal(sd.size)  # a bias of 0.3
    cal = bench.sd_calibration(truth, estimates, sd)
    assert cal["sd_error_over_sd"] == pytest.approx(1.0, abs=0.02)
    assert cal["rms_error_over_sd"] > cal["sd_error_over_sd"]  # the bias counts here
    assert cal["n"] == sd.size


def test_percent_sd_printout_counts_the_estimates_kept_by_the_rule(capsys):
    bench._print_percent_sd({"rows": ROWS}, per_spectrum=30)
    out = capsys.readouterr().out
    # LCModel's %SD <= 20: 4 + 3 (its 0 has none); scaloquant's: 4 + 4; both: 7
    assert "estimates kept by %SD <= 20 (all 8 rows x spectra): LCModel 7, ours 8, both 7" in out
    assert "RMS error / RMS SD" in out  # a truth: the calibration columns
    truthless = [dict(r, truth=None) for r in ROWS]
    bench._print_percent_sd({"rows": truthless}, per_spectrum=30)
    out = capsys.readouterr().out
    assert "RMS error" not in out
    assert "4|5" in out and "1.25 2.00" in out  # tCr's cells and ratios, spectrum by spectrum
