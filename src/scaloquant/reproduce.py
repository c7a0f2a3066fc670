"""``reproduce``: the paper's experiment end to end, scalogram CNN against spectrum CNN.

Steps: simulate the training and validation signals (shared by both models, as in the paper)
and one held-out test set; train both models; estimate the test amplitudes with each; evaluate
(metrics, paired bootstrap, figures, report). Everything is written into a staging folder and
moved into ``out_dir`` at the end (:func:`scaloquant.io.atomic.staged_directory`)::

    out_dir/metrics.json, out_dir/report.md, out_dir/figures/*.png
    out_dir/models/scalogram_cnn.ckpt, out_dir/models/spectrum_cnn.ckpt
    out_dir/logs/<model>/metrics.csv (training curves), out_dir/logs/<model>/data_streams.json
    out_dir/data/test.h5 (the test set, :func:`scaloquant.io.hdf5.write_simulation` layout)

Seeds: the training and validation sets are those :func:`scaloquant.train.train_model` would
draw for ``seed``; the test set uses the seed ``SeedSequence([seed, TEST_KEY])`` makes, a stream
independent of the training streams; the bootstrap uses ``SeedSequence([seed, BOOTSTRAP_KEY])``.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import ConfigError, InputFileError
from .evaluate.bootstrap import check_options
from .evaluate.figures import TrainingCurve
from .evaluate.pipeline import write_evaluation
from .evaluate.run import predict_test_set, signal_example
from .io.atomic import staged_directory
from .io.default import DEFAULT_BASIS_NAME, default_basis
from .io.hdf5 import read_simulation, write_simulation
from .simulate import SimulationConfig, simulate_dataset
from .types import BasisSet

PresetName = Literal["tiny", "quick", "cpu", "paper"]
PRESETS: tuple[str, ...] = ("tiny", "quick", "cpu", "paper")
#: The two methods of the paper, in the order of the comparison (A − B).
MODELS: tuple[str, ...] = ("scalogram_cnn", "spectrum_cnn")
#: Test signals per preset: the paper held out 20% of 10,000 signals (2,000); fewer for the
#: short presets, enough for a bootstrap interval of a few SMAPE points.
N_TEST: dict[str, int] = {"tiny": 200, "quick": 1000, "cpu": 2000, "paper": 2000}
#: Keys of the test-set and bootstrap seed streams (far from train's keys 0-3).
TEST_KEY, BOOTSTRAP_KEY = 0x7E57, 0xB007


@dataclass(frozen=True)
class ReproduceResult:
    """Outcome of :func:`reproduce`: the output folder and the ``metrics.json`` document."""

    out_dir: Path
    metrics: dict[str, Any]

    @property
    def wall_times_s(self) -> dict[str, float]:
        return self.metrics["wall_times_s"]


def derived_seed(seed: int, key: int) -> int:
    """A seed for the stream ``key`` of a run seeded with ``seed`` (63-bit, HDF5-safe)."""
    state = np.random.SeedSequence([int(seed), int(key)]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def read_training_curve(path: str | os.PathLike) -> TrainingCurve:
    """Training and validation loss from a Lightning CSV log (``train/loss``, ``val/loss`` and,
    when logged, ``val/rmse``)."""
    train_step, train_loss, val_step, val_loss, val_rmse = [], [], [], [], []
    try:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                step = row.get("step", "")
                if not step:
                    continue
                if row.get("train/loss"):
                    train_step.append(int(step))
                    train_loss.append(float(row["train/loss"]))
                if row.get("val/loss"):
                    val_step.append(int(step))
                    val_loss.append(float(row["val/loss"]))
                    val_rmse.append(float(row.get("val/rmse") or "nan"))
    except (OSError, ValueError, csv.Error) as err:
        raise InputFileError(f"cannot read the training log {path} ({err})") from None
    rmse = np.array(val_rmse)
    return TrainingCurve(
        np.array(train_step),
        np.array(train_loss),
        np.array(val_step),
        np.array(val_loss),
        rmse if rmse.size and np.all(np.isfinite(rmse)) else None,
    )


def _configs(preset: str, seed: int | None, fresh_data: bool | None) -> dict[str, Any]:
    from .train import TrainConfig

    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return {
        model: TrainConfig.preset(preset, model=model).with_overrides(
            {"seed": seed, "fresh_data": fresh_data}
        )
        for model in MODELS
    }


def reproduce(
    preset: PresetName,
    out_dir: str | os.PathLike,
    *,
    seed: int | None = None,
    fresh_data: bool | None = None,
    n_test: int | None = None,
    n_boot: int = 2000,
    overwrite: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    basis: BasisSet | None = None,
) -> ReproduceResult:
    """Run the paper's comparison with a training preset and write every output into ``out_dir``.

    Parameters
    ----------
    preset : training preset of both models (:meth:`scaloquant.train.TrainConfig.preset`).
    out_dir : output folder; a non-empty one needs ``overwrite``, and then only the files this
        run writes are replaced.
    seed : run seed (default: the preset's); fixes training, validation and test sets.
    fresh_data : draw new training signals every epoch (default: the preset's choice).
    n_test : held-out test signals (default :data:`N_TEST` of the preset).
    n_boot : bootstrap resamples of the paired comparison.
    overwrite : see ``out_dir``.
    progress : Lightning's progress bars (None: when stderr is a terminal).
    log : called with one line per step (the CLI prints them to stderr); None: silent.
    basis : basis set (default: the embedded ISMRM 2016 basis).
    """
    # torch and Lightning load only when a run starts
    from .train import load_quantifier, simulate_set, train_model
    from .train.data import TRAIN_KEY, VAL_KEY

    start = time.perf_counter()
    say = log or (lambda _line: None)
    configs = _configs(preset, seed, fresh_data)
    first = configs[MODELS[0]]
    n_test = N_TEST[preset] if n_test is None else int(n_test)
    if n_test < 2:
        raise ConfigError(f"the test set needs at least 2 signals, got {n_test}")
    check_options(n_boot=n_boot)
    basis = default_basis() if basis is None else basis
    basis_name = DEFAULT_BASIS_NAME if basis is default_basis() else "given to reproduce()"
    simulation: SimulationConfig = first.simulation_config()
    test_seed = derived_seed(first.seed, TEST_KEY)
    wall: dict[str, float] = {}

    with staged_directory(out_dir, overwrite=overwrite) as stage:
        say(f"simulating {n_test} test signals and the training data (seed {first.seed})")
        t0 = time.perf_counter()
        (stage / "data").mkdir()
        test_path = write_simulation(
            stage / "data" / "test.h5",
            ((c.fids, c.columns()) for c in simulate_dataset(basis, simulation, n_test, test_seed)),
            n_signals=n_test,
            basis=basis,
            basis_name=basis_name,
            config=simulation.to_dict(),
            seed=test_seed,
        )
        test = read_simulation(test_path)  # evaluate what was written, not what was meant
        # Both models train on the same signals, as in the paper: the sets train_model would
        # simulate for this seed, made once here.
        val = simulate_set(basis, simulation, first.n_val, first.seed, VAL_KEY)
        train = (
            None
            if first.fresh_data
            else simulate_set(basis, simulation, first.n_train, first.seed, TRAIN_KEY)
        )
        wall["simulate"] = time.perf_counter() - t0

        predictions: dict[str, np.ndarray] = {}
        curves: dict[str, TrainingCurve] = {}
        for model, config in configs.items():
            say(f"training {model} ({preset} preset)")
            result = train_model(
                config,
                basis,
                stage / "models",
                log_dir=stage / "logs",
                train_set=None if train is None else (train.fids, train.amplitudes),
                val_set=(val.fids, val.amplitudes),
                progress=progress,
                data_source={
                    "train": "fresh every epoch" if train is None else "simulated",
                    "val": "simulated",
                    "test": "data/test.h5",
                },
            )
            wall[f"train_{model}"] = result.wall_time_s
            curves[model] = read_training_curve(result.log_csv_path)
            say(f"predicting the test set with {model}")
            t0 = time.perf_counter()
            predictions[model] = predict_test_set(
                load_quantifier(result.checkpoint_path), test, name=model
            )
            wall[f"predict_{model}"] = time.perf_counter() - t0

        say("evaluating")
        targets = val.amplitudes if train is None else train.amplitudes
        resolved = {
            "preset": preset,
            "seed": first.seed,
            "fresh_data": first.fresh_data,
            "n_test": n_test,
            "test_seed": test_seed,
            "test_data": "data/test.h5",
            "bootstrap": {"seed": derived_seed(first.seed, BOOTSTRAP_KEY), "n_boot": n_boot},
            "basis": basis_name,
            "train": {model: config.to_dict() for model, config in configs.items()},
        }
        fresh_note = (
            "drawn afresh every epoch" if first.fresh_data else f"{first.n_train} fixed signals"
        )
        doc = write_evaluation(
            stage,
            truth=test.amplitudes,
            predictions=predictions,
            metabolites=test.metabolites,
            bootstrap_seed=resolved["bootstrap"]["seed"],
            config=resolved,
            wall_times_s=wall,
            started_at=start,
            title=f"scaloquant reproduce --preset {preset}: scalogram CNN vs spectrum CNN",
            context=(
                f"Both models were trained on the same simulated signals (training: {fresh_note};"
                f" validation: {first.n_val} signals; seed {first.seed}) and evaluated on "
                f"{n_test} held-out test signals (`data/test.h5`, seed {test_seed}), noiseless "
                "unless the simulation config adds noise. The baseline row predicts the mean of "
                "the training targets"
                + (
                    " (here the validation targets, as training data were drawn afresh)."
                    if train is None
                    else "."
                )
            ),
            n_boot=n_boot,
            mean_predictor=targets.mean(axis=0),
            curves=curves,
            example=signal_example(basis, test, predictions),
        )
    return ReproduceResult(out_dir=Path(out_dir), metrics=doc)
