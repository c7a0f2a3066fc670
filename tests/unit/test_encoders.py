"""The encoders' comparison on the nonlinear parameters and the methods' summary of ``reproduce``:
known answers for the parameter errors (phase wrap-around), the paired comparison, the verdict
words, slopes, z-scores, and the channel modes' blindness (issue 13)."""

import math

import numpy as np
import pytest

from scaloquant.evaluate.calibration import z_score_summary
from scaloquant.evaluate.encoders import (
    channel_blindness,
    encoder_comparison,
    parameter_errors,
)
from scaloquant.evaluate.metrics import slope
from scaloquant.evaluate.pipeline import SnrCase, case_summary, method_summary
from scaloquant.evaluate.report import encoder_verdict
from scaloquant.io.default import default_basis
from scaloquant.scalogram import ScalogramConfig

# layout of a 2-group problem (fit.problem.Problem.slices): damping, shift, gauss, phi0, phi1
SLICES = {
    "damping": slice(0, 2),
    "shift": slice(2, 4),
    "gauss": slice(4, 6),
    "phase0": slice(6, 7),
    "phase1": slice(7, 8),
}


def test_parameter_errors_known_answer_with_phase_wrap():
    truth = np.zeros((2, 8))
    theta = np.zeros((2, 8))
    theta[0, :2] = [1.0, -2.0]  # damping errors 1, 2 (1/s)
    theta[0, 2:4] = [0.5, 0.0]  # shift errors (Hz)
    truth[1, 6] = np.deg2rad(179.0)
    theta[1, 6] = np.deg2rad(-179.0)  # 2 degrees apart across the wrap, not 358
    err = parameter_errors(SLICES, theta, truth)
    np.testing.assert_allclose(err["damping"], [[1.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(err["shift"], [[0.5, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(err["phase0"], [[0.0], [2.0]], atol=1e-9)
    assert "damping" not in parameter_errors(SLICES, theta, truth, lorentzian=False)


def test_encoder_comparison_favours_the_smaller_errors():
    rng = np.random.default_rng(3)
    n = 300
    small = {
        "damping": rng.uniform(0, 1, (n, 2)),
        "shift": rng.uniform(0, 1, (n, 2)),
        "phase0": rng.uniform(0, 5, (n, 1)),
    }
    large = {k: v + 1.0 for k, v in small.items()}  # exactly 1 worse on every spectrum
    out = encoder_comparison(small, large, ["g0", "g1"], a="A", b="B", bootstrap_seed=1, n_boot=200)
    assert out["n_signals"] == n and list(out["parameters"]) == ["damping", "shift", "phase0"]
    for p in out["parameters"].values():
        assert p["mean"]["diff"] == pytest.approx(-1.0)
        # paired: a constant difference has no spread at all
        assert p["mean"]["low"] == pytest.approx(-1.0) and p["mean"]["high"] == pytest.approx(-1.0)
        assert p["mean"]["favours"] == "a"
        assert p["mae_b"] - p["mae_a"] == pytest.approx(1.0)
    assert list(out["parameters"]["phase0"]["per_metabolite"]) == ["phase0"]
    assert list(out["parameters"]["shift"]["per_metabolite"]) == ["g0", "g1"]
    sentence = encoder_verdict(out)
    assert sentence.startswith("**A predicts the nonlinear parameters better than B**")
    reverse = encoder_verdict(
        encoder_comparison(large, small, ["g0", "g1"], a="A", b="B", bootstrap_seed=1, n_boot=50)
    )
    assert "**A does not predict the nonlinear parameters better than B**" in reverse
    assert "B is better on damping, shift, phase0" in reverse


def test_encoder_verdict_mixed_and_no_difference():
    rng = np.random.default_rng(4)
    base = {
        "damping": rng.uniform(0, 1, (200, 1)),
        "shift": rng.uniform(0, 1, (200, 1)),
        "phase0": rng.uniform(0, 1, (200, 1)),
    }
    other = {"damping": base["damping"] + 1, "shift": base["shift"] - 0.5, "phase0": base["phase0"]}
    mixed = encoder_comparison(base, other, ["g"], a="A", b="B", bootstrap_seed=0, n_boot=100)
    text = encoder_verdict(mixed)
    assert text.startswith("Mixed: A is better on damping; B is better on shift")
    assert "no significant difference on phase0" in text
    same = encoder_comparison(base, base, ["g"], a="A", b="B", bootstrap_seed=0, n_boot=50)
    assert "no significant difference on damping, shift, phase0" in encoder_verdict(same)


def test_slope_known_answers():
    truth = np.linspace(0, 1, 11)[:, None] * [1.0, 2.0]
    np.testing.assert_allclose(slope(truth, 0.5 * truth + 0.3), [0.5, 0.5])
    assert math.isnan(slope(np.ones((5, 1)), np.arange(5.0)[:, None])[0])


def test_z_score_summary_known_answer():
    truth = np.zeros((4, 1))
    pred = np.array([[0.5], [1.5], [-2.5], [0.0]])
    out = z_score_summary(truth, pred, np.ones((4, 1)))
    assert out["within_1sd"] == 0.5 and out["within_2sd"] == 0.75
    assert out["z_sd"] == pytest.approx(np.std(pred))
    assert out["n_left_out"] == 0
    # a zero or non-finite SD is left out and counted
    sd = np.array([[1.0], [0.0], [np.nan], [1.0]])
    assert z_score_summary(truth, pred, sd)["n_left_out"] == 2


def test_method_summary_sums_and_case_summary_uses_the_fit_bounds():
    names = ["Cr", "PCr", "NAA", "GPC", "PCho", "Ins", "Glu"]
    rng = np.random.default_rng(5)
    truth = rng.uniform(0, 1, (50, len(names)))
    pred = 0.8 * truth + 0.1
    row = method_summary(truth, pred, None, names)
    assert set(row["slopes"]) == {"NAA", "Cr+PCr", "GPC+PCho", "Ins", "Glu"}
    assert all(v == pytest.approx(0.8) for v in row["slopes"].values())
    assert "z_sd" not in row and row["n_signals"] == 50
    cov = np.broadcast_to(np.eye(len(names)) * 0.01, (10, len(names), len(names)))
    case = SnrCase(
        snr=30.0,
        truth=truth,
        predictions={"net": pred},
        partial={"fit": truth[:10] + 0.05},
        crlb_covariance=cov,
    )
    summary = case_summary(case, names)
    assert list(summary) == ["net", "fit"]
    assert summary["fit"]["n_signals"] == 10
    assert summary["fit"]["z_sd"] == pytest.approx(0.0, abs=1e-12)  # every error is 0.5 SD
    assert summary["fit"]["within_1sd"] == 1.0 and summary["fit"]["within_2sd"] == 1.0


def test_channel_blindness_of_the_paper_channels():
    basis = default_basis()
    settings = ScalogramConfig.preset("cpu", n_scales=16, decimation=32).to_dict()
    blind = channel_blindness(basis.fids.sum(axis=0), settings, basis.dwell_time_s)
    assert blind["abs_re_im"]["conjugation"] == 0.0  # |W[Re s]|, |W[-Im s]|: exactly the same
    assert blind["abs_re_im"]["phase0"] > 0.05
    assert blind["pos_neg"]["phase0"] < 1e-5  # moduli of analytic parts: phase-blind
    assert blind["pos_neg"]["conjugation"] > 0.05
    assert min(blind["complex"].values()) > 0.05
