"""Evaluate trained checkpoints on a simulated test file: the job of ``scaloquant evaluate``
(written by :func:`scaloquant.report.evaluation.write_evaluation`); its prediction and Fig. 2
helpers are also used by :func:`scaloquant.reproduce.reproduce`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
from .pipeline import Evaluation, SignalExample, evaluate_predictions, representative_index


def predict_test_set(
    quantifier: Any, test: SignalSet, *, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Amplitudes ``(n_signals, n_metabolites)`` a trained quantifier estimates for ``test``,
    with columns in the order of ``test.metabolites``, and their standard deviations, same
    shape (NaN for a model without uncertainty).

    Refuses (IncompatibleDataError) a model trained on other metabolites or another grid.
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
    """The model's amplitude columns in the order of ``test.metabolites``, after checking
    that the model's grid and metabolites are the test set's (IncompatibleDataError)."""
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
    if missing or extra:
        raise IncompatibleDataError(_names_differ(name, extra, missing, test))
    _require_scored_macromolecules(test, name)
    return [model_names.index(m) for m in test.metabolites]


def _require_scored_macromolecules(test: SignalSet, name: str) -> None:
    """Refuse a test file whose basis macromolecules were not rendered: a file of the invivo
    prior with ``macromolecules: parametric`` (``simulate --preset invivo --grid-from`` another
    scanner type's file) holds LCModel's MM09...MM20 in its FIDs and gives the basis' ``Mac``
    the truth 0 in every signal, against which a model estimating ``Mac`` was scored (audit34b:
    a default-simulation model's Mac MAE 3.4 against a truth of 0, exit 0)."""
    if (test.config or {}).get("macromolecules") != "parametric":
        return
    zero = [
        m
        for m in macromolecule_names(test.metabolites)
        if not np.any(test.amplitudes[:, test.metabolites.index(m)])
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
    """The refusal of a model whose amplitude names are not the test file's: what differs
    (not both lists: a physics-head model of the invivo prior estimates its parametric lipids
    beside the basis it shares with the file, and the lists were equal but for them), and the
    remedy for that difference."""
    differs = "; ".join(
        [f"{name} estimates {', '.join(extra)}, which the test file does not hold"] * bool(extra)
        + [f"the test file holds {', '.join(missing)}, which {name} does not estimate"]
        * bool(missing)
    )
    # no simulate file holds LCModel's parametric components as basis signals: only a
    # physics-head model trained on the invivo prior estimates them (its lipids, and its
    # macromolecules where the fit replaces the basis' measured ones: fit.problem.
    # macromolecule_choice, e.g. train --grid-from another scanner type's file)
    # (a model that estimates none of them, one that lacks only the file's Mac, was trained
    # on another basis: the words below)
    if (
        extra
        and set(extra) <= set(LCMODEL_COMPONENTS)
        and set(missing) <= set(macromolecule_names(test.metabolites))
    ):
        mm = (
            " and models the macromolecules by LCModel's parametric components in place of "
            f"the basis' measured {', '.join(missing)} (as the fit does for data from another "
            "scanner type than the basis')"
            if missing
            else ""
        )
        return (
            f"{differs}: {name} was trained with --simulation invivo, whose prior's lipids "
            f"it estimates{mm}; a simulate file holds only its basis' signals: train it with "
            "--simulation default (its --basis and --grid-from as before) to evaluate it on a "
            "simulate file"
        )
    made = f" ({test.basis_name})" if test.basis_name else ""
    return (
        f"{differs}: the test file was simulated with another basis set{made} than {name} "
        "was trained on; evaluate a model trained with --basis that basis, or simulate the "
        "test file with --basis the model's"
    )


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
    predictions: dict[str, np.ndarray] = {}
    sds: dict[str, np.ndarray] = {}
    wall_times: dict[str, float] = {"read_test_set": time.perf_counter() - start}
    for name, path in zip(names, checkpoints, strict=True):
        t0 = time.perf_counter()
        quantifier = load_model(path).quantifier
        predictions[name], sd = predict_test_set(quantifier, test, name=name)
        if quantifier.has_uncertainty:
            sds[name] = sd
        wall_times[f"predict_{name}"] = time.perf_counter() - t0
    example = signal_example(basis if basis is not None else default_basis(), test, predictions)
    context = (
        f"{counted(len(names), 'model')} evaluated on {test.n_total} simulated test signals from "
        f"`{data}` (simulation seed {test.seed}, basis {test.basis_name or 'unrecorded'}). "
        + ("" if example else "Fig. 2 is left out: the test set was made with another basis. ")
        + "No baseline row: predicting the mean needs the training targets, which a test "
        "file does not hold."
    )
    return evaluate_predictions(
        test.amplitudes,
        predictions,
        test.metabolites,
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
        sd_groups=calibration.snr_groups(test.parameters.get("snr"), len(test.amplitudes))
        if sds
        else None,
    )
