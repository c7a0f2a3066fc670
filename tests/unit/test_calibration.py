"""Coverage, calibration tables over SNRs and the reliability diagram (known answers)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from scaloquant.errors import InvalidDataError
from scaloquant.evaluate.calibration import (
    RELIABILITY_LEVELS,
    calibration_markdown,
    calibration_table,
    coverage,
    observed_coverage,
    snr_groups,
)
from scaloquant.report.evaluation_figures import reliability_figure


def _gaussian(n, m, scale, seed=0):
    """Truth drawn around mean 0 with SD ``scale * sd``: calibrated when scale is 1."""
    rng = np.random.default_rng(seed)
    sd = rng.uniform(0.1, 1.0, (n, m))
    return rng.normal(0.0, scale * sd), np.zeros((n, m)), sd


def test_coverage_of_calibrated_gaussian_errors_is_nominal():
    truth, mean, sd = _gaussian(20_000, 3, 1.0)
    for level in (0.5, 0.68, 0.95):
        # binomial SD of a fraction over 20,000 signals is < 0.0036: 4 SD
        np.testing.assert_allclose(coverage(truth, mean, sd, level), level, atol=0.0145)
    # twice too small SDs: the 95 % interval is the +-0.98 sigma one, P = 0.6729
    truth2, mean2, sd2 = _gaussian(20_000, 2, 2.0, seed=1)
    np.testing.assert_allclose(coverage(truth2, mean2, sd2, 0.95), 0.6729, atol=0.0145)
    pooled = observed_coverage(truth, mean, sd, (0.2, 0.9))
    np.testing.assert_allclose(pooled, [0.2, 0.9], atol=0.01)


def test_coverage_edge_cases():
    truth = np.array([[0.0, 1.0], [0.0, 2.0]])
    sd = np.array([[1.0, np.nan], [1.0, np.nan]])
    cov = coverage(truth, truth + 3.0, sd)  # 3 sigma off: outside the 95 % interval
    assert cov[0] == 0.0 and np.isnan(cov[1])
    assert coverage(truth, truth, np.ones_like(truth))[0] == 1.0
    assert np.all(np.isnan(coverage(np.zeros((0, 2)), np.zeros((0, 2)), np.ones((0, 2)))))
    with pytest.raises(InvalidDataError, match="one \\(n_signals, n_metabolites\\) shape"):
        coverage(truth, truth[:, :1], sd)


def test_snr_groups():
    assert list(snr_groups(None, 3)) == ["inf", "inf", "inf"]
    assert list(snr_groups(np.array([10.0, 30.0, 10.0]), 3)) == ["10", "30", "10"]
    snr = np.linspace(10, 100, 400)
    labels = snr_groups(snr, 400, max_groups=4)
    names, counts = np.unique(labels, return_counts=True)
    assert len(names) == 4 and np.all(counts == 100)
    assert labels[0] == "10-32.5" and labels[-1] == "77.5-100"
    with pytest.raises(InvalidDataError, match="SNR values for 3 signals"):
        snr_groups(np.ones(2), 3)


def test_calibration_table_groups_levels_and_target():
    good = _gaussian(4000, 2, 1.0, seed=2)
    bad = _gaussian(4000, 2, 2.0, seed=3)  # SDs half the true spread: ~67 % coverage
    truth, mean, sd = (np.concatenate(pair) for pair in zip(good, bad, strict=True))
    labels = ["100"] * 4000 + ["10"] * 4000
    table = calibration_table(truth, mean, sd, labels, metabolites=["NAA", "Cr"])
    assert table["levels"] == [0.68, 0.95] and table["target_95"] == [0.90, 0.98]
    assert list(table["groups"]) == ["10", "100", "all"]  # increasing SNR, then all
    g10, g100 = table["groups"]["10"], table["groups"]["100"]
    assert g10["n_signals"] == g100["n_signals"] == 4000
    assert g100["within_target_95"] and not g10["within_target_95"]
    assert g10["coverage"]["0.95"]["NAA"] == pytest.approx(0.6729, abs=0.03)
    assert g100["mean_coverage"]["0.68"] == pytest.approx(0.68, abs=0.03)
    # calibrated SDs: RMS SD close to the RMSE (mean SD is below it; both reported)
    assert g100["rmse"]["Cr"] == pytest.approx(np.sqrt(np.mean(good[2][:, 1] ** 2)), rel=0.05)
    assert table["groups"]["all"]["n_signals"] == 8000
    text = calibration_markdown(table)
    assert "| metabolite | SNR 10 | SNR 100 | SNR all |" in text
    assert text.count("\n") == 2 + 2 + 2  # header, rule, two metabolites, mean, signals
    with pytest.raises(InvalidDataError, match="3 SNR labels for 8000 signals"):
        calibration_table(truth, mean, sd, ["1", "2", "3"])


def test_inf_sorts_last_and_ranges_by_their_lower_end():
    truth, mean, sd = _gaussian(6, 1, 1.0)
    labels = ["inf", "30-100", "10-30", "inf", "30-100", "10-30"]
    table = calibration_table(truth, mean, sd, labels)
    assert list(table["groups"]) == ["10-30", "30-100", "inf", "all"]


def test_reliability_figure_draws_one_line_per_group():
    groups = {"SNR 10": _gaussian(500, 2, 1.0), "SNR 100": _gaussian(500, 2, 1.5, seed=4)}
    fig = reliability_figure(groups)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["ideal", "95 % target", "SNR 10", "SNR 100"]
    x, y = ax.get_lines()[2].get_data()
    np.testing.assert_allclose(x, RELIABILITY_LEVELS)
    assert np.all(np.diff(y) >= 0)  # wider intervals cover at least as much
