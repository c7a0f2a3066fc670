"""Known-answer tests of the per-metabolite metrics (values worked out by hand below)."""

import numpy as np
import pytest

from scaloquant.errors import InvalidDataError
from scaloquant.evaluate.metrics import (
    METRICS,
    compute_metrics,
    mae,
    mae_std,
    matlab_half_mse,
    pooled_rmse_from_matlab_loss,
    r2,
    rmse,
    smape,
)

# Three signals, two metabolites. Column 0 errors |A - Â| = 0.5, 0, 0.2; column 1 errors 0, 0.1, 0
# with a 0/0 term in its first row.
TRUTH = np.array([[1.0, 0.0], [0.5, 0.0], [0.0, 0.2]])
PRED = np.array([[0.5, 0.0], [0.5, 0.1], [0.2, 0.2]])


def test_mae_known_answer():
    np.testing.assert_allclose(mae(TRUTH, PRED), [0.7 / 3, 0.1 / 3], rtol=1e-12)


def test_mae_std_is_population_std_of_absolute_errors():
    # column 0: mean 0.7/3, squared deviations sum to 0.38/3 (= 0.0711 + 0.0544 + 0.0011)
    expected0 = np.sqrt((0.5**2 + 0 + 0.2**2) / 3 - (0.7 / 3) ** 2)
    expected1 = np.sqrt(0.1**2 / 3 - (0.1 / 3) ** 2)
    np.testing.assert_allclose(mae_std(TRUTH, PRED), [expected0, expected1], rtol=1e-12)


def test_smape_known_answer_with_zero_over_zero():
    # column 0 terms: 0.5/0.75, 0/0.5, 0.2/0.1 -> (2/3 + 0 + 2)/3; column 1: 0/0 := 0, 0.1/0.05, 0
    np.testing.assert_allclose(smape(TRUTH, PRED), [100 * (2 / 3 + 2) / 3, 100 * 2 / 3], rtol=1e-12)


def test_rmse_known_answer():
    np.testing.assert_allclose(
        rmse(TRUTH, PRED), [np.sqrt(0.29 / 3), np.sqrt(0.01 / 3)], rtol=1e-12
    )


def test_r2_known_answer():
    # column 0: SST = 0.25 + 0 + 0.25, SSE = 0.29; column 1: SST = 2*(0.2/3)^2 + (0.4/3)^2, SSE 0.01
    sst1 = 2 * (0.2 / 3) ** 2 + (0.4 / 3) ** 2
    np.testing.assert_allclose(r2(TRUTH, PRED), [1 - 0.29 / 0.5, 1 - 0.01 / sst1], rtol=1e-12)


def test_r2_constant_truth_is_finite():
    truth = np.full((4, 2), 0.1)  # 0.1 is not exact in binary: the float mean may differ from it
    pred = truth.copy()
    pred[2, 1] += 0.05
    np.testing.assert_array_equal(r2(truth, pred), [1.0, 0.0])


def test_smape_edge_cases():
    zeros = np.zeros((3, 1))
    assert smape(zeros, zeros)[0] == 0.0  # 0/0 := 0 everywhere
    ones = np.ones((3, 1))
    assert smape(ones, zeros)[0] == pytest.approx(200.0)  # the maximum: predicting 0 for 1
    assert smape(ones, ones)[0] == 0.0


def test_metrics_reduce_over_the_signal_axis_with_leading_axes():
    stacked_t = np.stack([TRUTH, TRUTH[::-1]])
    stacked_p = np.stack([PRED, PRED[::-1]])
    for fn in METRICS.values():
        out = fn(stacked_t, stacked_p)
        assert out.shape == (2, 2)
        np.testing.assert_allclose(out[0], fn(TRUTH, PRED), rtol=1e-12)
        np.testing.assert_allclose(out[1], fn(TRUTH, PRED), rtol=1e-12)  # order of signals is moot


def test_compute_metrics_tables_and_mean():
    table = compute_metrics(TRUTH, PRED, ["NAA", "Cr"])
    per = table.per_metabolite()
    assert list(per) == ["NAA", "Cr"]
    assert list(per["NAA"]) == ["mae", "mae_std", "smape", "rmse", "r2"]
    assert per["Cr"]["smape"] == pytest.approx(200 / 3)
    mean = table.mean()
    assert mean["mae"] == pytest.approx((0.7 / 3 + 0.1 / 3) / 2)
    assert table.pooled_rmse == pytest.approx(np.sqrt(0.30 / 6))
    assert table.n_signals == 3


def test_paper_loss_conversion():
    # The figures: 0.23 half-MSE summed over 21 outputs is 0.148 RMSE per amplitude.
    assert pooled_rmse_from_matlab_loss(0.23, 21) == pytest.approx(0.148, abs=5e-4)
    assert matlab_half_mse(pooled_rmse_from_matlab_loss(0.23, 21), 21) == pytest.approx(0.23)


@pytest.mark.parametrize(
    ("truth", "pred", "match"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "shape"),
        (np.zeros(3), np.zeros(3), "n_signals, n_metabolites"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "n_signals, n_metabolites"),
        (np.zeros((3, 2)), np.full((3, 2), np.nan), "NaN"),
    ],
)
def test_bad_input_is_a_clear_error(truth, pred, match):
    with pytest.raises(InvalidDataError, match=match):
        compute_metrics(truth, pred, [str(i) for i in range(np.atleast_2d(truth).shape[-1])])


def test_wrong_number_of_names():
    with pytest.raises(InvalidDataError, match="names"):
        compute_metrics(TRUTH, PRED, ["NAA"])
