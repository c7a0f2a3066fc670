"""Paired bootstrap comparison of two methods on the same test signals.

Both methods' errors are resampled with the *same* signal indices, so the spread of the difference
reflects only how the methods differ on the signals, not which signals were drawn (Efron &
Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13: percentile intervals).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._config import whole_number
from ..errors import ConfigError
from .metrics import HIGHER_IS_BETTER, METRICS, check_predictions

#: Bootstrap resamples of every paired comparison unless told otherwise (``--n-boot``).
DEFAULT_N_BOOT = 2000

#: Which method an interval favours: ``"a"``, ``"b"`` or ``"none"`` (the interval includes 0).
Side = Literal["a", "b", "none"]

#: Elements of one ``(chunk, n_signals, n_metabolites)`` resample block: bounds memory (~100 MB).
_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class PairedBootstrap:
    """Difference ``metric(A) - metric(B)`` per metabolite and over the mean, with its interval.

    Attributes
    ----------
    metric : metric name from :data:`~scaloquant.evaluate.metrics.METRICS`.
    metabolites : names, in column order.
    diff, low, high : arrays ``(n_metabolites,)``: the difference on the full test set and the
        percentile interval's bounds.
    mean_diff, mean_low, mean_high : the same for the mean of the metric over metabolites.
    n_boot : number of resamples; confidence : interval coverage (0.95 for a 95% interval).
    """

    metric: str
    metabolites: tuple[str, ...]
    diff: np.ndarray
    low: np.ndarray
    high: np.ndarray
    mean_diff: float
    mean_low: float
    mean_high: float
    n_boot: int
    confidence: float

    def favoured(self) -> list[Side]:
        """Per metabolite ``"a"``, ``"b"`` or ``"none"``: which method the interval favours.

        A method is favoured when the whole interval lies on its better side of 0; an interval
        that includes 0 means no significant difference.
        """
        return [_side(lo, hi, self.metric) for lo, hi in zip(self.low, self.high, strict=True)]

    def mean_favoured(self) -> Side:
        """``"a"``, ``"b"`` or ``"none"`` for the mean over metabolites."""
        return _side(self.mean_low, self.mean_high, self.metric)

    def to_dict(self) -> dict:
        """Plain-JSON form: per metabolite and mean ``{"diff", "low", "high", "favours"}``."""
        favoured = self.favoured()
        return {
            "metric": self.metric,
            "n_boot": self.n_boot,
            "confidence": self.confidence,
            "per_metabolite": {
                name: {
                    "diff": float(self.diff[i]),
                    "low": float(self.low[i]),
                    "high": float(self.high[i]),
                    "favours": favoured[i],
                }
                for i, name in enumerate(self.metabolites)
            },
            "mean": {
                "diff": self.mean_diff,
                "low": self.mean_low,
                "high": self.mean_high,
                "favours": self.mean_favoured(),
            },
        }


def _side(low: float, high: float, metric: str) -> Side:
    # diff = A - B; for an error metric a negative difference means A is better.
    a_better_when_negative = metric not in HIGHER_IS_BETTER
    if high < 0:
        return "a" if a_better_when_negative else "b"
    if low > 0:
        return "b" if a_better_when_negative else "a"
    return "none"


def check_options(
    *,
    metric: str = "smape",
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = 0.95,
    seed: int = 0,
) -> None:
    """Raise :class:`ConfigError` for an unknown metric, ``n_boot < 1``, a confidence outside
    (0, 1) or a negative ``seed`` (numpy's generator takes none: ``evaluate --seed -1`` with two
    models ended in its traceback); callers check before long work so that a typo does not
    cost a training run."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    whole_number("n_boot (bootstrap resamples)", n_boot, 1)
    whole_number("seed", seed, 0)
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def paired_bootstrap(
    truth: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    *,
    rng: np.random.Generator,
    metric: str = "smape",
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = 0.95,
    metabolites: Sequence[str] | None = None,
) -> PairedBootstrap:
    """Percentile bootstrap interval of ``metric(pred_a) - metric(pred_b)`` per metabolite.

    Parameters
    ----------
    truth, pred_a, pred_b : arrays ``(n_signals, n_metabolites)``; rows are the same test signals.
    rng : the generator that draws the resampled signal indices (results are reproducible from it).
    metric : a name in :data:`~scaloquant.evaluate.metrics.METRICS` (default SMAPE).
    n_boot : number of resamples of the ``n_signals`` test signals, with replacement.
    confidence : coverage of the two-sided percentile interval.
    metabolites : column names (default ``"0", "1", ...``).

    Returns
    -------
    PairedBootstrap
        ``diff`` is computed on the full test set; ``low``/``high`` are the
        ``(1 - confidence)/2`` and ``(1 + confidence)/2`` percentiles of the resampled differences.
        The mean over metabolites is resampled the same way.
    """
    check_options(metric=metric, n_boot=n_boot, confidence=confidence)
    truth = np.asarray(truth, dtype=np.float64)
    pred_a = np.asarray(pred_a, dtype=np.float64)
    pred_b = np.asarray(pred_b, dtype=np.float64)
    check_predictions(truth, pred_a, "predictions of method A")
    check_predictions(truth, pred_b, "predictions of method B")
    n, m = truth.shape
    names = tuple(metabolites) if metabolites is not None else tuple(str(i) for i in range(m))
    fn = METRICS[metric]

    diff = fn(truth, pred_a) - fn(truth, pred_b)
    boot = np.empty((n_boot, m))
    chunk = max(1, _BLOCK_ELEMENTS // (n * m))
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))
        t = truth[idx]
        boot[start:stop] = fn(t, pred_a[idx]) - fn(t, pred_b[idx])

    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(boot, [tail, 100.0 - tail], axis=0)
    mean_low, mean_high = np.percentile(boot.mean(axis=1), [tail, 100.0 - tail])
    return PairedBootstrap(
        metric=metric,
        metabolites=names,
        diff=diff,
        low=low,
        high=high,
        mean_diff=float(diff.mean()),
        mean_low=float(mean_low),
        mean_high=float(mean_high),
        n_boot=int(n_boot),
        confidence=float(confidence),
    )
