"""The ``tissue`` set of the LCModel benchmark (``benchmarks/bench_lcmodel.py``): its spectra and
truth, LCModel's two settings, and the accuracy arithmetic on a small example worked by hand.
Needs neither LCModel nor the shared data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import _lcmodel as lcm  # noqa: E402
import bench_lcmodel as bench  # noqa: E402
from scaloquant.io import default_basis, read_lcmodel_raw  # noqa: E402
from scaloquant.simulate.invivo import simulate_invivo_batch  # noqa: E402
from scaloquant.simulate.prior import InvivoPrior  # noqa: E402


def test_tissue_cases_hold_the_simulated_spectra_and_their_amplitudes(tmp_path):
    groups = bench.tissue_set(tmp_path, 3, 30.0, 5)
    # drawn here independently of the benchmark's helper: same prior, seed and basis
    basis = default_basis()
    signals = simulate_invivo_batch(
        basis, InvivoPrior(snr_range=(30.0, 30.0)), 3, np.random.default_rng(5)
    )
    assert [len(g.cases) for g in groups] == [3, 3]
    assert groups[0].cases is groups[1].cases  # the same spectra under each LCModel setting
    for i, case in enumerate(groups[0].cases):
        truth = signals.parameters.concentrations_mm[i]
        assert list(case.truth) == list(basis.names)
        assert [case.truth[n] for n in basis.names] == truth.tolist()
        np.testing.assert_array_equal(case.fid.samples, signals.fids[i])
        # LCModel's .RAW holds the same spectrum (its orientation, read back as scaloquant's)
        raw = read_lcmodel_raw(case.lcmodel.raw)
        scale = np.abs(signals.fids[i]).max()
        np.testing.assert_allclose(raw.samples, signals.fids[i], rtol=0, atol=1e-6 * scale)
        assert case.lcmodel.basis == bench.CHALLENGE_BASIS and case.lcmodel.echo_time_ms == 30.0
        assert (case.lcmodel.n_points, case.lcmodel.dwell_time_s) == (2048, basis.dwell_time_s)


def test_tissue_settings_are_lcmodels_defaults_and_its_simulated_mm_omitted():
    default, omitted = bench.tissue_settings().values()
    assert default == lcm.Settings()
    assert omitted.extra == (
        "nomit=5",
        "chomit(1)='MM09'",
        "chomit(2)='MM12'",
        "chomit(3)='MM14'",
        "chomit(4)='MM17'",
        "chomit(5)='MM20'",
    )


def _row(truth, lcmodel, scaloquant, crlb_sd) -> dict:
    names = ("Cr", "PCr", "NAA")
    return {
        "truth": {"Mac": 5.0, **dict(zip(names, truth, strict=True))},
        "lcmodel": None
        if lcmodel is None
        else {
            "concentrations": {
                "Mac": 1.0,
                **{n: c for n, (c, _) in zip(names, lcmodel, strict=True)},
            },
            "percent_sd": {"Mac": 3.0, **{n: p for n, (_, p) in zip(names, lcmodel, strict=True)}},
        },
        "scaloquant_amplitudes": {"Mac": 5.0, **dict(zip(names, scaloquant, strict=True))},
        "scaloquant_crlb_sd": {"Mac": 1.0, **dict(zip(names, crlb_sd, strict=True))},
    }


def test_tcr_referenced_accuracy_of_a_small_example_by_hand():
    """Truth (Cr, PCr, NAA) = (4, 4, 10) and (2, 6, 8), true tCr 8 in both. LCModel at twice the
    scale: (10, 6, 24) and (0, 16, 16), estimated tCr 16, so x 0.5: (5, 3, 12) and (0, 8, 8),
    errors (1, 1, 2) and (2, 2, 0). Its SDs (%SD x conc / 100) x 0.5: (0.1, 1.5, 0.12) and
    (0, 0.4, 0.8): beyond 3 SDs Cr, NAA, then Cr, PCr (4 of 6; 3 of the 5 estimates > 0). A third spectrum without an
    LCModel result counts for neither tool. scaloquant is exact. ``Mac`` is left out."""
    rows = [
        _row((4, 4, 10), [(10, 2), (6, 50), (24, 1)], (4, 4, 10), (0.1, 0.1, 0.1)),
        _row((2, 6, 8), [(0, 999), (16, 5), (16, 10)], (2, 6, 8), (0.1, 0.1, 0.1)),
        _row((3, 3, 9), None, (1, 1, 1), (0.1, 0.1, 0.1)),
    ]
    acc = bench.accuracy_of(rows)
    assert (acc["n_spectra"], acc["n_total"]) == (2, 3)
    lcm_acc, ours = acc["lcmodel"], acc["scaloquant"]
    per = lcm_acc["per_metabolite"]
    assert list(per) == ["Cr", "PCr", "NAA"]
    assert [per[n]["mae_mM"] for n in per] == pytest.approx([1.5, 1.5, 1.0])
    assert lcm_acc["mae_mM"] == pytest.approx(4 / 3)
    # SMAPE terms |A - A'| / ((A + A') / 2): Cr 1/4.5 and 2/1, PCr 1/3.5 and 2/7, NAA 2/11 and 0
    smapes = [50 * (1 / 4.5 + 2), 50 * (1 / 3.5 + 2 / 7), 50 * 2 / 11]
    assert [per[n]["smape_pct"] for n in per] == pytest.approx(smapes)
    assert lcm_acc["smape_pct"] == pytest.approx(np.mean(smapes))
    assert (lcm_acc["missed"], lcm_acc["present"]) == (1, 6)  # Cr of the second spectrum
    assert per["Cr"]["missed"] == 1 and per["PCr"]["missed"] == 0
    assert lcm_acc["beyond_3sd"] == pytest.approx(4 / 6)
    assert lcm_acc["beyond_3sd_nonzero"] == pytest.approx(3 / 5)  # the zero's SD is 0
    assert [per[n]["beyond_3sd"] for n in per] == [2, 1, 1]
    assert (ours["mae_mM"], ours["smape_pct"], ours["missed"], ours["beyond_3sd"]) == (0, 0, 0, 0)
    # the third spectrum's scaloquant estimates count here, not above: MAE (2 + 2 + 8) / 9
    assert acc["scaloquant_absolute"]["mae_mM"] == pytest.approx(12 / 9)


def test_tcr_factor_refuses_a_spectrum_without_creatine():
    est = np.array([[2.0, 2.0, 5.0], [0.0, 0.0, 5.0]])
    factor = bench.tcr_factor(est, ["Cr", "PCr", "NAA"], np.array([8.0, 8.0]))
    assert factor[0] == 2.0 and np.isnan(factor[1])


def test_ratio_errors_by_hand():
    """True tNAA/tCr 1, 2, 4 against 1.5, 1.0, 4.4: errors 0.5, 1.0, 0.4 (mean 0.633, median
    0.5), relative 50, 50, 10 % (median 50 %); a spectrum without a result and one with a NaN
    ratio are left out."""

    def row(true: float, est: float | None) -> dict:
        ratios = None if est is None else {g: est for g in bench.GROUPS}
        return {"truth_ratios": {g: true for g in bench.GROUPS}, "lcmodel_ratios": ratios}

    rows = [row(1.0, 1.5), row(2.0, 1.0), row(4.0, 4.4), row(3.0, None), row(3.0, np.nan)]
    errors = bench.ratio_errors(rows, "lcmodel")
    assert list(errors) == list(bench.GROUPS)
    assert errors["tNAA"]["mean"] == pytest.approx(1.9 / 3)
    assert errors["tNAA"]["median"] == pytest.approx(0.5)
    assert errors["tNAA"]["median_rel_pct"] == pytest.approx(50.0)
