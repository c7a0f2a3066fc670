"""Evaluation of estimated amplitudes: metrics (pure numpy), the paired bootstrap, calibration
and the ``metrics.json`` document, computed into one frozen :class:`Evaluation` (its figures and
``report.md`` are written by :func:`scaloquant.report.evaluation.write_evaluation`).

Typical use, from arrays::

    table = compute_metrics(truth, pred, metabolites)          # per metabolite + mean
    diff = paired_bootstrap(truth, pred_a, pred_b, rng=np.random.default_rng(0))
    result = evaluate_predictions(truth, {"a": pred_a, "b": pred_b}, metabolites, ...)

and from trained checkpoints and a simulated test file:
:func:`scaloquant.evaluate.run.evaluate_checkpoints` (``scaloquant evaluate``).
"""

from .bootstrap import PairedBootstrap, paired_bootstrap
from .metrics import HIGHER_IS_BETTER, METRICS, MetricTable, compute_metrics
from .pipeline import Evaluation, SignalExample, evaluate_predictions, evaluate_snr_cases

__all__ = [
    "HIGHER_IS_BETTER",
    "Evaluation",
    "METRICS",
    "MetricTable",
    "PairedBootstrap",
    "SignalExample",
    "compute_metrics",
    "evaluate_predictions",
    "evaluate_snr_cases",
    "paired_bootstrap",
]
