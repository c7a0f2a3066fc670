"""One evaluation, from predictions on a test set to one frozen :class:`Evaluation`: every metric
table, paired comparison, calibration table and per-SNR block, computed once.

Both ``scaloquant evaluate`` and ``scaloquant reproduce`` compute it here and write it with
:func:`scaloquant.report.evaluation.write_evaluation`, so the two commands write the same files
with the same layout (``metrics.json``, ``report.md``, ``figures/``).

Beyond the estimates of every method on every test signal, an evaluation may hold methods run on
only the first ``k`` signals (the classical fit, too slow for all of them), the predicted standard
deviations of methods with an uncertainty, and the same test signals at several SNRs
(:class:`SnrCase`), each with the Cramér–Rao bounds of the fit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import InvalidDataError
from ..io.training_log import TrainingCurve
from ..types import FID
from .bootstrap import DEFAULT_N_BOOT, PairedBootstrap, paired_bootstrap
from .metrics import MetricTable, check_predictions, compute_metrics
from .report import metrics_document, plain_json, snr_label, table_dict


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


#: Sums of metabolites reported beside the single ones: GPC and PCho have their main peaks
#: 0.74 Hz apart at 3 T, so MRS practice (and LCModel's tables) report their sum, which a fit
#: and a network estimate far better than either part.
COMBINED: Mapping[str, tuple[str, ...]] = MappingProxyType({"GPC+PCho": ("GPC", "PCho")})


@dataclass(frozen=True)
class SnrCase:
    """The test signals at one SNR, with every method's estimates of them.

    Attributes
    ----------
    snr : SNR of the noise added to the noiseless test signals (the simulator's definition,
        :mod:`scaloquant.simulate.effects`); ``math.inf`` for the noiseless signals.
    truth : true amplitudes ``(n, M)``.
    predictions : method -> amplitudes ``(n, M)`` of the methods that estimated every signal.
    partial : method -> amplitudes ``(k, M)`` of the methods that estimated only the first ``k``
        signals (the classical fit, too slow for all of them); one ``k`` for all.
    crlb_covariance : Cramér–Rao covariance bound of the amplitudes of those first ``k``
        signals ``(k, M, M)`` (from the fit), or None.
    sds : method -> predicted standard deviations ``(n, M)``, for the methods of
        ``predictions`` that give them.
    noise_seed : seed of the added noise; None for noiseless signals.
    network_sds : method -> a second SD ``(n, M)`` of the methods of ``predictions`` that
        give one: the physics-head models' own calibrated SD (their ``sds`` are the polished
        model's CRLBs); calibrated beside ``sds`` as method ``"<method>`` + :data:`NETWORK_SD`.
    """

    snr: float
    truth: np.ndarray
    predictions: Mapping[str, np.ndarray]
    partial: Mapping[str, np.ndarray] = field(default_factory=dict)
    crlb_covariance: np.ndarray | None = None
    sds: Mapping[str, np.ndarray] = field(default_factory=dict)
    noise_seed: int | None = None
    network_sds: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``"inf"`` or the SNR as ``%g`` text: the key of this case in ``metrics.json``."""
        return snr_label(self.snr)

    def calibration_group(self) -> CalibrationGroup:
        """This case for :func:`calibration_tables`: every SD of ``sds`` and, as method
        ``"<method>`` + :data:`NETWORK_SD`, of ``network_sds``, with its method's estimates."""
        extra = {f"{name}{NETWORK_SD}": name for name in self.network_sds}
        predictions = {**self.predictions, **{k: self.predictions[v] for k, v in extra.items()}}
        sds = {**self.sds, **{k: self.network_sds[v] for k, v in extra.items()}}
        return self.label, self.truth, predictions, sds


#: Suffix of a method's name for the calibration of its second SD (:attr:`SnrCase.network_sds`).
NETWORK_SD = " (network SD)"


def combination_weights(metabolites: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """0/1 weights ``(M, C)`` that sum amplitudes ``(..., M)`` into the :data:`COMBINED` sums
    whose parts are all in ``metabolites``, and the names of those sums."""
    names = [c for c, parts in COMBINED.items() if all(p in metabolites for p in parts)]
    weights = np.zeros((len(metabolites), len(names)))
    for j, name in enumerate(names):
        weights[[list(metabolites).index(p) for p in COMBINED[name]], j] = 1.0
    return weights, names


def method_metrics(
    truth: np.ndarray, pred: np.ndarray, metabolites: Sequence[str]
) -> dict[str, Any]:
    """One method's ``metrics.json`` entry (:func:`~.report.table_dict`) with the metrics of
    the :data:`COMBINED` sums under ``"combined"``; ``truth`` and ``pred`` ``(n, M)``."""
    return _method_entry(compute_metrics(truth, pred, metabolites), truth, pred)


def _method_entry(table: MetricTable, truth: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    # method_metrics of a table already computed from truth and pred (n, M)
    truth = np.asarray(truth, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    out = table_dict(table)
    weights, names = combination_weights(table.metabolites)
    if names:
        out["combined"] = compute_metrics(truth @ weights, pred @ weights, names).per_metabolite()
    return out


def _spread(sd: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, float]]:
    # sd (k, J): per column the mean bound and its root mean square over signals, which bounds
    # the RMSE of an unbiased estimator (mean of err^2 >= mean of CRLB^2); non-finite bounds (a
    # singular Fisher matrix) are left out and counted by the caller.
    finite = np.where(np.isfinite(sd), sd, np.nan)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(finite, axis=0)
        rms = np.sqrt(np.nanmean(finite**2, axis=0))
    return {
        name: {"mean_sd": float(mean[j]), "rms_sd": float(rms[j])} for j, name in enumerate(names)
    }


def crlb_summary(covariance: np.ndarray, metabolites: Sequence[str]) -> dict[str, Any]:
    """Per metabolite (and :data:`COMBINED` sum) the mean and RMS over signals of the
    Cramér–Rao bound, as an SD; ``covariance`` ``(k, M, M)``."""
    cov = np.asarray(covariance, dtype=np.float64)
    weights, names = combination_weights(metabolites)
    with np.errstate(invalid="ignore"):  # a negative variance of a singular bound -> NaN
        sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
        # the bound of a sum is sqrt(w^T C w): overlapping metabolites' negative covariance counts
        sd_sum = np.sqrt(np.einsum("mc,kmn,nc->kc", weights, cov, weights))
    per = _spread(sd, metabolites)
    return {
        "n_signals": int(cov.shape[0]),
        "n_non_finite": int(np.count_nonzero(~np.isfinite(sd))),
        "per_metabolite": per,
        "mean": {
            key: float(np.nanmean([v[key] for v in per.values()])) for key in ("mean_sd", "rms_sd")
        },
        "combined": _spread(sd_sum, names),
    }


#: The issue's main quantities whose slope of estimate against truth the summary gives: single
#: metabolites and sums (the basis' names they need must all be present).
SLOPE_QUANTITIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "NAA": ("NAA",),
        "Cr+PCr": ("Cr", "PCr"),
        "GPC+PCho": ("GPC", "PCho"),
        "Ins": ("Ins",),
        "Glu": ("Glu",),
    }
)


def method_summary(
    truth: np.ndarray, pred: np.ndarray, sd: np.ndarray | None, metabolites: Sequence[str]
) -> dict[str, Any]:
    """One row of the methods' summary: ``{"n_signals", "mae", "smape" (means over
    metabolites), "slopes": {QUANTITY: slope} (:data:`SLOPE_QUANTITIES` present, OLS with
    intercept), and with SDs ``(n, M)`` "within_1sd", "within_2sd", "z_sd", "n_left_out"
    (:func:`~.calibration.z_score_summary`)}``; ``truth``, ``pred`` ``(n, M)``."""
    from .calibration import z_score_summary
    from .metrics import slope

    truth = np.asarray(truth, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    table = compute_metrics(truth, pred, metabolites).mean()
    names = list(metabolites)
    quantities = {
        q: [names.index(p) for p in parts]
        for q, parts in SLOPE_QUANTITIES.items()
        if all(p in names for p in parts)
    }
    out: dict[str, Any] = {
        "n_signals": int(truth.shape[0]),
        "mae": float(table["mae"]),
        "smape": float(table["smape"]),
        "slopes": {
            q: float(
                slope(truth[:, cols].sum(1, keepdims=True), pred[:, cols].sum(1, keepdims=True))[0]
            )
            for q, cols in quantities.items()
        },
    }
    if sd is not None:
        out.update(z_score_summary(truth, pred, sd))
    return out


def case_summary(case: SnrCase, metabolites: Sequence[str]) -> dict[str, Any]:
    """:func:`method_summary` of every method of ``case``: those of ``case.predictions`` on
    every signal (with their ``case.sds``), the partial ones on their first ``k`` (with the
    SDs of ``case.crlb_covariance`` when given, the fit's Cramér–Rao bounds)."""
    truth = np.asarray(case.truth, dtype=np.float64)
    out = {
        name: method_summary(truth, pred, case.sds.get(name), metabolites)
        for name, pred in case.predictions.items()
    }
    crlb_sd = None
    if case.crlb_covariance is not None:
        with np.errstate(invalid="ignore"):
            crlb_sd = np.sqrt(np.diagonal(np.asarray(case.crlb_covariance), axis1=1, axis2=2))
    for name, pred in case.partial.items():
        k = np.shape(pred)[0]
        out[name] = method_summary(truth[:k], pred, crlb_sd, metabolites)
    return out


#: A test set of one SNR group: ``(label, truth (n, M), method -> estimates, method -> SDs)``.
CalibrationGroup = tuple[str, np.ndarray, Mapping[str, np.ndarray], Mapping[str, np.ndarray]]


def calibration_tables(
    groups: Sequence[CalibrationGroup], metabolites: Sequence[str]
) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Per method with predicted SDs, the coverage of its intervals per metabolite in each group
    (an SNR, labelled ``"inf"``, ``"30"``...; ``"all"`` for a test set of unknown SNR) and over
    all of them (:func:`~.calibration.calibration_table`), and the ``(truth, mean, sd)`` of each
    method and group for :func:`scaloquant.report.evaluation_figures.reliability_figure`."""
    tables: dict[str, Any] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    methods = list(dict.fromkeys(name for *_, sds in groups for name in sds))
    if not methods:
        return tables, curves
    from . import calibration  # loads torch (through the models' quantile), only when needed

    for name in methods:
        parts = [
            (label, np.asarray(truth), np.asarray(pred[name]), np.asarray(sds[name]))
            for label, truth, pred, sds in groups
            if name in sds
        ]
        tables[name] = calibration.calibration_table(
            np.concatenate([t for _, t, _, _ in parts]),
            np.concatenate([p for _, _, p, _ in parts]),
            np.concatenate([sd for *_, sd in parts]),
            [label for label, t, _, _ in parts for _ in range(len(t))],
            metabolites=metabolites,
        )
        for label, t, p, sd in parts:
            words = {"inf": "noiseless", "all": "test set"}.get(label, f"SNR {label}")
            curves[f"{name}, {words}" if len(methods) > 1 else words] = (t, p, sd)
    return tables, curves


def snr_block(
    case: SnrCase,
    metabolites: Sequence[str],
    *,
    tables: Mapping[str, MetricTable] | None = None,
    partial_tables: Mapping[str, MetricTable] | None = None,
) -> dict[str, Any]:
    """The ``by_snr`` entry of ``case`` in ``metrics.json``.

    ``{"snr", "noise_seed", "n_signals", "methods": {NAME: method_metrics}, "subset": null or
    {"n_signals": k, "methods": {NAME: ...}} (every method on the first k signals, partial ones
    included), "crlb": null or crlb_summary, "summary": case_summary}``. ``tables`` (of ``case.predictions`` on every
    signal) and ``partial_tables`` (of ``case.partial``), when already computed, are used instead
    of computing them again.
    """
    truth = np.asarray(case.truth, dtype=np.float64)
    subset = None
    if case.partial:
        k = {np.shape(p)[0] for p in case.partial.values()}
        if len(k) != 1:
            raise InvalidDataError(
                f"the partial methods estimated different numbers of signals {sorted(k)}"
            )
        k = k.pop()
        done = dict(partial_tables or {})
        subset = {
            "n_signals": k,
            "methods": {
                name: _method_entry(done[name], truth[:k], np.asarray(pred)[:k])
                if name in done
                else method_metrics(truth[:k], np.asarray(pred)[:k], metabolites)
                for name, pred in {**case.predictions, **case.partial}.items()
            },
        }
    done = dict(tables or {})
    return {
        "snr": case.snr,
        "noise_seed": case.noise_seed,
        "n_signals": int(truth.shape[0]),
        "methods": {
            name: _method_entry(done[name], truth, np.asarray(pred))
            if name in done
            else method_metrics(truth, np.asarray(pred), metabolites)
            for name, pred in case.predictions.items()
        },
        "subset": subset,
        "crlb": None
        if case.crlb_covariance is None
        else crlb_summary(case.crlb_covariance, metabolites),
        "summary": case_summary(case, metabolites),
    }


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
    n_boot: int = DEFAULT_N_BOOT,
    metric: str = "smape",
    pairs: Sequence[tuple[str, str]] | None = None,
) -> list[tuple[str, str, PairedBootstrap]]:
    """Paired bootstrap of ``metric`` for every pair of methods, in the order given, or for
    ``pairs`` ``(a, b)`` of them only.

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
        for a, b in (combinations(predictions, 2) if pairs is None else pairs)
    ]


@dataclass(frozen=True)
class Evaluation:
    """Everything an evaluation computed, once: what :func:`scaloquant.report.evaluation.
    write_evaluation` writes (``metrics.json``, ``report.md``, figures).

    Attributes
    ----------
    metabolites : column names, ``(M,)``.
    truth : true amplitudes ``(n, M)`` of the test set (of the first SNR with several).
    predictions : method -> amplitudes ``(n, M)`` of the methods that estimated every signal.
    tables : method -> its :class:`~.metrics.MetricTable` on the test set (of ``predictions``).
    comparisons : ``(a, b, result)`` of the paired bootstrap of every pair of ``predictions``.
    reliability : curve label -> ``(truth, mean, sd)`` ``(n_g, M)`` each, for the reliability
        figure; empty without predicted SDs.
    by_snr : SNR label -> its ``by_snr`` block (:func:`snr_block`); empty without SNR cases.
    example : the Fig. 2 signal rebuilt from each method's estimate, or None.
    curves : method -> its training curve; empty when none was given.
    metrics : the ``metrics.json`` document (plain JSON types), built from the above.
    title, context : heading and first paragraph of ``report.md``.
    """

    metabolites: tuple[str, ...]
    truth: np.ndarray
    predictions: Mapping[str, np.ndarray]
    tables: Mapping[str, MetricTable]
    comparisons: tuple[tuple[str, str, PairedBootstrap], ...]
    reliability: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    by_snr: Mapping[str, Mapping[str, Any]]
    example: SignalExample | None
    curves: Mapping[str, TrainingCurve]
    metrics: dict[str, Any]
    title: str
    context: str


def evaluate_predictions(
    truth: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    metabolites: Sequence[str],
    *,
    bootstrap_seed: int,
    config: Mapping[str, Any],
    wall_times_s: Mapping[str, float],
    title: str,
    context: str,
    n_boot: int = DEFAULT_N_BOOT,
    mean_predictor: np.ndarray | None = None,
    curves: Mapping[str, TrainingCurve] | None = None,
    example: SignalExample | None = None,
    started_at: float | None = None,
    partial: Mapping[str, np.ndarray] | None = None,
    sds: Mapping[str, np.ndarray] | None = None,
    sd_groups: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Every metric and comparison of the methods' estimates of one test set.

    Parameters
    ----------
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
    partial : method -> amplitudes ``(k, M)`` of methods that estimated only the first ``k``
        test signals (the fit): listed under ``"models"`` with their ``n_signals``, left out of
        the paired comparison (which needs every signal).
    sds : method -> predicted standard deviations ``(n_signals, M)`` of methods of
        ``predictions`` with an uncertainty: ``"calibration"`` (coverage of their 68% and 95%
        intervals per metabolite) and the reliability figure.
    sd_groups : a label per test signal ``(n_signals,)`` (e.g. its SNR group,
        :func:`~.calibration.snr_groups`) to give the calibration per group as well.
    extra : further top-level entries of ``metrics.json`` (e.g. ``evaluate``'s columns not
        scored), written as given (plain JSON types).
    """
    t0 = time.perf_counter()
    truth = np.asarray(truth, dtype=np.float64)
    sds = dict(sds or {})
    if sd_groups is not None:
        labels = np.asarray(sd_groups, dtype=object)
        groups = [
            (
                str(label),
                truth[labels == label],
                {k: np.asarray(v)[labels == label] for k, v in predictions.items()},
                {k: np.asarray(v)[labels == label] for k, v in sds.items()},
            )
            for label in dict.fromkeys(labels)
        ]
    else:
        groups = [("all", truth, predictions, sds)]
    return _evaluate(
        truth,
        predictions,
        dict(partial or {}),
        metabolites,
        groups=groups,
        cases=(),
        t0=t0,
        bootstrap_seed=bootstrap_seed,
        config=config,
        wall_times_s=wall_times_s,
        title=title,
        context=context,
        n_boot=n_boot,
        mean_predictor=mean_predictor,
        curves=curves,
        example=example,
        started_at=started_at,
        pairs=None,
        extra=extra,
    )


def evaluate_snr_cases(
    cases: Sequence[SnrCase],
    metabolites: Sequence[str],
    *,
    bootstrap_seed: int,
    config: Mapping[str, Any],
    wall_times_s: Mapping[str, float],
    title: str,
    context: str,
    n_boot: int = DEFAULT_N_BOOT,
    mean_predictor: np.ndarray | None = None,
    curves: Mapping[str, TrainingCurve] | None = None,
    example: SignalExample | None = None,
    started_at: float | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Evaluation:
    """:func:`evaluate_predictions` of the same test signals at several SNRs: the top-level
    results are those of the first case (its truth, predictions, partial methods), ``by_snr``
    holds every case, and the calibration is given per SNR (from each case's ``sds``).

    ``pairs``: the ``(a, b)`` methods of the paired comparison (default every pair);
    ``extra``: further top-level entries of ``metrics.json`` (e.g. ``reproduce``'s encoder
    comparison and speeds), written as given (plain JSON types).

    Raises :class:`InvalidDataError` when two cases have the same SNR; other parameters as
    :func:`evaluate_predictions`.
    """
    t0 = time.perf_counter()
    if not cases:
        raise InvalidDataError("give at least one SNR case")
    labels = [case.label for case in cases]
    if len(set(labels)) != len(labels):
        raise InvalidDataError("two test sets have the same SNR; give each SNR once")
    top = cases[0]
    return _evaluate(
        np.asarray(top.truth, dtype=np.float64),
        top.predictions,
        dict(top.partial),
        metabolites,
        groups=[c.calibration_group() for c in cases],
        cases=cases,
        t0=t0,
        bootstrap_seed=bootstrap_seed,
        config=config,
        wall_times_s=wall_times_s,
        title=title,
        context=context,
        n_boot=n_boot,
        mean_predictor=mean_predictor,
        curves=curves,
        example=example,
        started_at=started_at,
        pairs=pairs,
        extra=extra,
    )


def _evaluate(
    truth: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    partial: Mapping[str, np.ndarray],
    metabolites: Sequence[str],
    *,
    groups: Sequence[CalibrationGroup],
    cases: Sequence[SnrCase],
    t0: float,
    bootstrap_seed: int,
    config: Mapping[str, Any],
    wall_times_s: Mapping[str, float],
    title: str,
    context: str,
    n_boot: int,
    mean_predictor: np.ndarray | None,
    curves: Mapping[str, TrainingCurve] | None,
    example: SignalExample | None,
    started_at: float | None,
    pairs: Sequence[tuple[str, str]] | None,
    extra: Mapping[str, Any] | None,
) -> Evaluation:
    # the shared body of evaluate_predictions and evaluate_snr_cases; with cases, truth,
    # predictions and partial are those of cases[0], whose tables are computed once
    for name, pred in predictions.items():
        check_predictions(truth, np.asarray(pred), f"predictions of {name}")
    for name, pred in partial.items():
        pred = np.asarray(pred)
        check_predictions(truth[: pred.shape[0]], pred, f"predictions of {name}")
    tables: dict[str, MetricTable] = {
        name: compute_metrics(truth, pred, metabolites) for name, pred in predictions.items()
    }
    partial_tables = {
        name: compute_metrics(truth[: np.shape(pred)[0]], pred, metabolites)
        for name, pred in partial.items()
    }
    calibration, reliability = calibration_tables(groups, metabolites)
    snr_blocks = {
        case.label: snr_block(
            case,
            metabolites,
            tables=tables if i == 0 else None,
            partial_tables=partial_tables if i == 0 else None,
        )
        for i, case in enumerate(cases)
    }
    comparisons = compare_all(
        truth, predictions, metabolites, bootstrap_seed=bootstrap_seed, n_boot=n_boot, pairs=pairs
    )
    baseline = None
    if mean_predictor is not None:
        constant = np.broadcast_to(np.asarray(mean_predictor, dtype=np.float64), truth.shape)
        baseline = compute_metrics(truth, constant, metabolites)
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
        partial_tables=partial_tables,
        calibration=calibration or None,
        by_snr=snr_blocks or None,
    )
    doc.update(plain_json(dict(extra or {})))
    return Evaluation(
        metabolites=tuple(metabolites),
        truth=truth,
        predictions=MappingProxyType(dict(predictions)),
        tables=MappingProxyType(tables),
        comparisons=tuple(comparisons),
        reliability=MappingProxyType(reliability),
        by_snr=MappingProxyType(snr_blocks),
        example=example,
        curves=MappingProxyType(dict(curves or {})),
        metrics=doc,
        title=title,
        context=context,
    )
