"""The paired bootstrap: coverage of the true difference, width, pairing, reproducibility."""

import numpy as np
import pytest

from scaloquant.errors import ConfigError
from scaloquant.evaluate.bootstrap import paired_bootstrap
from scaloquant.evaluate.metrics import smape_terms


def _case(rng, n):
    """Truth U[0.1, 1]; A has relative errors U[-0.1, 0.1], B U[-0.15, 0.15] (both columns)."""
    truth = rng.uniform(0.1, 1.0, size=(n, 2))
    pred_a = truth * (1 + rng.uniform(-0.1, 0.1, size=(n, 2)))
    pred_b = truth * (1 + rng.uniform(-0.15, 0.15, size=(n, 2)))
    return truth, pred_a, pred_b


def _population_smape_difference():
    # The SMAPE term depends only on the relative error e: 2|e| / (2 + e); a large Monte Carlo
    # sample (4e6 draws: standard error ~1e-3 %) gives the population difference.
    rng = np.random.default_rng(12345)
    e_a = rng.uniform(-0.1, 0.1, 4_000_000)
    e_b = rng.uniform(-0.15, 0.15, 4_000_000)
    return 100 * (np.mean(2 * np.abs(e_a) / (2 + e_a)) - np.mean(2 * np.abs(e_b) / (2 + e_b)))


def test_interval_covers_the_true_difference_at_the_nominal_rate():
    true_diff = _population_smape_difference()  # about -2.5 percentage points
    rng = np.random.default_rng(7)
    covered = 0
    widths, diffs = [], []
    n_rep = 100
    for _ in range(n_rep):
        truth, pred_a, pred_b = _case(rng, 200)
        res = paired_bootstrap(truth, pred_a, pred_b, n_boot=400, rng=rng)
        covered += int(res.low[0] <= true_diff <= res.high[0])
        widths.append(res.high[0] - res.low[0])
        diffs.append(res.diff[0])
    # Binomial(100, 0.95) falls below 86 with probability < 0.1%; the percentile bootstrap at
    # n = 200 may under-cover by a point or two, which this bound tolerates.
    assert covered >= 86
    # Width must match the sampling spread of the difference itself: 2 * 1.96 * SD over datasets
    # (within 25%: the SD of 100 replicates is known to about 7%).
    assert np.mean(widths) == pytest.approx(2 * 1.96 * np.std(diffs), rel=0.25)


def test_reproducible_with_a_seed_and_different_with_another():
    truth, pred_a, pred_b = _case(np.random.default_rng(1), 300)
    r1 = paired_bootstrap(truth, pred_a, pred_b, rng=np.random.default_rng(5), n_boot=300)
    r2 = paired_bootstrap(truth, pred_a, pred_b, rng=np.random.default_rng(5), n_boot=300)
    r3 = paired_bootstrap(truth, pred_a, pred_b, rng=np.random.default_rng(6), n_boot=300)
    np.testing.assert_array_equal(r1.low, r2.low)
    np.testing.assert_array_equal(r1.high, r2.high)
    assert r1.mean_low == r2.mean_low
    assert not np.array_equal(r1.low, r3.low)


def test_diff_is_the_full_sample_difference_and_mean_is_its_mean():
    truth, pred_a, pred_b = _case(np.random.default_rng(2), 100)
    res = paired_bootstrap(truth, pred_a, pred_b, rng=np.random.default_rng(0), n_boot=200)
    expected = 100 * (smape_terms(truth, pred_a) - smape_terms(truth, pred_b)).mean(axis=0)
    np.testing.assert_allclose(res.diff, expected, rtol=1e-12)
    assert res.mean_diff == pytest.approx(expected.mean())
    assert res.mean_low <= res.mean_diff <= res.mean_high


def test_pairing_detects_a_consistent_small_difference():
    # B's error is 2% larger than A's on every signal: paired, that is a certain win for A even
    # though the errors themselves vary a lot from signal to signal.
    rng = np.random.default_rng(3)
    truth = rng.uniform(0, 1, size=(150, 1))
    err = rng.normal(0, 0.2, size=(150, 1))
    res = paired_bootstrap(
        truth, truth + err, truth + 1.02 * err, metric="mae", n_boot=500, rng=rng
    )
    assert res.high[0] < 0
    assert res.favoured() == ["a"]
    assert res.mean_favoured() == "a"


def test_equal_methods_favour_none_and_r2_direction():
    rng = np.random.default_rng(4)
    truth = rng.uniform(0, 1, size=(200, 2))
    noisy = truth + rng.normal(0, 0.1, size=(200, 2))
    same = paired_bootstrap(truth, noisy, noisy, n_boot=100, rng=rng)
    assert same.favoured() == ["none", "none"]
    # A exact, B noisy: A has the larger R^2 (diff > 0) and must be the favoured one.
    res = paired_bootstrap(truth, truth, noisy, metric="r2", n_boot=200, rng=rng)
    assert np.all(res.low > 0)
    assert res.favoured() == ["a", "a"]


def test_to_dict_layout():
    truth, pred_a, pred_b = _case(np.random.default_rng(8), 50)
    d = paired_bootstrap(
        truth, pred_a, pred_b, rng=np.random.default_rng(0), n_boot=50, metabolites=["NAA", "Cr"]
    ).to_dict()
    assert set(d["per_metabolite"]) == {"NAA", "Cr"}
    assert set(d["per_metabolite"]["NAA"]) == {"diff", "low", "high", "favours"}
    assert set(d["mean"]) == {"diff", "low", "high", "favours"}
    assert d["metric"] == "smape" and d["n_boot"] == 50 and d["confidence"] == 0.95


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metric": "mape"}, "unknown metric"),
        ({"n_boot": 0}, r"n_boot \(bootstrap resamples\) must be a whole number >= 1, got 0"),
        ({"confidence": 1.0}, "confidence"),
    ],
)
def test_bad_options(kwargs, match):
    truth, pred_a, pred_b = _case(np.random.default_rng(9), 10)
    with pytest.raises(ConfigError, match=match):
        paired_bootstrap(truth, pred_a, pred_b, rng=np.random.default_rng(0), **kwargs)
