"""Calibration of predicted standard deviations: interval coverage, tables over SNRs, the
points of the reliability diagram (drawn by
:func:`scaloquant.report.evaluation_figures.reliability_figure`).

A model's central interval at level ``p`` for one amplitude is ``mean +- q_p sd`` with ``q_p`` the
normal quantile (1.96 for 95 %); its *coverage* is the fraction of test signals whose true
amplitude lies inside. Calibrated standard deviations give coverage ``p`` at every level and in
every subgroup (here: every SNR), which the reliability diagram shows as lines on the diagonal
(Kuleshov et al. 2018, "Accurate uncertainties for deep learning using calibrated regression",
Sec. 3). The issue's acceptance band for the 95 % interval is 90-98 % per metabolite at each SNR.

All functions are pure numpy.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from .._stats import normal_quantile
from ..errors import InvalidDataError

#: Levels of the calibration table: about one SD, and the issue's 95 % interval.
TABLE_LEVELS: tuple[float, ...] = (0.68, 0.95)
#: Nominal levels of the reliability diagram.
RELIABILITY_LEVELS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20)) + (0.99,)
#: Acceptance band of the 95 % coverage per metabolite (issue 5).
TARGET_95: tuple[float, float] = (0.90, 0.98)


def _arrays(truth: Any, mean: Any, sd: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    truth, mean, sd = (np.asarray(a, dtype=np.float64) for a in (truth, mean, sd))
    if not (truth.shape == mean.shape == sd.shape) or truth.ndim != 2:
        raise InvalidDataError(
            f"truth, mean and sd must share one (n_signals, n_metabolites) shape; got "
            f"{truth.shape}, {mean.shape}, {sd.shape}"
        )
    return truth, mean, sd


def _inside(truth: np.ndarray, mean: np.ndarray, sd: np.ndarray, level: float) -> np.ndarray:
    """Boolean ``(n, M)``: the truth lies in the central ``level`` interval."""
    return np.abs(truth - mean) <= normal_quantile(level) * sd


def coverage(truth: Any, mean: Any, sd: Any, level: float = 0.95) -> np.ndarray:
    """Fraction of signals whose central ``level`` interval holds the truth, per metabolite.

    Parameters
    ----------
    truth, mean, sd : ``(n_signals, M)`` true amplitudes, estimates, standard deviations.
    level : nominal coverage of the interval ``mean +- q sd``.

    Returns
    -------
    ``(M,)`` fractions in [0, 1]; NaN for a metabolite with any non-finite sd (a model without
    uncertainty) or when there are no signals.
    """
    truth, mean, sd = _arrays(truth, mean, sd)
    with np.errstate(invalid="ignore"):
        fraction = _inside(truth, mean, sd, level).mean(axis=0) if len(truth) else None
    if fraction is None:
        return np.full(truth.shape[1], np.nan)
    return np.where(np.all(np.isfinite(sd), axis=0), fraction, np.nan)


def z_score_summary(truth: Any, mean: Any, sd: Any) -> dict[str, float | int]:
    """How well standard deviations describe the errors, pooled over signals and metabolites:
    the fraction of ``|mean - truth| <= k sd`` for ``k`` 1 and 2, and the SD of the z-scores
    ``(mean - truth) / sd`` (1 for calibrated Gaussian errors). Entries with a non-finite or zero
    SD (a model without uncertainty; an amplitude held at 0 by the non-negativity) are left out
    and counted in ``n_left_out``; ``(n_signals, M)`` inputs."""
    truth, mean, sd = _arrays(truth, mean, sd)
    usable = np.isfinite(sd) & (sd > 0)
    if not usable.any():
        nan = float("nan")
        return {"within_1sd": nan, "within_2sd": nan, "z_sd": nan, "n_left_out": int(sd.size)}
    z = (mean - truth)[usable] / sd[usable]
    return {
        "within_1sd": float(np.mean(np.abs(z) <= 1.0)),
        "within_2sd": float(np.mean(np.abs(z) <= 2.0)),
        "z_sd": float(np.std(z)),
        "n_left_out": int(np.count_nonzero(~usable)),
    }


def observed_coverage(
    truth: Any, mean: Any, sd: Any, levels: Sequence[float] = RELIABILITY_LEVELS
) -> np.ndarray:
    """Coverage pooled over all signals and metabolites at each nominal level, ``(L,)``: the
    y values of one reliability-diagram line."""
    truth, mean, sd = _arrays(truth, mean, sd)
    return np.array([float(np.mean(coverage(truth, mean, sd, lv))) for lv in levels])


def snr_groups(snr: np.ndarray | None, n_signals: int, *, max_groups: int = 4) -> np.ndarray:
    """SNR labels ``(n_signals,)`` of test signals for :func:`calibration_table`.

    ``snr`` is the per-signal SNR of a simulation file (None: noiseless, label ``"inf"``). At
    most ``max_groups`` distinct values keep their own label (``%g``); a continuous range is cut
    into ``max_groups`` groups of equal count, labelled ``"lo-hi"``.
    """
    if snr is None:
        return np.full(n_signals, "inf", dtype=object)
    snr = np.asarray(snr, dtype=np.float64)
    if snr.shape != (n_signals,):
        raise InvalidDataError(f"got {snr.shape} SNR values for {n_signals} signals")
    values = np.unique(snr)
    if len(values) <= max_groups:
        return np.array([f"{v:g}" for v in snr], dtype=object)
    edges = np.quantile(snr, np.linspace(0.0, 1.0, max_groups + 1))
    group = np.clip(np.searchsorted(edges, snr, side="right") - 1, 0, max_groups - 1)
    names = [f"{edges[g]:.3g}-{edges[g + 1]:.3g}" for g in range(max_groups)]
    return np.array([names[g] for g in group], dtype=object)


def _label_order(labels: Sequence[Hashable]) -> list[Hashable]:
    """Distinct labels, numeric ones (``"30"``, ``"10-30"``, ``"inf"``) in increasing SNR."""

    def key(label: Hashable) -> tuple[int, float, str]:
        text = str(label)
        try:
            return (0, float(text.split("-")[0]), text)
        except ValueError:
            return (1, math.inf, text)

    return sorted(dict.fromkeys(labels), key=key)


def calibration_table(
    truth: Any,
    mean: Any,
    sd: Any,
    snr_labels: Sequence[Hashable],
    levels: Sequence[float] = TABLE_LEVELS,
    *,
    metabolites: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Coverage per metabolite at each level, per SNR group and over all signals.

    Parameters
    ----------
    truth, mean, sd : ``(n_signals, M)``.
    snr_labels : ``(n_signals,)`` group of each signal (e.g. :func:`snr_groups`).
    levels : nominal levels.
    metabolites : column names (default ``"0"``, ``"1"``...).

    Returns
    -------
    JSON-safe ``{"levels": [...], "target_95": [lo, hi], "groups": {LABEL: GROUP}}`` with ``LABEL``
    the SNR groups in increasing SNR, then ``"all"``; ``GROUP`` is ``{"n_signals", "coverage":
    {LEVEL: {MET: fraction}}, "mean_coverage": {LEVEL: fraction}, "mean_sd": {MET}, "rmse": {MET},
    "within_target_95": bool (every metabolite's 95 % coverage inside ``target_95``; only when
    0.95 is a level)}``. ``mean_sd`` next to ``rmse`` shows the sharpness: calibrated SDs have
    root mean square close to the RMSE.
    """
    truth, mean, sd = _arrays(truth, mean, sd)
    labels = np.asarray([str(s) for s in snr_labels], dtype=object)
    if labels.shape != (len(truth),):
        raise InvalidDataError(f"got {labels.shape[0]} SNR labels for {len(truth)} signals")
    names = [str(m) for m in (metabolites or range(truth.shape[1]))]
    if len(names) != truth.shape[1]:
        raise InvalidDataError(f"{len(names)} metabolite names for {truth.shape[1]} columns")
    groups: dict[str, Any] = {}
    subsets = [(label, labels == label) for label in _label_order(list(labels))]
    subsets.append(("all", np.ones(len(truth), dtype=bool)))
    for label, rows in subsets:
        t, m, s = truth[rows], mean[rows], sd[rows]
        group: dict[str, Any] = {"n_signals": int(rows.sum()), "coverage": {}, "mean_coverage": {}}
        for level in levels:
            values = coverage(t, m, s, level)
            group["coverage"][f"{level:g}"] = dict(zip(names, map(float, values), strict=True))
            group["mean_coverage"][f"{level:g}"] = float(np.mean(values))
        with np.errstate(invalid="ignore"):
            group["mean_sd"] = dict(zip(names, map(float, np.mean(s, axis=0)), strict=True))
            rmse = np.sqrt(np.mean((t - m) ** 2, axis=0))
        group["rmse"] = dict(zip(names, map(float, rmse), strict=True))
        if 0.95 in levels:
            c95 = np.array(list(group["coverage"]["0.95"].values()))
            group["within_target_95"] = bool(np.all((c95 >= TARGET_95[0]) & (c95 <= TARGET_95[1])))
        groups[str(label)] = group
    return {"levels": [float(lv) for lv in levels], "target_95": list(TARGET_95), "groups": groups}


def calibration_markdown(table: Mapping[str, Any], *, level: float = 0.95) -> str:
    """A Markdown table of :func:`calibration_table`: metabolites as rows, SNR groups as
    columns, coverage at ``level`` in percent; a last row with the mean."""
    groups = table["groups"]
    key = f"{level:g}"
    labels = list(groups)
    names = list(next(iter(groups.values()))["coverage"][key])
    head = "| metabolite | " + " | ".join(f"SNR {lb}" for lb in labels) + " |"
    lines = [head, "|---|" + "---:|" * len(labels)]
    for name in names:
        cells = [f"{100 * groups[lb]['coverage'][key][name]:.1f}" for lb in labels]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    means = [f"**{100 * groups[lb]['mean_coverage'][key]:.1f}**" for lb in labels]
    lines.append("| mean | " + " | ".join(means) + " |")
    counts = [str(groups[lb]["n_signals"]) for lb in labels]
    lines.append("| signals | " + " | ".join(counts) + " |")
    return "\n".join(lines) + "\n"
