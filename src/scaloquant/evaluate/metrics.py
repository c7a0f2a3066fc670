"""Accuracy metrics of estimated amplitudes, per metabolite, as pure numpy functions.

Every metric takes ``truth`` and ``pred`` of shape ``(..., n_signals, n_metabolites)`` and
reduces over the signal axis, returning ``(..., n_metabolites)``; the leading axes let the
bootstrap evaluate many resamples in one call. The registry :data:`METRICS` maps the names used
in ``metrics.json`` to these functions.

Definitions (the paper's Eqs. 2 and 3, with A the true and Â the estimated amplitude, N signals):

* ``mae``: mean of ``|A - Â|`` (Eq. 2).
* ``mae_std``: population standard deviation (ddof = 0) of ``|A - Â|``, the spread drawn as error
  bars in the paper's Fig. 3 (left).
* ``smape``: ``100/N * sum |A - Â| / ((|A| + |Â|) / 2)`` in percent (Eq. 3); a term whose
  denominator is 0 has ``A = Â = 0`` and counts as 0 (0/0 := 0), so SMAPE lies in [0, 200].
* ``rmse``: ``sqrt(mean((A - Â)^2))``.
* ``r2``: coefficient of determination ``1 - SSE/SST`` with ``SST`` about the mean of the truth.
  For a constant truth (SST = 0) it is 1 when the prediction is exact and 0 otherwise, the finite
  convention of scikit-learn's ``r2_score(force_finite=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..errors import InvalidDataError

MetricFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def mae(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Mean absolute error per metabolite (paper's Eq. 2), ``(..., n, M) -> (..., M)``."""
    return np.mean(np.abs(truth - pred), axis=-2)


def mae_std(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Standard deviation (ddof = 0) of the absolute error, ``(..., n, M) -> (..., M)``."""
    return np.std(np.abs(truth - pred), axis=-2)


def smape_terms(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-signal SMAPE terms ``|A - Â| / ((|A| + |Â|) / 2)`` with 0/0 := 0, same shape as inputs."""
    num = np.abs(truth - pred)
    den = (np.abs(truth) + np.abs(pred)) / 2.0
    # den == 0 only where A = Â = 0, so num is 0 there too: the exact prediction of a zero.
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def smape(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Symmetric mean absolute percentage error in percent (paper's Eq. 3), ``(..., M)``."""
    return 100.0 * np.mean(smape_terms(truth, pred), axis=-2)


def rmse(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Root-mean-square error per metabolite, ``(..., n, M) -> (..., M)``."""
    return np.sqrt(np.mean((truth - pred) ** 2, axis=-2))


def r2(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination per metabolite, ``(..., n, M) -> (..., M)``.

    ``1 - sum (A - Â)^2 / sum (A - mean A)^2``; a constant truth gives 1 for an exact prediction
    and 0 otherwise (scikit-learn's ``force_finite`` convention), so the value is always finite.
    """
    sse = np.sum((truth - pred) ** 2, axis=-2)
    sst = np.sum((truth - np.mean(truth, axis=-2, keepdims=True)) ** 2, axis=-2)
    # Test constancy exactly: a float mean of equal values can leave an SST of ~1e-33, not 0.
    constant = np.all(truth == truth[..., :1, :], axis=-2)
    safe_sst = np.where(constant, 1.0, sst)
    return np.where(constant, np.where(sse == 0, 1.0, 0.0), 1.0 - sse / safe_sst)


#: Metric name -> function; the order is the column order of tables and ``metrics.json``.
def slope(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Slope of the ordinary least-squares line (with intercept) of estimate against truth, per
    metabolite, ``(n, M) -> (M,)``: 1 for an unbiased estimator, below 1 for one that shrinks
    towards its training prior (issue 13); NaN for a constant truth. Not a metric of
    :data:`METRICS` (no per-signal terms to resample)."""
    truth = np.asarray(truth, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    dt = truth - truth.mean(axis=-2, keepdims=True)
    dp = pred - pred.mean(axis=-2, keepdims=True)
    var = np.sum(dt * dt, axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, np.sum(dt * dp, axis=-2) / var, np.nan)


METRICS: Mapping[str, MetricFn] = MappingProxyType(
    {"mae": mae, "mae_std": mae_std, "smape": smape, "rmse": rmse, "r2": r2}
)

#: Metrics where a larger value is better; for the others smaller is better.
HIGHER_IS_BETTER = frozenset({"r2"})


def check_predictions(truth: np.ndarray, pred: np.ndarray, what: str = "predictions") -> None:
    """Raise :class:`InvalidDataError` unless ``truth`` and ``pred`` are finite ``(n, M)`` arrays."""
    truth = np.asarray(truth)
    pred = np.asarray(pred)
    if truth.ndim != 2 or truth.shape[0] < 1 or truth.shape[1] < 1:
        raise InvalidDataError(
            f"true amplitudes must have shape (n_signals, n_metabolites), got {truth.shape}"
        )
    if pred.shape != truth.shape:
        raise InvalidDataError(
            f"{what} have shape {pred.shape} but the true amplitudes {truth.shape}; "
            "predict every test signal and every metabolite"
        )
    for name, arr in (("true amplitudes", truth), (what, pred)):
        if not np.all(np.isfinite(arr)):
            raise InvalidDataError(f"{name} contain NaN or Inf; check the model and the test file")


@dataclass(frozen=True)
class MetricTable:
    """Every metric of :data:`METRICS` for one method on one test set.

    Attributes
    ----------
    metabolites : names, in the column order of the amplitudes.
    values : metric name -> array ``(n_metabolites,)``.
    pooled_rmse : ``sqrt(mean((A - Â)^2))`` over all signals and metabolites together: the quantity
        the paper's training loss measures (see :func:`matlab_half_mse`).
    n_signals : number of test signals.
    """

    metabolites: tuple[str, ...]
    values: Mapping[str, np.ndarray]
    pooled_rmse: float
    n_signals: int

    def per_metabolite(self) -> dict[str, dict[str, float]]:
        """``{metabolite: {metric: value}}`` as plain floats (the ``metrics.json`` layout)."""
        return {
            name: {metric: float(self.values[metric][i]) for metric in METRICS}
            for i, name in enumerate(self.metabolites)
        }

    def mean(self) -> dict[str, float]:
        """``{metric: mean over metabolites}`` (unweighted: every metabolite counts once)."""
        return {metric: float(np.mean(self.values[metric])) for metric in METRICS}


def compute_metrics(truth: np.ndarray, pred: np.ndarray, metabolites: Sequence[str]) -> MetricTable:
    """All registered metrics of ``pred`` against ``truth``, both ``(n_signals, n_metabolites)``."""
    truth = np.asarray(truth, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    check_predictions(truth, pred)
    if len(metabolites) != truth.shape[1]:
        raise InvalidDataError(
            f"{len(metabolites)} metabolite names for {truth.shape[1]} amplitude columns"
        )
    values = MappingProxyType({name: fn(truth, pred) for name, fn in METRICS.items()})
    return MetricTable(
        metabolites=tuple(metabolites),
        values=values,
        pooled_rmse=float(np.sqrt(np.mean((truth - pred) ** 2))),
        n_signals=int(truth.shape[0]),
    )


def matlab_half_mse(pooled_rmse: float, n_outputs: int) -> float:
    """MATLAB's ``regressionLayer`` loss for a pooled RMSE: ``0.5 * n_outputs * rmse^2``.

    MATLAB's half-mean-squared-error sums the squared errors of the ``R`` responses (not divided
    by ``R``), halves the sum and averages over observations (MathWorks, ``RegressionOutputLayer``
    documentation). The paper's validation loss of 0.23 with 21 outputs is thus a pooled RMSE of
    ``sqrt(2 * 0.23 / 21) = 0.148`` per amplitude.
    """
    return 0.5 * n_outputs * pooled_rmse**2


def pooled_rmse_from_matlab_loss(loss: float, n_outputs: int) -> float:
    """Inverse of :func:`matlab_half_mse`: the pooled RMSE per amplitude of a MATLAB loss."""
    return float(np.sqrt(2.0 * loss / n_outputs))
