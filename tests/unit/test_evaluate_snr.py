"""Evaluation at several SNRs: methods on a subset (the fit), Cramér–Rao summaries, the
metabolite sums, the ``by_snr`` layout of metrics.json, the error-against-SNR table and figure."""

import json
import math

import matplotlib.image as mpimg
import numpy as np
import pytest

from scaloquant.errors import InvalidDataError
from scaloquant.evaluate.pipeline import (
    NETWORK_SD,
    SnrCase,
    combination_weights,
    crlb_summary,
    evaluate_predictions,
    evaluate_snr_cases,
    method_metrics,
)
from scaloquant.report.evaluation import write_evaluation

METABOLITES = ["NAA", "Cr", "PCr", "GPC", "PCho", "Ins", "Glu"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _cases(n=150, k=30, seed=0):
    """Noiseless and SNR-20 cases of one truth: model errors grow with the noise, the 'fit' is
    exact when noiseless and has errors of SD 0.05 at SNR 20, as its (diagonal) bound says."""
    rng = np.random.default_rng(seed)
    m = len(METABOLITES)
    truth = rng.uniform(0, 1, size=(n, m))
    cases = []
    for snr, model_sd, fit_sd in ((math.inf, 0.05, 0.0), (20.0, 0.1, 0.05)):
        cov = np.broadcast_to(np.eye(m) * fit_sd**2, (k, m, m)).copy()
        cases.append(
            SnrCase(
                snr=snr,
                truth=truth,
                predictions={
                    "scalogram_cnn": truth + rng.normal(0, 2 * model_sd, truth.shape),
                    "spectrum_cnn": truth + rng.normal(0, model_sd, truth.shape),
                },
                partial={"fit": truth[:k] + rng.normal(0, 1, (k, m)) * fit_sd},
                crlb_covariance=cov,
                noise_seed=None if math.isinf(snr) else 1234,
            )
        )
    return truth, cases


COMMON = dict(
    bootstrap_seed=3,
    config={},
    wall_times_s={},
    title="snr unit test",
    context="synthetic estimates",
    n_boot=50,
)


def _evaluate(out, truth, predictions, **kwargs):
    evaluation = evaluate_predictions(truth, predictions, METABOLITES, **COMMON, **kwargs)
    return write_evaluation(evaluation, out)


def _write(tmp_path, truth, cases):
    evaluation = evaluate_snr_cases(cases, METABOLITES, **COMMON)
    assert np.array_equal(evaluation.truth, truth)
    return write_evaluation(evaluation, tmp_path)


def test_by_snr_layout_and_the_subset(tmp_path):
    truth, cases = _cases()
    doc = _write(tmp_path, truth, cases)
    assert json.loads((tmp_path / "metrics.json").read_text()) == doc
    # the fit sits beside the models with its own count, outside the paired comparison
    assert list(doc["models"]) == ["scalogram_cnn", "spectrum_cnn", "fit"]
    assert doc["models"]["fit"]["n_signals"] == 30
    assert doc["models"]["spectrum_cnn"]["n_signals"] == 150
    assert [(p["a"], p["b"]) for p in doc["comparison"]["pairs"]] == [
        ("scalogram_cnn", "spectrum_cnn")
    ]
    assert list(doc["comparison"]["paper"]["models"]) == ["scalogram_cnn", "spectrum_cnn"]

    assert list(doc["by_snr"]) == ["inf", "20"]
    noiseless, noisy = doc["by_snr"]["inf"], doc["by_snr"]["20"]
    assert noiseless["snr"] == "inf" and noisy["snr"] == 20.0
    assert noiseless["noise_seed"] is None and noisy["noise_seed"] == 1234
    assert list(noisy["methods"]) == ["scalogram_cnn", "spectrum_cnn"]
    assert noisy["subset"]["n_signals"] == 30
    assert list(noisy["subset"]["methods"]) == ["scalogram_cnn", "spectrum_cnn", "fit"]
    for metric in ("mae", "smape", "rmse"):
        assert set(noisy["methods"]["spectrum_cnn"]["per_metabolite"]["NAA"]) >= {metric}
    # the subset of a model is its first 30 signals, computed again from the arrays
    pred = cases[1].predictions["spectrum_cnn"][:30]
    expected = np.sqrt(np.mean((pred - truth[:30]) ** 2, axis=0))
    got = [
        noisy["subset"]["methods"]["spectrum_cnn"]["per_metabolite"][m]["rmse"] for m in METABOLITES
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # the top level is the first case
    assert doc["models"]["spectrum_cnn"]["mean"] == noiseless["methods"]["spectrum_cnn"]["mean"]
    assert doc["models"]["fit"]["mean"] == noiseless["subset"]["methods"]["fit"]["mean"]
    # the exact noiseless 'fit' has no error; its bound is 0
    assert noiseless["subset"]["methods"]["fit"]["mean"]["mae"] == 0.0
    assert noiseless["crlb"]["mean"]["rms_sd"] == 0.0


def test_crlb_summary_known_answers():
    # two signals; NAA's SD 0.1 then 0.3: mean 0.2, RMS sqrt((0.01 + 0.09) / 2); GPC and PCho
    # with SD 0.2 each and correlation -0.5: the sum's SD is sqrt(0.04 + 0.04 - 2 * 0.02) = 0.2
    m = len(METABOLITES)
    cov = np.zeros((2, m, m))
    i_naa, i_gpc, i_pcho = (METABOLITES.index(x) for x in ("NAA", "GPC", "PCho"))
    cov[:, range(m), range(m)] = 0.04
    cov[0, i_naa, i_naa], cov[1, i_naa, i_naa] = 0.01, 0.09
    cov[:, i_gpc, i_pcho] = cov[:, i_pcho, i_gpc] = -0.02
    summary = crlb_summary(cov, METABOLITES)
    assert summary["per_metabolite"]["NAA"]["mean_sd"] == pytest.approx(0.2)
    assert summary["per_metabolite"]["NAA"]["rms_sd"] == pytest.approx(math.sqrt(0.05))
    assert summary["per_metabolite"]["Cr"] == pytest.approx({"mean_sd": 0.2, "rms_sd": 0.2})
    assert summary["combined"]["GPC+PCho"]["mean_sd"] == pytest.approx(0.2)
    assert summary["n_signals"] == 2 and summary["n_non_finite"] == 0


def test_non_finite_bounds_are_left_out_and_counted():
    cov = np.broadcast_to(np.eye(len(METABOLITES)) * 0.01, (3, 7, 7)).copy()
    cov[2, 0, 0] = np.inf
    summary = crlb_summary(cov, METABOLITES)
    assert summary["n_non_finite"] == 1
    assert summary["per_metabolite"]["NAA"]["mean_sd"] == pytest.approx(0.1)


def test_sums_of_metabolites():
    weights, names = combination_weights(METABOLITES)
    assert names == ["GPC+PCho"]
    assert weights[:, 0].tolist() == [0, 0, 0, 1, 1, 0, 0]
    assert combination_weights(["NAA", "GPC"])[1] == []
    # errors of GPC and PCho that cancel leave their sum exact
    rng = np.random.default_rng(4)
    truth = rng.uniform(0.2, 1, (40, len(METABOLITES)))
    pred = truth.copy()
    shift = rng.uniform(-0.1, 0.1, 40)
    pred[:, 3] += shift
    pred[:, 4] -= shift
    out = method_metrics(truth, pred, METABOLITES)
    assert out["per_metabolite"]["GPC"]["mae"] == pytest.approx(np.mean(np.abs(shift)))
    assert out["combined"]["GPC+PCho"]["mae"] == pytest.approx(0, abs=1e-15)


def test_report_and_figure(tmp_path):
    truth, cases = _cases()
    doc = _write(tmp_path, truth, cases)
    report = (tmp_path / "report.md").read_text()
    assert "## Error against SNR" in report
    assert "| method | noiseless | SNR 20 |" in report
    assert "| fit (first 30) |" in report and "| spectrum_cnn (all 150) |" in report
    assert "| CRLB of the fit (RMS over signals) | 0 | 0.05 |" in report
    assert "### SNR 20: RMSE of the main metabolites (30 signals)" in report
    assert "| GPC+PCho |" in report
    assert "| fit (first 30 signals) |" in report  # in the top-level mean table
    rmse = doc["by_snr"]["20"]["subset"]["methods"]["fit"]["mean"]["rmse"]
    assert rmse == pytest.approx(0.05, rel=0.15)  # the 'fit' meets its bound, as built
    path = tmp_path / "figures" / "error_vs_snr.png"
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = mpimg.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 600 and image[..., :3].std() > 0.05
    assert "](figures/error_vs_snr.png)" in report


def test_without_snrs_the_layout_is_unchanged(tmp_path):
    truth, cases = _cases()
    doc = _evaluate(tmp_path, truth, cases[0].predictions)
    assert set(doc) == {"models", "comparison", "config", "wall_times_s", "versions"}
    assert not (tmp_path / "figures" / "error_vs_snr.png").exists()


def test_bad_partial_and_repeated_snrs_are_refused(tmp_path):
    truth, cases = _cases()
    with pytest.raises(InvalidDataError, match="fit"):
        _evaluate(
            tmp_path,
            truth,
            cases[0].predictions,
            partial={"fit": np.full((30, len(METABOLITES)), np.nan)},
        )
    with pytest.raises(InvalidDataError, match="same SNR"):
        _write(tmp_path, truth, [cases[1], cases[1]])


def test_calibration_per_snr_from_predicted_sds(tmp_path):
    # Gaussian errors whose SD the 'model' predicts exactly: its 95% intervals cover the truth
    # in 95% of 2000 signals per SNR (binomial SD 0.5%; tolerance 2%); the 'overconfident'
    # model predicts half the SD: coverage P(|z| < 0.98) = 67%
    rng = np.random.default_rng(9)
    n, m = 2000, len(METABOLITES)
    truth = rng.uniform(0, 1, (n, m))
    cases = []
    for snr, sd in ((math.inf, 0.02), (30.0, 0.08)):
        sd_true = np.full((n, m), sd) * rng.uniform(0.5, 1.5, (n, 1))
        pred = truth + rng.normal(0, 1, (n, m)) * sd_true
        cases.append(
            SnrCase(
                snr=snr,
                truth=truth,
                predictions={"calibrated": pred, "overconfident": pred},
                sds={"calibrated": sd_true, "overconfident": sd_true / 2},
            )
        )
    doc = _write(tmp_path, truth, cases)
    table = doc["calibration"]["calibrated"]
    assert list(table["groups"]) == ["30", "inf", "all"]
    for group in table["groups"].values():
        for value in group["coverage"]["0.95"].values():
            assert value == pytest.approx(0.95, abs=0.02)
    over = doc["calibration"]["overconfident"]["groups"]["all"]["mean_coverage"]["0.95"]
    assert over == pytest.approx(0.672, abs=0.02)
    report = (tmp_path / "report.md").read_text()
    assert "## Calibration of the predicted uncertainty" in report
    assert "### calibrated" in report and "### overconfident" in report
    path = tmp_path / "figures" / "reliability.png"
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert "](figures/reliability.png)" in report


def test_a_second_sd_is_calibrated_beside_the_first(tmp_path):
    # a physics model's CRLB (sds) and its network's own SD (network_sds): each calibrated
    # under its own name, with the same estimates (the network SD here is exact, the CRLB
    # half of it: coverage P(|z| < 0.98) = 67 %)
    rng = np.random.default_rng(4)
    n, m = 2000, len(METABOLITES)
    truth = rng.uniform(0, 1, (n, m))
    sd_true = np.full((n, m), 0.05)
    pred = truth + rng.normal(0, 1, (n, m)) * sd_true
    case = SnrCase(
        snr=30.0,
        truth=truth,
        predictions={"physics": pred},
        sds={"physics": sd_true / 2},
        network_sds={"physics": sd_true},
    )
    doc = _write(tmp_path, truth, [case])
    network = doc["calibration"][f"physics{NETWORK_SD}"]["groups"]["all"]["mean_coverage"]
    crlb = doc["calibration"]["physics"]["groups"]["all"]["mean_coverage"]
    assert network["0.95"] == pytest.approx(0.95, abs=0.02)
    assert crlb["0.95"] == pytest.approx(0.672, abs=0.02)
    assert list(doc["models"]) == ["physics"]  # a calibration entry, not a method
