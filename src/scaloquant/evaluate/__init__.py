"""Evaluation of estimated amplitudes: metrics (pure numpy), the paired bootstrap, figures like
the paper's, ``metrics.json`` and ``report.md``.

Typical use, from arrays::

    table = compute_metrics(truth, pred, metabolites)          # per metabolite + mean
    diff = paired_bootstrap(truth, pred_a, pred_b, rng=np.random.default_rng(0))
    write_evaluation(out_dir, truth=truth, predictions={"a": pred_a, "b": pred_b}, ...)

and from trained checkpoints and a simulated test file:
:func:`scaloquant.evaluate.run.evaluate_checkpoints` (``scaloquant evaluate``).
"""

from .bootstrap import PairedBootstrap, paired_bootstrap
from .metrics import HIGHER_IS_BETTER, METRICS, MetricTable, compute_metrics
from .pipeline import SignalExample, write_evaluation

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "MetricTable",
    "PairedBootstrap",
    "SignalExample",
    "compute_metrics",
    "paired_bootstrap",
    "write_evaluation",
]
