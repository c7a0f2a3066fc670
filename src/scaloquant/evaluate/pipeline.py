"""One evaluation, from predictions on a test set to ``metrics.json``, ``report.md`` and figures.

Both ``scaloquant evaluate`` and ``scaloquant reproduce`` end here, so the two commands write the
same files with the same layout::

    OUT/metrics.json
    OUT/report.md
    OUT/figures/fig2_signal_<method>.png      (when a rebuilt example signal is given)
    OUT/figures/fig3_mae_smape.png
    OUT/figures/smape_difference_<a>_vs_<b>.png   (one per pair of methods)
    OUT/figures/predicted_vs_true.png
    OUT/figures/training_curves.png           (when training logs are given)
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic import write_text_atomic
from ..types import FID
from . import figures
from .bootstrap import PairedBootstrap, paired_bootstrap
from .metrics import (
    MetricTable,
    check_predictions,
    compute_metrics,
    pooled_rmse_from_matlab_loss,
)
from .report import PAPER_N_OUTPUTS, PAPER_VAL_LOSS, metrics_document, render_report

#: Caption of the rebuilt-signal figure: which parameters are estimated and which are not.
FIG2_CAPTION = (
    "Estimate rebuilt with Eq. (1) from the amplitudes the model estimated; the damping, frequency "
    "shift and every other signal parameter are taken from the truth (the networks estimate "
    "amplitudes only) and no noise is added, so the residual shows the amplitude errors (and the "
    "noise, if the test set has any)."
)


@dataclass(frozen=True)
class SignalExample:
    """One test signal and, per method, the signal rebuilt from its estimated amplitudes.

    Attributes
    ----------
    index : position of the signal in the test set.
    truth : the test FID, ``samples`` of shape ``(n_points,)``.
    estimates : method name -> rebuilt FID on the same grid.
    """

    index: int
    truth: FID
    estimates: Mapping[str, FID]


def representative_index(truth: np.ndarray, pred: np.ndarray) -> int:
    """Index of the test signal with the median mean absolute error (``(n, M)`` inputs).

    The paper shows "one of the tested signals" for Fig. 2; the median one is neither a flattering
    nor an unlucky choice.
    """
    err = np.mean(np.abs(np.asarray(truth) - np.asarray(pred)), axis=1)
    return int(np.argsort(err, kind="stable")[len(err) // 2])


def compare_all(
    truth: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    metabolites: Sequence[str],
    *,
    bootstrap_seed: int,
    n_boot: int = 2000,
    metric: str = "smape",
) -> list[tuple[str, str, PairedBootstrap]]:
    """Paired bootstrap of ``metric`` for every pair of methods, in the order given.

    Every pair is resampled with a generator seeded by ``bootstrap_seed``, so all pairs see the
    same resampled test sets.
    """
    return [
        (
            a,
            b,
            paired_bootstrap(
                truth,
                predictions[a],
                predictions[b],
                rng=np.random.default_rng(bootstrap_seed),
                metric=metric,
                n_boot=n_boot,
                metabolites=metabolites,
            ),
        )
        for a, b in combinations(predictions, 2)
    ]


def write_evaluation(
    out_dir: Path,
    *,
    truth: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    metabolites: Sequence[str],
    bootstrap_seed: int,
    config: Mapping[str, Any],
    wall_times_s: Mapping[str, float],
    title: str,
    context: str,
    n_boot: int = 2000,
    mean_predictor: np.ndarray | None = None,
    curves: Mapping[str, figures.TrainingCurve] | None = None,
    example: SignalExample | None = None,
    started_at: float | None = None,
) -> dict[str, Any]:
    """Compute every metric and comparison and write the evaluation files into ``out_dir``.

    Parameters
    ----------
    out_dir : an existing folder (normally the staging folder of
        :func:`scaloquant.io.atomic.staged_directory`); files already there are not replaced.
    truth : true amplitudes ``(n_signals, n_metabolites)``.
    predictions : method name -> estimated amplitudes, same shape as ``truth``.
    metabolites : column names.
    bootstrap_seed : seed of the paired bootstrap.
    config : recorded in ``metrics.json``.
    wall_times_s : named durations (s); this function adds ``evaluate`` (its own time) and, with
        ``started_at``, ``total``.
    title, context : heading and first paragraph of ``report.md``.
    n_boot : bootstrap resamples.
    mean_predictor : per-metabolite mean of the training targets ``(n_metabolites,)``: evaluated
        as the baseline that predicts it for every signal; None to leave it out.
    curves : method name -> training curve, for the training-curve figure.
    example : a test signal rebuilt from each method's estimate, for the Fig. 2 panels.
    started_at : ``time.perf_counter()`` at the start of the whole run, for the total time.

    Returns
    -------
    dict
        The ``metrics.json`` document.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    truth = np.asarray(truth, dtype=np.float64)
    for name, pred in predictions.items():
        check_predictions(truth, np.asarray(pred), f"predictions of {name}")
    tables: dict[str, MetricTable] = {
        name: compute_metrics(truth, pred, metabolites) for name, pred in predictions.items()
    }
    comparisons = compare_all(
        truth, predictions, metabolites, bootstrap_seed=bootstrap_seed, n_boot=n_boot
    )
    baseline = None
    if mean_predictor is not None:
        constant = np.broadcast_to(np.asarray(mean_predictor, dtype=np.float64), truth.shape)
        baseline = compute_metrics(truth, constant, metabolites)

    fig_dir = out_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    written: dict[str, str] = {}

    def save(fig, name: str, caption: str) -> None:
        figures.save_png(fig, fig_dir / name)
        written[caption] = f"figures/{name}"

    if example is not None:
        for name, estimate in example.estimates.items():
            save(
                figures.plot_signal_estimate(
                    example.truth,
                    estimate,
                    title=f"{name}: test signal {example.index}",
                    caption=FIG2_CAPTION,
                ),
                f"fig2_signal_{name}.png",
                f"Fig. 2 ({name}): test signal {example.index} (median error of "
                f"{next(iter(predictions))}), its estimate and the residual",
            )
    save(
        figures.plot_error_bars(tables),
        "fig3_mae_smape.png",
        "Fig. 3: per-metabolite MAE with the SD of the absolute error (left), SMAPE (right)",
    )
    for a, b, res in comparisons:
        save(
            figures.plot_paired_difference(res, a, b),
            f"smape_difference_{a}_vs_{b}.png",
            f"SMAPE difference {a} − {b} per metabolite with its 95% paired-bootstrap interval",
        )
    save(
        figures.plot_predicted_vs_true(truth, predictions, metabolites),
        "predicted_vs_true.png",
        "Estimated against true amplitude, per metabolite (black: identity)",
    )
    if curves:
        save(
            figures.plot_training_curves(
                curves, reference_rmse=pooled_rmse_from_matlab_loss(PAPER_VAL_LOSS, PAPER_N_OUTPUTS)
            ),
            "training_curves.png",
            "Training curves: loss, and validation RMSE per amplitude against the paper's 0.148",
        )

    now = time.perf_counter()
    wall_times_s = {**wall_times_s, "evaluate": now - t0}
    if started_at is not None:
        wall_times_s["total"] = now - started_at
    doc = metrics_document(
        tables,
        comparisons,
        bootstrap_seed=bootstrap_seed,
        mean_predictor=baseline,
        config=config,
        wall_times_s=wall_times_s,
    )
    write_text_atomic(out_dir / "metrics.json", json.dumps(doc, indent=2, allow_nan=False) + "\n")
    write_text_atomic(
        out_dir / "report.md", render_report(doc, written, title=title, context=context)
    )
    return doc
