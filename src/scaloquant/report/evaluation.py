"""The files of an evaluation: ``metrics.json``, ``report.md`` and the figures of a computed
:class:`scaloquant.evaluate.pipeline.Evaluation`, written into one folder::

    OUT/metrics.json
    OUT/report.md
    OUT/figures/fig2_signal_<method>.png      (when a rebuilt example signal is given)
    OUT/figures/fig3_mae_smape.png
    OUT/figures/smape_difference_<a>_vs_<b>.png   (one per pair of methods)
    OUT/figures/reliability.png               (when methods predict standard deviations)
    OUT/figures/error_vs_snr.png              (when per-SNR test sets are given)
    OUT/figures/predicted_vs_true.png
    OUT/figures/training_curves.png           (when training curves are given)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..evaluate.metrics import pooled_rmse_from_matlab_loss
from ..evaluate.pipeline import Evaluation
from ..evaluate.report import (
    MAIN_METABOLITES,
    PAPER_N_OUTPUTS,
    PAPER_VAL_LOSS,
    compared_methods,
    metric_of,
    render_report,
)
from ..io.atomic import write_text_atomic
from . import evaluation_figures as figures
from .figures import save_png

#: Caption of the rebuilt-signal figure: which parameters are estimated and which are not.
FIG2_CAPTION = (
    "Estimate rebuilt with Eq. (1) from the amplitudes the model estimated; the damping, frequency "
    "shift and every other signal parameter are taken from the truth (the networks estimate "
    "amplitudes only) and no noise is added, so the residual shows the amplitude errors (and the "
    "noise, if the test set has any)."
)

ERROR_VS_SNR_CAPTION = (
    "Error against SNR: RMSE per method on the same test signals (the fit's when it ran), mean "
    "over metabolites and the main metabolites; dashed: the RMS over signals of the fit's "
    "Cramér–Rao bound, which no unbiased estimator's RMSE can go below"
)


def error_vs_snr_figure(blocks: Mapping[str, Mapping[str, Any]]) -> Figure:
    """The error-against-SNR figure of the ``by_snr`` entries of ``metrics.json``: RMSE of every
    method measured on the same signals (:func:`~scaloquant.evaluate.report.compared_methods`),
    mean over metabolites and :data:`~scaloquant.evaluate.report.MAIN_METABOLITES`, with the RMS
    of the fit's CRLB."""
    entries = list(blocks.values())
    methods = list(dict.fromkeys(name for b in entries for name in compared_methods(b)))
    panels = ["mean"] + [
        name
        for name in MAIN_METABOLITES
        if any(
            not math.isnan(metric_of(m, name, "rmse"))
            for m in compared_methods(entries[0]).values()
        )
    ]

    def series(name: str, method: str) -> np.ndarray:
        return np.array(
            [
                metric_of(compared_methods(b)[method], name, "rmse")
                if method in compared_methods(b)
                else np.nan
                for b in entries
            ]
        )

    errors = {
        ("mean over metabolites" if p == "mean" else p): {m: series(p, m) for m in methods}
        for p in panels
    }
    bounds = None
    if any(b["crlb"] for b in entries):
        bounds = {
            ("mean over metabolites" if p == "mean" else p): np.array(
                [metric_of(b["crlb"], p, "rms_sd") if b["crlb"] else np.nan for b in entries]
            )
            for p in panels
        }
    return figures.plot_error_vs_snr(
        [float(b["snr"]) for b in entries],
        errors,
        bounds,
        ylabel="RMSE (amplitude units)",
        bound_label="CRLB of the fit (RMS)",
    )


def write_evaluation(evaluation: Evaluation, out_dir: Path) -> dict[str, Any]:
    """Write ``evaluation``'s figures, ``metrics.json`` and ``report.md`` into ``out_dir``, and
    return the ``metrics.json`` written: ``evaluation.metrics`` with the time of this writing
    (mostly drawing) added to ``wall_times_s`` as ``write_report`` and to its ``total``.

    Parameters
    ----------
    evaluation : the computed evaluation (:func:`scaloquant.evaluate.pipeline.
        evaluate_predictions` or :func:`~scaloquant.evaluate.pipeline.evaluate_snr_cases`).
    out_dir : an existing folder (normally the staging folder of
        :func:`scaloquant.io.atomic.staged_directory`); files already there are not replaced.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    written: dict[str, str] = {}

    def save(fig: Figure, name: str, caption: str) -> None:
        save_png(fig, fig_dir / name)
        written[caption] = f"figures/{name}"

    example = evaluation.example
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
                f"{next(iter(evaluation.predictions))}), its estimate and the residual",
            )
    save(
        figures.plot_error_bars(evaluation.tables),
        "fig3_mae_smape.png",
        "Fig. 3: per-metabolite MAE with the SD of the absolute error (left), SMAPE (right)",
    )
    for a, b, res in evaluation.comparisons:
        save(
            figures.plot_paired_difference(res, a, b),
            f"smape_difference_{a}_vs_{b}.png",
            f"SMAPE difference {a} − {b} per metabolite with its 95% paired-bootstrap interval",
        )
    if evaluation.reliability:
        save(
            figures.reliability_figure(evaluation.reliability),
            "reliability.png",
            "Reliability of the predicted SDs: observed coverage of the central intervals "
            "(all metabolites) against their nominal level, per model and SNR",
        )
    if evaluation.by_snr:
        save(error_vs_snr_figure(evaluation.by_snr), "error_vs_snr.png", ERROR_VS_SNR_CAPTION)
    save(
        figures.plot_predicted_vs_true(
            evaluation.truth, evaluation.predictions, evaluation.metabolites
        ),
        "predicted_vs_true.png",
        "Estimated against true amplitude, per metabolite (black: identity)",
    )
    if evaluation.curves:
        save(
            figures.plot_training_curves(
                evaluation.curves,
                reference_rmse=pooled_rmse_from_matlab_loss(PAPER_VAL_LOSS, PAPER_N_OUTPUTS),
            ),
            "training_curves.png",
            "Training curves: loss, and validation RMSE per amplitude against the paper's 0.148",
        )
    spent = time.perf_counter() - t0
    times = {**evaluation.metrics["wall_times_s"], "write_report": spent}
    if "total" in times:  # keep the total last, as the report's table shows it
        times["total"] = times.pop("total") + spent
    doc = {**evaluation.metrics, "wall_times_s": times}
    write_text_atomic(out_dir / "metrics.json", json.dumps(doc, indent=2, allow_nan=False) + "\n")
    write_text_atomic(
        out_dir / "report.md",
        render_report(doc, written, title=evaluation.title, context=evaluation.context),
    )
    return doc
