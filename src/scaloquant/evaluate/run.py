"""Evaluate trained checkpoints on a simulated test file: the job of ``scaloquant evaluate``
(written by :func:`scaloquant.report.evaluation.write_evaluation`); its prediction and Fig. 2
helpers are also used by :func:`scaloquant.reproduce.reproduce`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._words import counted
from ..errors import IncompatibleDataError, InputFileError
from ..fit.config import macromolecule_names
from ..io import default_basis
from ..io.hdf5 import read_simulation
from ..paths import CHECKPOINT_HINT, require_file
from ..physics.macromolecules import LCMODEL_COMPONENTS
from ..signal.match import require_same_grid
from ..simulate import rebuild_fids
from ..types import FID, BasisSet, SignalSet
from . import calibration
from .bootstrap import DEFAULT_N_BOOT, check_options
from .metrics import slope
from .pipeline import (
    Evaluation,
    SignalExample,
    evaluate_predictions,
    method_summary,
    representative_index,
)


def predict_test_set(
    quantifier: Any, test: SignalSet, *, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Amplitudes ``(n_signals, n_metabolites)`` a trained quantifier estimates for ``test``,
    with columns in the order of ``test.metabolites``, and their standard deviations, same
    shape (NaN for a model without uncertainty).

    Refuses (IncompatibleDataError) a model trained on another basis or another grid, one whose
    scores the test file cannot give (:func:`check_model`), and one that does not estimate a
    column of the file (``scaloquant evaluate`` scores such a model on the columns it estimates,
    :func:`scoring`).
    """
    order = _test_columns(quantifier, test, name)
    # predict copies read-only arrays itself
    pred, sd = quantifier.predict_with_sd(test.fids)
    return (
        np.asarray(pred, dtype=np.float64)[:, order],
        np.asarray(sd, dtype=np.float64)[:, order],
    )


def predict_physics_test_set(quantifier: Any, test: SignalSet, *, name: str) -> Any:
    """A physics-head model's :class:`~scaloquant.models.physics.PhysicsPrediction` of
    ``test`` (amplitudes, CRLB SDs, the network's own SDs, each ``(n_signals, n_metabolites)``
    with columns in the order of ``test.metabolites``, and the network's parameters ``(n, P)``
    in the fit's layout), from one pass: what :func:`predict_test_set` and
    :func:`scaloquant.evaluate.encoders.network_parameters` give. Refuses as
    :func:`predict_test_set`."""
    order = _test_columns(quantifier, test, name)
    p = quantifier.predict_estimates(test.fids)
    return p._replace(
        amplitudes=p.amplitudes[:, order], sd=p.sd[:, order], network_sd=p.network_sd[:, order]
    )


def _test_columns(quantifier: Any, test: SignalSet, name: str) -> list[int]:
    """The model's amplitude columns of ``test.metabolites``, in their order, after
    :func:`check_model`."""
    model_names = check_model(quantifier, test, name)
    absent = [m for m in test.metabolites if m not in model_names]
    if absent:
        raise IncompatibleDataError(
            f"{name} does not estimate {', '.join(absent)}; score the columns it estimates "
            "(scaloquant evaluate names the others as not scored)"
        )
    return [model_names.index(m) for m in test.metabolites]


def check_model(quantifier: Any, test: SignalSet, name: str) -> tuple[str, ...]:
    """The names of the amplitudes the model ``name`` estimates, after checking that the test
    file can score them (IncompatibleDataError otherwise): the model's grid is the file's; its
    names are the file's basis', but for LCModel's parametric components (the lipids of a
    model trained with ``--simulation invivo``, and its macromolecules where the fit models
    them so in place of the basis' measured ``Mac``: :func:`scoring` scores those the file
    holds the truth of and names the others); and no macromolecule it estimates is 0 in every
    signal of a file that did not render it (:func:`_require_scored_macromolecules`)."""
    require_same_grid(
        test.acquisition,
        quantifier.config.acquisition,
        what="the test file",
        target_what=f"model {name}",
        # a model trained with --grid-from has that file's grid, not its basis'
        remedy="simulate the test file on the model's grid (scaloquant simulate --grid-from "
        "the data file the model was trained for, or without --grid-from for a model trained "
        "on its basis' own grid) or evaluate a model trained for this file's",
    )
    model_names = tuple(quantifier.metabolites)
    missing = [m for m in test.metabolites if m not in model_names]
    extra = [m for m in model_names if m not in test.metabolites]
    # the only difference of names a file of the model's basis can have: LCModel's parametric
    # components the model estimates beside the basis (an invivo-prior model's lipids), in
    # place of at most the basis' measured macromolecules (fit.problem.macromolecule_choice,
    # e.g. train --grid-from another scanner type's file); a model that lacks only the file's
    # Mac, estimating none of the components, was trained on another basis
    components_only = set(extra) <= set(LCMODEL_COMPONENTS) and set(missing) <= set(
        macromolecule_names(test.metabolites)
    )
    if (missing and not extra) or not components_only:
        raise IncompatibleDataError(_names_differ(name, extra, missing, test))
    _require_scored_macromolecules(test, name, model_names)
    return model_names


def _require_scored_macromolecules(test: SignalSet, name: str, model_names: Sequence[str]) -> None:
    """Refuse a test file whose basis macromolecules were not rendered where the model
    estimates them: a file of the invivo prior with ``macromolecules: parametric`` (``simulate
    --preset invivo --grid-from`` another scanner type's file) holds LCModel's MM09...MM20 in
    its FIDs and gives the basis' ``Mac`` the truth 0 in every signal, against which a model
    estimating ``Mac`` was scored (audit34b: a default-simulation model's Mac MAE 3.4 against a
    truth of 0, exit 0)."""
    if (test.config or {}).get("macromolecules") != "parametric":
        return
    zero = [
        m
        for m in macromolecule_names(test.metabolites)
        if m in model_names and not np.any(test.amplitudes[:, test.metabolites.index(m)])
    ]
    if zero:
        raise IncompatibleDataError(
            f"the test file's macromolecules are LCModel's parametric components (its config's "
            f"macromolecules: parametric, as simulate --preset invivo --grid-from another scanner "
            f"type's file renders them), and {', '.join(zero)}, which {name} estimates, is 0 in "
            "every signal: its estimates would be scored against a truth the file does not "
            f"hold; evaluate {name} on a file simulated without --preset invivo (or with "
            "macromolecules: measured in its --config)"
        )


def _names_differ(name: str, extra: list[str], missing: list[str], test: SignalSet) -> str:
    """The refusal of a model whose amplitude names are not the test file's basis': what
    differs, and the remedy."""
    differs = "; ".join(
        [f"{name} estimates {', '.join(extra)}, which the test file does not hold"] * bool(extra)
        + [f"the test file holds {', '.join(missing)}, which {name} does not estimate"]
        * bool(missing)
    )
    made = f" ({test.basis_name})" if test.basis_name else ""
    return (
        f"{differs}: the test file was simulated with another basis set{made} than {name} "
        "was trained on; evaluate a model trained with --basis that basis, or simulate the "
        "test file with --basis the model's"
    )


def file_truth(test: SignalSet) -> tuple[tuple[str, ...], np.ndarray]:
    """The names and true amplitudes ``(n, K)`` a simulation file holds: its basis' (``test.
    amplitudes``) and, in a file of ``simulate --preset invivo``, the parametric components'
    the prior drew (dataset ``component_amplitudes_mm``, columns named by the config's
    ``components``: LCModel's lipids, and MM09...MM20 with ``macromolecules: parametric``), in
    the unit of the fit's components, the one ``train --simulation invivo`` trains on
    (:func:`scaloquant.models.physics_truth.invivo_truth`)."""
    names, truth = tuple(test.metabolites), np.asarray(test.amplitudes, dtype=np.float64)
    components = tuple(str(c) for c in (test.config or {}).get("components") or ())
    values = test.parameters.get("component_amplitudes_mm")
    if components and values is not None and np.shape(values)[1:] == (len(components),):
        keep = [i for i, c in enumerate(components) if c not in names]
        names += tuple(components[i] for i in keep)
        truth = np.concatenate([truth, np.asarray(values, dtype=np.float64)[:, keep]], axis=1)
    return names, truth


class Scoring(NamedTuple):
    """What an evaluation of several models on one file scores (:func:`scoring`).

    Attributes
    ----------
    names : the scored columns ``(S,)``: the file's true amplitudes every model estimates, in
        the file's order (:func:`file_truth`).
    truth : their true amplitudes ``(n, S)``.
    not_scored : every other column a model estimates or the file holds -> why it is not
        scored, in words.
    """

    names: tuple[str, ...]
    truth: np.ndarray
    not_scored: Mapping[str, str]


def scoring(estimated: Mapping[str, Sequence[str]], test: SignalSet) -> Scoring:
    """The columns the models (name -> the names of the amplitudes it estimates, each
    :func:`check_model`'s) are scored on: those of the file's truth that every model estimates
    (one set of columns, so that the paired comparison compares like with like); the others are
    named with the reason, never dropped unsaid."""
    names, truth = file_truth(test)
    scored = [j for j, c in enumerate(names) if all(c in m for m in estimated.values())]
    not_scored: dict[str, str] = {}
    for column in dict.fromkeys(c for m in estimated.values() for c in m):
        if column not in names:
            by = [k for k, m in estimated.items() if column in m]
            not_scored[column] = (
                f"estimated by {', '.join(by)}; the test file holds no truth for it"
            )
    for j, column in enumerate(names):
        if j not in scored:
            lack = [k for k, m in estimated.items() if column not in m]
            # a file of parametric macromolecules holds the basis' Mac, not rendered, at 0
            zero = ", 0 in every signal" * (not np.any(truth[:, j]))
            not_scored[column] = f"the test file's truth{zero}; not estimated by {', '.join(lack)}"
    return Scoring(tuple(names[j] for j in scored), truth[:, scored], not_scored)


def signal_example(
    basis: BasisSet | None,
    test: SignalSet,
    predictions: Mapping[str, np.ndarray],
) -> SignalExample | None:
    """The Fig. 2 example: the test signal of median error of the first method, rebuilt from
    each method's estimate; None when ``basis`` is not the one the test set was made with."""
    if basis is None or basis.names != test.metabolites:
        return None
    if test.basis_sha256 and basis.content_hash() != test.basis_sha256:
        return None
    first = next(iter(predictions.values()))
    i = representative_index(test.amplitudes, first)
    row = test.take(slice(i, i + 1))
    grid = test.acquisition

    def single(samples: np.ndarray, **provenance: Any) -> FID:
        return FID(
            samples,
            grid.dwell_time_s,
            grid.spectrometer_freq_mhz,
            grid.ppm_reference,
            grid.nucleus,
            provenance,
        )

    return SignalExample(
        index=int(test.indices[i]) if test.indices is not None else i,
        truth=single(test.fids[i], signal="test"),
        estimates={
            name: single(rebuild_fids(basis, row, pred[i : i + 1])[0], model=name)
            for name, pred in predictions.items()
        },
    )


def method_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Names of checkpoints in reports: the file stem, with ``_2``, ``_3``... for repeats."""
    names: list[str] = []
    for path in paths:
        stem = Path(path).stem
        name, k = stem, 2
        while name in names:
            name, k = f"{stem}_{k}", k + 1
        names.append(name)
    return names


def evaluate_checkpoints(
    checkpoints: Sequence[str | os.PathLike],
    data: str | os.PathLike,
    *,
    seed: int = 0,
    n_boot: int = DEFAULT_N_BOOT,
    basis: BasisSet | None = None,
) -> Evaluation:
    """Evaluate each checkpoint on the simulated test file ``data`` (metrics, paired comparison,
    Fig. 2 example); with models that predict standard deviations also their calibration per SNR
    group of the test file. :func:`scaloquant.report.evaluation.write_evaluation` writes it
    (``metrics.json``, ``report.md``, ``figures/``).

    The models are scored on the columns of :func:`scoring`: the file's truth (its basis' and,
    from ``simulate --preset invivo``, its parametric components') that every model estimates;
    the others are named in ``metrics.json`` ``not_scored`` and ``report.md``, with why.
    ``metrics.json`` ``summary`` holds each model's :func:`column_summary`.

    Parameters
    ----------
    checkpoints : ``.ckpt`` files written by ``scaloquant train`` or ``reproduce``.
    data : a simulation file (``scaloquant simulate``, or ``DIR/data/test.h5`` of ``reproduce``).
    seed : seed of the paired bootstrap.
    n_boot : bootstrap resamples.
    basis : the basis the test set was made with, for the Fig. 2 rebuild (default: the embedded
        basis; Fig. 2 is left out when it is not the test set's basis).
    """
    from ..models.checkpoint import load_model  # torch loads only when needed

    start = time.perf_counter()
    check_options(n_boot=n_boot, seed=seed)
    if not checkpoints:
        raise InputFileError("give at least one checkpoint with --model")
    for path in checkpoints:  # as quantify's: a folder is named as one, not as missing
        require_file(path, "checkpoint ", CHECKPOINT_HINT)
    names = method_names(checkpoints)
    test = read_simulation(data)
    estimated: dict[str, tuple[str, ...]] = {}
    predictions: dict[str, np.ndarray] = {}
    sds: dict[str, np.ndarray] = {}
    wall_times: dict[str, float] = {"read_test_set": time.perf_counter() - start}
    for name, path in zip(names, checkpoints, strict=True):
        t0 = time.perf_counter()
        quantifier = load_model(path).quantifier
        # every column the model estimates, in its order: scoring picks those scored
        estimated[name] = check_model(quantifier, test, name)
        pred, sd = quantifier.predict_with_sd(test.fids)
        predictions[name] = np.asarray(pred, dtype=np.float64)
        if quantifier.has_uncertainty:
            sds[name] = np.asarray(sd, dtype=np.float64)
        wall_times[f"predict_{name}"] = time.perf_counter() - t0
    scored = scoring(estimated, test)

    def columns(values: np.ndarray, name: str) -> np.ndarray:
        return values[:, [estimated[name].index(c) for c in scored.names]]

    predictions = {k: columns(v, k) for k, v in predictions.items()}
    sds = {k: columns(v, k) for k, v in sds.items()}
    left_out = _example_left_out(test, scored.names)
    example = None
    if not left_out:
        example = signal_example(basis if basis is not None else default_basis(), test, predictions)
        left_out = "" if example else "the test set was made with another basis"
    context = (
        f"{counted(len(names), 'model')} evaluated on {test.n_total} simulated test signals from "
        f"`{data}` (simulation seed {test.seed}, basis {test.basis_name or 'unrecorded'}). "
        + not_scored_words(scored.not_scored)
        + (f"Fig. 2 is left out: {left_out}. " if left_out else "")
        + "No baseline row: predicting the mean needs the training targets, which a test "
        "file does not hold."
    )
    return evaluate_predictions(
        scored.truth,
        predictions,
        scored.names,
        bootstrap_seed=seed,
        config={
            "checkpoints": {n: str(p) for n, p in zip(names, checkpoints, strict=True)},
            "test_data": str(data),
            "n_signals": test.n_total,
            "simulation": dict(test.config),
            "simulation_seed": test.seed,
            "bootstrap": {"seed": seed, "n_boot": n_boot},
        },
        wall_times_s=wall_times,
        started_at=start,
        title="scaloquant evaluation",
        context=context,
        n_boot=n_boot,
        example=example,
        sds=sds or None,
        sd_groups=calibration.snr_groups(test.parameters.get("snr"), len(scored.truth))
        if sds
        else None,
        extra={
            "not_scored": dict(scored.not_scored),
            "summary": {
                k: column_summary(scored.truth, v, sds.get(k), scored.names)
                for k, v in predictions.items()
            },
        },
    )


def column_summary(
    truth: np.ndarray, pred: np.ndarray, sd: np.ndarray | None, names: Sequence[str]
) -> dict[str, Any]:
    """A model's ``summary`` in ``evaluate``'s ``metrics.json``: :func:`~.pipeline.
    method_summary` (mean MAE and SMAPE, slopes of the main quantities, with SDs their
    coverage) and ``slope_per_column``: the slope of estimate on truth of every scored column
    (:func:`~.metrics.slope`: 1 unbiased, below 1 shrunk towards the training prior; NaN where
    the truth is constant)."""
    return {
        **method_summary(truth, pred, sd, names),
        "slope_per_column": dict(zip(names, slope(truth, pred).tolist(), strict=True)),
    }


def not_scored_words(not_scored: Mapping[str, str]) -> str:
    """The sentence of ``report.md`` that names the columns not scored and why (empty when
    every column is scored)."""
    if not not_scored:
        return ""
    return (
        "Not scored: " + "; ".join(f"{column} ({why})" for column, why in not_scored.items()) + ". "
    )


def _example_left_out(test: SignalSet, scored: Sequence[str]) -> str:
    """Why the Fig. 2 rebuild (:func:`signal_example`, Eq. 1 from the basis) cannot be drawn
    for this file and these columns, or "" when it can."""
    if (test.config or {}).get("preset"):
        return (
            f"the test file is of simulate --preset {test.config['preset']}, whose signals "
            "(lipids, residual water, baseline, eddy currents) Eq. (1) does not rebuild"
        )
    if tuple(scored) != tuple(test.metabolites):
        return "not every basis signal of the test file is scored"
    return ""
