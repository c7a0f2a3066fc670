"""Figures of an evaluation, like the paper's, drawn from arrays with matplotlib.

Each ``plot_*`` function (and :func:`reliability_figure`) returns a
:class:`matplotlib.figure.Figure` built without pyplot (no global figure registry, no backend
switch: ``Figure.savefig`` renders PNG through Agg), and :func:`.figures.save_png` writes it
atomically. Spectra are drawn on a reversed ppm axis, as MRS users read them; the axis itself
comes from :mod:`scaloquant.signal.axes` through :class:`~scaloquant.types.FID`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from ..evaluate.bootstrap import PairedBootstrap
from ..evaluate.calibration import RELIABILITY_LEVELS, TARGET_95, observed_coverage
from ..evaluate.metrics import MetricTable
from ..io.training_log import TrainingCurve
from ..types import FID

#: The paper's Fig. 2 colours: ground truth orange, estimate violet, residual green.
_TRUTH_COLOUR, _ESTIMATE_COLOUR, _RESIDUAL_COLOUR = "tab:orange", "darkviolet", "tab:green"


def plot_signal_estimate(
    truth: FID,
    estimate: FID,
    *,
    title: str,
    caption: str,
    ppm_range: tuple[float, float] = (0.2, 4.3),
) -> Figure:
    """The paper's Fig. 2: a test signal, its estimate and the residual, in time and in ppm.

    Parameters
    ----------
    truth, estimate : single FIDs (``samples`` of shape ``(n_points,)``) on the same grid.
    title : figure title (which model, which signal).
    caption : text printed under the panels; say there which parameters come from the truth.
    ppm_range : the chemical-shift window of the spectrum panel (low, high), drawn reversed.
    """
    if truth.samples.shape != estimate.samples.shape or truth.samples.ndim != 1:
        raise ValueError("truth and estimate must be single FIDs with the same number of points")
    residual = truth.samples - estimate.samples
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ax_t, ax_f = fig.subplots(1, 2)

    t_ms = truth.time_axis_s() * 1e3
    for samples, label, colour, lw in _signal_lines(truth.samples, estimate.samples, residual):
        ax_t.plot(t_ms, samples.real, color=colour, lw=lw, label=label)
    ax_t.set_xlabel("time (ms)")
    ax_t.set_ylabel("real part (a.u.)")
    ax_t.set_title("time domain")
    ax_t.set_xlim(t_ms[0], t_ms[-1])

    ppm = truth.ppm_axis()
    window = (ppm >= min(ppm_range)) & (ppm <= max(ppm_range))
    spectra = [truth.spectrum(), estimate.spectrum(), truth.spectrum() - estimate.spectrum()]
    for spec, (_, label, colour, lw) in zip(
        spectra, _signal_lines(truth.samples, estimate.samples, residual), strict=True
    ):
        ax_f.plot(ppm[window], spec.real[window], color=colour, lw=lw, label=label)
    ax_f.set_xlim(max(ppm_range), min(ppm_range))  # reversed: chemical shift decreases to the right
    ax_f.set_xlabel("chemical shift (ppm)")
    ax_f.set_ylabel("real part of spectrum (a.u.)")
    ax_f.set_title("frequency domain")
    ax_f.legend(loc="upper left", frameon=False)
    fig.suptitle(title)
    fig.get_layout_engine().set(h_pad=0.1)
    fig.text(0.5, -0.01, caption, ha="center", va="top", fontsize=8.5, wrap=True)
    return fig


def _signal_lines(truth: np.ndarray, estimate: np.ndarray, residual: np.ndarray):
    # The truth is drawn wider underneath so that it stays visible where the estimate matches it.
    return (
        (truth, "ground truth", _TRUTH_COLOUR, 2.0),
        (estimate, "estimate (Eq. 1)", _ESTIMATE_COLOUR, 0.8),
        (residual, "residual", _RESIDUAL_COLOUR, 0.8),
    )


def plot_error_bars(tables: Mapping[str, MetricTable]) -> Figure:
    """The paper's Fig. 3: per-metabolite MAE with its SD (left), SMAPE side by side (right).

    ``tables`` maps each method's name to its metrics on the same test set (same metabolites).
    """
    names = list(tables)
    metabolites = _common_metabolites(tables)
    x = np.arange(len(metabolites))
    width = 0.8 / len(names)
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    ax_mae, ax_smape = fig.subplots(1, 2)
    for k, name in enumerate(names):
        offset = (k - (len(names) - 1) / 2) * width
        values = tables[name].values
        ax_mae.bar(
            x + offset,
            values["mae"],
            width,
            yerr=values["mae_std"],
            capsize=1.5,
            label=name,
            error_kw={"lw": 0.7},
        )
        ax_smape.bar(x + offset, values["smape"], width, label=name)
    for ax, ylabel, title in (
        (ax_mae, "MAE (amplitude units)", "mean absolute error ± SD of |error|"),
        (ax_smape, "SMAPE (%)", "symmetric mean absolute percentage error"),
    ):
        ax.set_xticks(x, metabolites, rotation=90)
        ax.set_xlim(-0.6, len(metabolites) - 0.4)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
    handles, labels = ax_mae.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(names), frameon=False)
    return fig


def plot_paired_difference(comparison: PairedBootstrap, name_a: str, name_b: str) -> Figure:
    """Per-metabolite difference ``metric(A) - metric(B)`` with its bootstrap interval."""
    labels = [*comparison.metabolites, "mean"]
    diff = np.append(comparison.diff, comparison.mean_diff)
    low = np.append(comparison.low, comparison.mean_low)
    high = np.append(comparison.high, comparison.mean_high)
    y = np.arange(len(labels))[::-1]
    fig = Figure(figsize=(6.5, 0.28 * len(labels) + 1.6), layout="constrained")
    ax = fig.subplots()
    significant = (low > 0) | (high < 0)
    colours = np.where(significant, "black", "0.6")
    ax.hlines(y, low, high, colors=colours, lw=1.5)
    ax.scatter(diff, y, c=colours, s=14, zorder=3)
    ax.axvline(0.0, color="tab:red", lw=0.8)
    ax.set_yticks(y, labels)
    pct = round(100 * comparison.confidence)
    ax.set_xlabel(
        f"{comparison.metric.upper()} difference, {name_a} − {name_b}\n"
        f"(< 0: {name_a} better; {pct}% paired-bootstrap interval; grey: includes 0)"
    )
    return fig


def plot_training_curves(
    curves: Mapping[str, TrainingCurve], *, reference_rmse: float | None = None
) -> Figure:
    """Training and validation loss against optimiser step for each model (log scale) and,
    where logged, the validation RMSE in amplitude units with ``reference_rmse`` drawn as a
    horizontal line (the paper's 0.148)."""
    with_rmse = any(c.val_rmse is not None and c.val_rmse.size for c in curves.values())
    fig = Figure(figsize=(12 if with_rmse else 7.5, 4.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, 2 if with_rmse else 1))
    ax = axes[0]
    for k, (name, curve) in enumerate(curves.items()):
        colour = f"C{k}"
        if curve.train_loss.size:
            ax.plot(
                curve.train_step,
                curve.train_loss,
                color=colour,
                lw=0.7,
                alpha=0.6,
                label=f"{name}: training",
            )
        if curve.val_loss.size:
            ax.plot(
                curve.val_step,
                curve.val_loss,
                color=colour,
                lw=1.6,
                ls="--",
                label=f"{name}: validation",
            )
        if with_rmse and curve.val_rmse is not None and curve.val_rmse.size:
            axes[1].plot(curve.val_step, curve.val_rmse, color=colour, lw=1.6, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (MSE of amplitude errors / training SD)")
    ax.set_title("training and validation loss")
    ax.legend(frameon=False)
    if with_rmse:
        if reference_rmse is not None:
            axes[1].axhline(
                reference_rmse, color="0.4", lw=1, ls=":", label=f"paper ({reference_rmse:.3f})"
            )
        axes[1].set_xlabel("optimiser step")
        axes[1].set_ylabel("validation RMSE (amplitude units)")
        axes[1].set_title("validation RMSE per amplitude")
        axes[1].legend(frameon=False)
    return fig


def plot_predicted_vs_true(
    truth: np.ndarray, predictions: Mapping[str, np.ndarray], metabolites: Sequence[str]
) -> Figure:
    """A grid with one panel per metabolite: estimated against true amplitude for each method.

    ``truth`` and every prediction have shape ``(n_signals, n_metabolites)``.
    """
    n_met = len(metabolites)
    n_cols = min(7, n_met)
    n_rows = math.ceil(n_met / n_cols)
    fig = Figure(figsize=(2.1 * n_cols, 2.1 * n_rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    # Thin the cloud so thousands of test signals stay readable and the PNG stays small.
    step = max(1, truth.shape[0] // 1000)
    for j, ax in enumerate(axes):
        if j >= n_met:
            ax.set_visible(False)
            continue
        t = truth[::step, j]
        lo = min(t.min(), *(p[::step, j].min() for p in predictions.values()))
        hi = max(t.max(), *(p[::step, j].max() for p in predictions.values()))
        for k, (name, pred) in enumerate(predictions.items()):
            ax.scatter(
                t, pred[::step, j], s=2, alpha=0.35, color=f"C{k}", label=name, rasterized=True
            )
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.7)
        ax.set_title(metabolites[j], fontsize=9)
        ax.tick_params(labelsize=7)
    fig.supxlabel("true amplitude")
    fig.supylabel("estimated amplitude")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside upper center", ncols=len(labels), markerscale=5, frameon=False
    )
    return fig


def plot_error_vs_snr(
    snrs: Sequence[float],
    errors: Mapping[str, Mapping[str, np.ndarray]],
    bounds: Mapping[str, np.ndarray] | None = None,
    *,
    ylabel: str,
    bound_label: str = "CRLB",
) -> Figure:
    """Error against SNR, one panel per metabolite (or mean), one line per method.

    Parameters
    ----------
    snrs : the SNRs ``(S,)``; ``inf`` (noiseless) is drawn at the right end, labelled ∞.
    errors : panel title -> method -> errors ``(S,)`` (NaN where a method has none).
    bounds : panel title -> the bound ``(S,)``, drawn dashed in black; values <= 0 (a noiseless
        bound) and NaN are not drawn on the logarithmic axis.
    ylabel : what the errors are (e.g. RMSE and its units).
    bound_label : legend text of the bound.
    """
    snrs = np.asarray(snrs, dtype=np.float64)
    x = _snr_positions(snrs)
    n_panels = len(errors)
    n_cols = min(4, n_panels)
    n_rows = math.ceil(n_panels / n_cols)
    fig = Figure(figsize=(3.2 * n_cols, 2.8 * n_rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for ax, (panel, methods) in zip(axes, errors.items(), strict=False):
        lines = [
            (name, _positive(v), f"C{k}", "-", "o") for k, (name, v) in enumerate(methods.items())
        ]
        if bounds is not None and panel in bounds:
            lines.append((bound_label, _positive(bounds[panel]), "black", "--", "x"))
        floor = _axis_floor(np.isfinite(snrs), [y for _, y, *_ in lines])
        for name, y, colour, ls, marker in lines:
            below = y < floor
            y = np.where(below, floor, y)
            ax.plot(x, y, ls=ls, marker=marker, ms=4, color=colour, label=name)
            ax.plot(x[below], y[below], ls="none", marker="v", ms=7, color=colour)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(x, [_snr_tick(s) for s in snrs])
        ax.xaxis.set_minor_locator(NullLocator())  # only the SNRs of the run as x ticks
        ax.set_title(panel, fontsize=10)
        ax.tick_params(labelsize=8)
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    fig.supxlabel(
        "SNR (NAA peak height / SD of the real spectral noise; ∞: noiseless); "
        "▼: below the axis (noiseless errors many decades smaller)"
    )
    fig.supylabel(ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    return fig


def _snr_positions(snrs: np.ndarray) -> np.ndarray:
    # inf has no place on a log axis: put it a factor 3 beyond the largest finite SNR
    finite = snrs[np.isfinite(snrs)]
    beyond = 3.0 * finite.max() if finite.size else 1.0
    return np.where(np.isfinite(snrs), snrs, beyond)


def _axis_floor(finite: np.ndarray, series: Sequence[np.ndarray]) -> float:
    # A noiseless fit is exact to ~1e-8, which would squeeze every noisy error into the top of a
    # log axis: the axis starts a factor 10 below the smallest error at a finite SNR instead.
    values = np.concatenate([y[finite] for y in series]) if series else np.array([])
    values = values[np.isfinite(values)]
    return float(values.min() / 10.0) if values.size else 0.0


def _snr_tick(snr: float) -> str:
    return "∞" if np.isinf(snr) else f"{snr:g}"


def _positive(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.where(values > 0, values, np.nan)


def _common_metabolites(tables: Mapping[str, MetricTable]) -> tuple[str, ...]:
    if not tables:
        raise ValueError("no metric tables to plot")
    first = next(iter(tables.values())).metabolites
    for name, table in tables.items():
        if table.metabolites != first:
            raise ValueError(f"{name} was evaluated on other metabolites than the first method")
    return first


def reliability_figure(
    groups: Mapping[str, tuple[Any, Any, Any]],
    *,
    levels: Sequence[float] = RELIABILITY_LEVELS,
    title: str = "Reliability of the predicted standard deviations",
) -> Figure:
    """Reliability diagram: observed coverage (pooled over metabolites) against nominal level,
    one line per group (e.g. per SNR, or per model and SNR), and the diagonal.

    Parameters
    ----------
    groups : label -> ``(truth, mean, sd)``, each ``(n_signals, M)``.
    levels : nominal levels on the x axis.
    """
    fig = Figure(figsize=(5.2, 5.0))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=1, label="ideal")
    lo, hi = TARGET_95
    ax.plot([0.95, 0.95], [lo, hi], color="tab:red", linewidth=4, alpha=0.35, label="95 % target")
    for label, (truth, mean, sd) in groups.items():
        ax.plot(
            levels,
            observed_coverage(truth, mean, sd, levels),
            marker="o",
            markersize=3,
            label=str(label),
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("observed coverage (all metabolites)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig
