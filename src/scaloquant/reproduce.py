"""``reproduce``: the paper's experiment end to end, scalogram CNN against spectrum CNN, with
their physics-head models (issue 13) and the classical fit, compared at several SNRs.

Steps: simulate the training and validation signals (shared by both CNNs, as in the paper)
and one noiseless held-out test set; train both regression CNNs and both physics-head models
(:mod:`scaloquant.models.physics`: the same two CNNs as encoders of the fit's per-metabolite
model, trained on fresh signals of the same simulator and SNR range,
:func:`scaloquant.train.physics.train_physics` with ``simulation="default"``), side by side
in processes of their own where steps cap every training (:data:`TRAIN_IN_PROCESSES`); at
each SNR of ``snrs`` add seeded noise to the *same* test signals, estimate their amplitudes
with each of the four models and fit the first ``fit_n`` of them with
:func:`scaloquant.fit.fit_spectra`; evaluate (metrics per SNR, the paired bootstrap of
scalogram against spectrum CNN and of scalogram against spectrum physics model, a summary of
every method with slopes, calibration and speed, and the encoders' errors on the nonlinear
parameters, :mod:`scaloquant.evaluate.encoders`; figures, report). Everything is written into a
staging folder and moved into ``out_dir`` at the end (:func:`scaloquant.io.atomic.staged_directory`)::

    out_dir/metrics.json, out_dir/report.md, out_dir/figures/*.png
    out_dir/models/{scalogram_cnn,spectrum_cnn,scalogram_physics,spectrum_physics}.ckpt
    out_dir/logs/<cnn>/metrics.csv (training curves), out_dir/logs/<cnn>/data_streams.json
    out_dir/data/test.h5 (the noiseless test set, :func:`scaloquant.io.hdf5.write_simulation`)

The top-level results of ``metrics.json`` (``models``, ``comparison``) are those of the first
SNR (noiseless when ``inf`` is listed, the paper's case); ``by_snr`` holds every SNR (each with
its ``summary`` of every method), ``encoders`` the encoders' comparison per SNR and
``speed_spectra_per_s`` each method's speed in the run.

Noise: the simulator's SNR definition and noise (:mod:`scaloquant.simulate.effects`): the
reference peak height of each noiseless Eq. 1 signal over ``SNR sqrt(N)`` is the SD of complex
white noise. Training with noise: when ``snrs`` holds finite SNRs, both models train on signals
whose SNR is drawn uniformly between the smallest and the largest of them (the simulator's
``snr: [min, max]``); noiseless test signals (``inf``) are then the limit beyond the largest.

Seeds (all derived in :mod:`scaloquant.seeds`): the training and validation sets are those
:func:`scaloquant.train.train_model` would
draw for ``seed``; the test set uses the seed ``SeedSequence([seed, TEST_KEY])`` makes, a stream
independent of the training streams; the noise at SNR ``x`` the seed
``derived_seed(test_seed, round(1000 x))`` (the same noise whatever else is listed); the
bootstrap ``SeedSequence([seed, BOOTSTRAP_KEY])``; both physics models train with
``PhysicsTrainConfig.seed = seed`` (the same training signals for both).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._config import whole_number
from .errors import ConfigError
from .evaluate.bootstrap import DEFAULT_N_BOOT, check_options
from .evaluate.pipeline import Evaluation, SnrCase, evaluate_snr_cases
from .evaluate.report import snr_label
from .evaluate.run import predict_physics_test_set, predict_test_set, signal_example
from .io.atomic import staged_directory
from .io.default import DEFAULT_BASIS_NAME, default_basis
from .io.hdf5 import read_simulation, write_simulation
from .io.training_log import TrainingCurve
from .presets import PRESETS, PresetName
from .report.evaluation import write_evaluation
from .seeds import BOOTSTRAP_KEY, TEST_KEY, TRAIN_KEY, VAL_KEY, derived_seed
from .simulate import SimulationConfig, add_noise, simulate_dataset
from .threads import available_cpus, run_in_processes, run_side_by_side
from .types import BasisSet, SignalSet

#: The two methods of the paper, in the order of the comparison (A − B).
MODELS: tuple[str, ...] = ("scalogram_cnn", "spectrum_cnn")
#: The physics-head models (issue 13), the same two encoders, in the order of their comparison.
PHYSICS_MODELS: tuple[str, ...] = ("scalogram_physics", "spectrum_physics")
#: Relative scalogram change below which a channel mode counts as blind to a change of the
#: signal (rounding of the float64 transform is ~1e-7 for ``pos_neg`` under a phase).
BLIND_BELOW = 1e-5
#: Polish iterations ``K`` of the physics models per preset (None: the model's default,
#: :data:`scaloquant.models.physics_config.DEFAULT_POLISH_ITERATIONS` or the physics preset's):
#: ``tiny`` (CI) takes none: its 3-step networks are only there to exercise the pipeline, and
#: from their starts the polish's continuation stages and global moves took 200 s of a 275 s
#: tiny run with ``K = 1`` (the polish has its own tests, tests/unit/test_models_physics.py).
PHYSICS_POLISH: dict[str, int | None] = {"tiny": 0, "quick": None, "cpu": None, "paper": None}
#: Wall-time cap of each physics model's training per preset, s (None: the physics preset's
#: own, :data:`scaloquant.train.physics.PHYSICS_PRESETS`, or none where :data:`PHYSICS_TRAIN_STEPS`
#: caps the steps instead): ``cpu`` keeps the whole run within 30 minutes on 2 cores;
#: ``paper`` half an hour each (the physics trainer runs on the CPU, and its ``paper`` preset's
#: 100,000 steps would take days there).
PHYSICS_TRAIN_S: dict[str, float | None] = {
    "tiny": None,
    "quick": None,
    "cpu": 240.0,
    "paper": 1800.0,
}
#: Training steps of each physics model per preset, instead of a wall-time cap (None: the
#: physics preset's ``max_steps`` and :data:`PHYSICS_TRAIN_S`): a step cap gives the same
#: networks, and so the same numbers, on any machine under any load. ``quick``: the steps the
#: former 30 s wall-time cap gave each model on 2 idle cores (three runs of final main:
#: scalogram 97-103, spectrum 605-718; at load 5 the cap gave 38 and 290, and the polish then
#: started further off and took longer).
PHYSICS_TRAIN_STEPS: dict[str, dict[str, int] | None] = {
    "tiny": None,
    "quick": {"scalogram_physics": 100, "spectrum_physics": 650},
    "cpu": None,
    "paper": None,
}
#: Presets whose regression CNNs train for their preset's epochs without its wall-time cap in
#: ``reproduce`` (the same networks on any machine under any load). ``quick``: its 5 epochs (625
#: steps) took 86 s (scalogram CNN) and 34 s (spectrum CNN) on 2 idle cores, within the preset's
#: 100 s cap, which under load stopped them early instead (at load 5: after 277 and 491 steps).
CNN_STEPS_ONLY: frozenset[str] = frozenset({"quick"})
#: Name of the classical fit in ``metrics.json``.
FIT = "fit"
#: Test signals per preset: the paper held out 20% of 10,000 signals (2,000); fewer for the
#: short presets, enough for a bootstrap interval of a few SMAPE points (quick, 500: the
#: scalogram CNN's SMAPE minus the spectrum CNN's +11.7 points, interval +11.1 to +12.2; 1000
#: gave +10.5, +10.1 to +11). 500 for quick halves the physics models' polish, the slowest
#: step of the run (2-4 spectra/s per model measured on 2 cores shared with other work).
N_TEST: dict[str, int] = {"tiny": 200, "quick": 500, "cpu": 2000, "paper": 2000}
#: Test signals the fit estimates at each SNR: it fits ~1-3 spectra/s on 2 cores, so these keep
#: the fit to about the preset's training time or less with four SNRs.
FIT_N: dict[str, int] = {"tiny": 20, "quick": 100, "cpu": 200, "paper": 200}

#: Whether the physics models' polish and the fit of each SNR run side by side
#: (:func:`scaloquant.threads.run_side_by_side`: a Python thread per job, at most one per CPU,
#: torch's threads shared out among them; one thread each on 2 CPUs) instead of one after the
#: other with every thread. The three are independent, deterministic and spend their time in
#: small torch operations, where a second thread of the same operation adds ~10 %
#: (:mod:`scaloquant.threads`, measured on quantify) and a second job up to twice; their
#: ``speed_spectra_per_s`` are then each measured beside the others. False: one after the
#: other (``benchmarks/bench_reproduce.py --sequential`` measures both).
SIDE_BY_SIDE = True
#: Whether the four trainings run side by side in processes of their own
#: (:func:`scaloquant.threads.run_in_processes`, one torch thread each on 2 CPUs) where steps
#: cap all of them (``quick``, ``tiny``) and no GPU is there; otherwise the regression CNNs
#: train one after the other in this process with every thread, then the physics models side
#: by side in threads (:data:`SIDE_BY_SIDE`). The physics models' trainings do not depend on the
#: CNNs, so two processes keep both cores busy: ``quick`` on 2 idle cores, three pairs of runs,
#: 0.89-0.96 of the former wall time (the scalogram CNN alone 1.6-1.7x slower on one thread
#: than on two, beside the other three in the other process); on cores shared with other jobs
#: a CNN's second thread mostly waits (125 scalogram-CNN steps at load 3: 20.5 s on one thread,
#: 35 s on two). docs/history/benchmarks-log.md, "The four trainings side by side in processes".
TRAIN_IN_PROCESSES = True


@dataclass(frozen=True)
class ReproduceResult:
    """Outcome of :func:`reproduce`: the output folder, the computed
    :class:`~scaloquant.evaluate.pipeline.Evaluation` (what the report says, typed) and the
    ``metrics.json`` document its writer wrote."""

    out_dir: Path
    evaluation: Evaluation
    metrics: dict[str, Any]

    @property
    def wall_times_s(self) -> dict[str, float]:
        return self.metrics["wall_times_s"]


def check_snrs(snrs: Sequence[float]) -> tuple[float, ...]:
    """The SNRs of a run, noiseless (``inf``) first, then from the largest to the smallest.

    Raises :class:`ConfigError` for an empty list, a repeated value or one that is not > 0.
    """
    values = [float(s) for s in snrs]
    if not values:
        raise ConfigError("give at least one SNR, e.g. --snr inf or --snr inf,30")
    bad = [s for s in values if not s > 0]  # also refuses NaN
    if bad:
        raise ConfigError(f"snrs must be > 0 (or inf for noiseless), got {bad[0]:g}")
    labels = [snr_label(s) for s in values]
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise ConfigError(f"SNR {repeated[0]} is listed twice; give each SNR once")
    return tuple(sorted(values, reverse=True))


def parse_snrs(text: str) -> tuple[float, ...]:
    """``"inf,100,30,10"`` -> ``(inf, 100.0, 30.0, 10.0)`` (see :func:`check_snrs`)."""
    values = []
    for item in text.split(","):
        try:
            values.append(float(item.strip()))
        except ValueError:
            raise ConfigError(
                f"cannot read {item.strip()!r} as an SNR; give numbers or inf separated by "
                "commas, e.g. --snr inf,100,30,10"
            ) from None
    return check_snrs(values)


def training_snr_range(snrs: Sequence[float]) -> tuple[float, float] | None:
    """The SNR range of the training signals: between the smallest and the largest finite SNR
    of the run (uniform, the simulator's draw), or None (noiseless training) when it has none.

    Uniform in SNR puts more training signals near the largest SNR than near the smallest; a
    log-uniform draw would balance them but the simulator does not offer one. Noiseless test
    signals need no training signals of their own: they are the limit of the largest SNR.
    """
    finite = [s for s in snrs if math.isfinite(s)]
    return (min(finite), max(finite)) if finite else None


def noise_seed(test_seed: int, snr: float) -> int:
    """Seed of the noise added to the test set at ``snr`` (from the SNR itself, so the noise at
    one SNR does not depend on the other SNRs of the run)."""
    return derived_seed(test_seed, round(1000 * snr))


def fit_test_signals(test: SignalSet, basis: BasisSet, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit the first ``n`` test signals with :func:`scaloquant.fit.fit_spectra` (the
    per-metabolite ``simulated`` preset, spread priors included: the model the physics models
    polish with): amplitudes ``(n, M)`` and their Cramér–Rao covariance bound ``(n, M, M)``,
    columns in the order of ``test.metabolites``."""
    from .fit import fit_spectra

    result = fit_spectra(test.take(slice(0, n)).fid, basis, _reference_fit(), covariance=True)
    order = [result.index(m) for m in test.metabolites]
    cov = np.asarray(result.amplitude_covariance)[:, order][:, :, order]
    return np.asarray(result.amplitudes)[:, order], cov


def _train_regression(
    config: Any, basis: BasisSet, out_dir: Path, *, log: Callable[[str], None], **options: Any
) -> Any:
    """:func:`scaloquant.train.train_model` of one regression CNN, as a job of
    :func:`scaloquant.threads.run_in_processes` (``log`` gets a line per validation and one
    when it ends, as the physics models' training does)."""
    from lightning.pytorch.callbacks import Callback

    from .train import train_model

    class ValidationLines(Callback):
        def on_validation_end(self, trainer: Any, module: Any) -> None:
            rmse = trainer.callback_metrics.get("val/rmse")
            if not trainer.sanity_checking and rmse is not None:
                log(f"step {trainer.global_step}: val RMSE {float(rmse):.4f}")

    options.setdefault("progress", False)  # one bar per process would interleave
    result = train_model(config, basis, out_dir, callbacks=[ValidationLines()], **options)
    log(
        f"{result.steps} steps in {result.wall_time_s:.0f} s, "
        f"validation RMSE {result.best_val_rmse:.4f}"
    )
    return result


def _training_layout(
    configs: dict[str, Any], physics_configs: dict[str, Any], *, gpu: bool | None = None
) -> tuple[bool, bool]:
    """``(physics side by side, all four in processes)``: the physics models train side by
    side where :data:`SIDE_BY_SIDE` and steps cap both (a time cap would give each model fewer
    steps beside the other); all four trainings go to processes of their own where, besides,
    :data:`TRAIN_IN_PROCESSES`, there are 2 CPUs or more, steps cap the regression CNNs too and
    they train on the CPU (``gpu``: whether Lightning's ``auto`` finds a GPU; default: asks
    torch)."""
    if gpu is None:
        import torch

        mps = getattr(torch.backends, "mps", None)
        gpu = torch.cuda.is_available() or bool(mps is not None and mps.is_available())
    physics = SIDE_BY_SIDE and all(c.max_time_s is None for c in physics_configs.values())
    processes = (
        physics
        and TRAIN_IN_PROCESSES
        and available_cpus() > 1
        and all(c.max_time_s is None for c in configs.values())
        and all(
            c.accelerator == "cpu" or (c.accelerator == "auto" and not gpu)
            for c in configs.values()
        )
    )
    return physics, processes


def _configs(
    preset: str,
    seed: int | None,
    fresh_data: bool | None,
    snr_range: tuple[float, float] | None,
    uncertainty: str | None,
) -> dict[str, Any]:
    from .train import TrainConfig

    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if fresh_data is None and snr_range is not None:
        # a fixed set of noisy signals lets the network memorise their noise, and its standard
        # deviations then come out too small at low SNR (see scaloquant.train.data): noisy
        # training draws new signals every epoch unless told otherwise
        fresh_data = True
    configs = {}
    for model in MODELS:
        config = TrainConfig.preset(preset, model=model)
        simulation = {
            **config.simulation,
            "snr": None if snr_range is None else list(snr_range),
        }
        configs[model] = config.with_overrides(
            {
                "seed": seed,
                "fresh_data": fresh_data,
                "simulation": simulation,
                "uncertainty": uncertainty,
            }
        )
        if preset in CNN_STEPS_ONLY:  # with_overrides ignores None values
            configs[model] = replace(configs[model], max_time_s=None)
    return configs


def reproduce(
    preset: PresetName,
    out_dir: str | os.PathLike,
    *,
    seed: int | None = None,
    fresh_data: bool | None = None,
    n_test: int | None = None,
    snrs: Sequence[float] = (math.inf,),
    fit_n: int | None = None,
    uncertainty: Literal["none", "gaussian"] | None = None,
    n_boot: int = DEFAULT_N_BOOT,
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
    fresh_data : draw new training signals every epoch (default: the preset's choice for
        noiseless training, True when ``snrs`` makes the training noisy).
    n_test : held-out test signals (default :data:`N_TEST` of the preset).
    snrs : SNRs of the test signals, ``math.inf`` for noiseless (default: noiseless only, the
        paper); finite ones also make the training noisy (:func:`training_snr_range`).
    fit_n : test signals the classical fit estimates at each SNR, the first ones (default
        :data:`FIT_N` of the preset, at most ``n_test``); 0 leaves the fit out.
    uncertainty : the models' uncertainty head (``"gaussian"`` predicts an SD per amplitude,
        whose calibration is then reported); default: the preset's.
    n_boot : bootstrap resamples of the paired comparison.
    overwrite : see ``out_dir``.
    progress : Lightning's progress bars (None: when stderr is a terminal).
    log : called with one line per step (the CLI prints them to stderr); None: silent.
    basis : basis set (default: the embedded ISMRM 2016 basis).
    """
    # torch and Lightning load only when a run starts
    from .evaluate.encoders import encoder_comparison, parameter_errors
    from .fit.batched import CPU_CHUNK
    from .models.checkpoint import load_model
    from .models.physics_truth import default_truth
    from .simulate.dataset import drawn_parameters
    from .train import simulate_set
    from .train.physics import train_physics

    start = time.perf_counter()
    say = log or (lambda _line: None)
    snrs = check_snrs(snrs)
    snr_range = training_snr_range(snrs)
    configs = _configs(preset, seed, fresh_data, snr_range, uncertainty)
    first = configs[MODELS[0]]
    n_test = whole_number(
        "n_test (the test set's signals)", N_TEST[preset] if n_test is None else n_test, 2
    )
    fit_n = min(
        whole_number("fit_n (0: no fit)", FIT_N[preset] if fit_n is None else fit_n, 0), n_test
    )
    check_options(n_boot=n_boot)
    basis = default_basis() if basis is None else basis
    basis_name = DEFAULT_BASIS_NAME if basis is default_basis() else "given to reproduce()"
    simulation: SimulationConfig = first.simulation_config()
    test_simulation = replace(simulation, snr=None)  # noise is added per SNR below
    test_seed = derived_seed(first.seed, TEST_KEY)
    wall: dict[str, float] = {}

    with staged_directory(out_dir, overwrite=overwrite) as stage:
        say(f"simulating {n_test} test signals and the training data (seed {first.seed})")
        t0 = time.perf_counter()
        (stage / "data").mkdir()
        test_path = write_simulation(
            stage / "data" / "test.h5",
            simulate_dataset(basis, test_simulation, n_test, test_seed),
            n_signals=n_test,
            basis=basis,
            basis_name=basis_name,
            config=test_simulation.to_dict(),
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

        quantifiers: dict[str, Any] = {}
        curves: dict[str, TrainingCurve] = {}
        physics_configs = _physics_configs(preset, first.seed)
        cnn_jobs = {
            model: partial(
                _train_regression,
                config,
                basis,
                stage / "models",
                log_dir=stage / "logs",
                train_set=train,
                val_set=val,
                data_source={
                    "train": "fresh every epoch" if train is None else "simulated",
                    "val": "simulated",
                    "test": "data/test.h5",
                },
            )
            for model, config in configs.items()
        }
        physics_jobs = {
            model: partial(
                train_physics,
                config,
                basis,
                stage / "models" / f"{model}.ckpt",
                simulation_config=simulation,
            )
            for model, config in physics_configs.items()
        }
        physics_side_by_side, in_processes = _training_layout(configs, physics_configs)
        trained: dict[str, tuple[Any, float]] = {}
        if in_processes:
            say(
                f"training {', '.join([*configs, *physics_configs])} ({preset} preset), side by side"
            )
            trained = run_in_processes(
                {**cnn_jobs, **physics_jobs}, log=lambda name, line: say(f"{name}: {line}")
            )
        else:
            for model, job in cnn_jobs.items():
                say(f"training {model} ({preset} preset)")
                trained[model] = (
                    job(log=lambda line, model=model: say(f"{model}: {line}"), progress=progress),
                    0.0,
                )
            say(
                f"training {', '.join(physics_configs)} ({preset} preset, the default simulator"
                + (", side by side)" if physics_side_by_side else ")")
            )
            trained |= run_side_by_side(
                {
                    model: partial(job, log=lambda line, model=model: say(f"{model}: {line}"))
                    for model, job in physics_jobs.items()
                },
                workers=None if physics_side_by_side else 1,
            )
        for model in [*configs, *physics_configs]:
            result, _ = trained[model]
            wall[f"train_{model}"] = result.wall_time_s
            if model in configs and result.curve is not None:
                curves[model] = result.curve  # None only in the extra processes of multi-GPU runs
            quantifiers[model] = load_model(result.checkpoint_path).quantifier
        physics = quantifiers[PHYSICS_MODELS[0]]
        problem = physics.problem(deviations=False)
        true_theta, _ = default_truth(
            problem, drawn_parameters(test), test.metabolites, test_simulation.phase1_pivot_ppm
        )

        cases: list[SnrCase] = []
        encoders: dict[str, Any] = {}
        case_tests: list[SignalSet] = []
        for snr in snrs:
            label = snr_label(snr)
            seed_noise = None if math.isinf(snr) else noise_seed(test_seed, snr)
            case_test = add_noise(test, basis, snr, seed_noise)
            predictions: dict[str, np.ndarray] = {}
            sds: dict[str, np.ndarray] = {}
            network_sds: dict[str, np.ndarray] = {}
            errors = {}
            for model in MODELS:
                say(f"predicting the test set ({_snr_words(label)}) with {model}")
                t0 = time.perf_counter()
                quantifier = quantifiers[model]
                predictions[model], sd = predict_test_set(quantifier, case_test, name=model)
                if getattr(quantifier, "has_uncertainty", False):
                    sds[model] = sd
                _add(wall, f"predict_{model}", time.perf_counter() - t0)
            # the physics models' polish and the fit, side by side (one thread each on 2 CPUs;
            # SIDE_BY_SIDE): one pass per physics model gives the amplitudes, both SDs and the
            # network's parameters; each in the polish's own chunks of CPU_CHUNK spectra (the
            # same chunks as one call, so the same numbers), so that the jobs share the CPUs
            # evenly (the scalogram model's polish took twice the spectrum model's)
            jobs: dict[Any, Callable[[], Any]] = {}
            for model in PHYSICS_MODELS:
                for row in range(0, n_test, CPU_CHUNK):
                    part = case_test.take(slice(row, row + CPU_CHUNK))
                    jobs[model, row] = partial(
                        predict_physics_test_set, quantifiers[model], part, name=model
                    )
                if fit_n and model == PHYSICS_MODELS[0]:  # the longer job first
                    jobs[FIT] = partial(fit_test_signals, case_test, basis, fit_n)
            say(
                f"predicting the test set ({_snr_words(label)}) with "
                + ", ".join(PHYSICS_MODELS)
                + (f" and fitting its first {fit_n} signals" if fit_n else "")
                + (", side by side" if SIDE_BY_SIDE else "")
            )
            done = run_side_by_side(jobs, workers=None if SIDE_BY_SIDE else 1)
            for model in PHYSICS_MODELS:
                parts = [done[key] for key in jobs if isinstance(key, tuple) and key[0] == model]
                fields = zip(*(result for result, _ in parts), strict=True)
                # a column the prediction leaves out (PhysicsPrediction.flexible without its
                # screen) stays None
                p = parts[0][0]._make(
                    None if column[0] is None else np.concatenate(column) for column in fields
                )
                spent = sum(seconds for _, seconds in parts)
                predictions[model], sds[model] = p.amplitudes, p.sd
                network_sds[model] = p.network_sd
                errors[model] = parameter_errors(
                    problem.slices(), p.network_theta, true_theta, lorentzian=problem.lorentzian
                )
                _add(wall, f"predict_{model}", spent)
            encoders[label] = encoder_comparison(
                errors[PHYSICS_MODELS[0]],
                errors[PHYSICS_MODELS[1]],
                problem.group_names,
                a=PHYSICS_MODELS[0],
                b=PHYSICS_MODELS[1],
                bootstrap_seed=derived_seed(first.seed, BOOTSTRAP_KEY),
                n_boot=n_boot,
            )
            partial_predictions: dict[str, np.ndarray] = {}
            covariance = None
            if fit_n:
                (partial_predictions[FIT], covariance), wall[f"fit_snr_{label}"] = done[FIT]
            cases.append(
                SnrCase(
                    snr=snr,
                    truth=test.amplitudes,
                    predictions=predictions,
                    partial=partial_predictions,
                    crlb_covariance=covariance,
                    sds=sds,
                    noise_seed=seed_noise,
                    network_sds=network_sds,
                )
            )
            case_tests.append(case_test)

        say("evaluating")
        targets = val.amplitudes if train is None else train.amplitudes
        resolved = {
            "preset": preset,
            "seed": first.seed,
            "fresh_data": first.fresh_data,
            "n_test": n_test,
            "test_seed": test_seed,
            "test_data": "data/test.h5",
            "snrs": [snr_label(s) for s in snrs],
            "training_snr_range": snr_range,
            "noise_seeds": {c.label: c.noise_seed for c in cases},
            "fit": {"n_signals": fit_n, "config": _fit_config()} if fit_n else None,
            "bootstrap": {"seed": derived_seed(first.seed, BOOTSTRAP_KEY), "n_boot": n_boot},
            "basis": basis_name,
            "train": {model: config.to_dict() for model, config in configs.items()},
            "train_physics": {
                model: {**config.to_dict(), "simulation_config": simulation.to_dict()}
                for model, config in physics_configs.items()
            },
        }
        n_cases = len(cases)
        speed = {
            model: n_test * n_cases / wall[f"predict_{model}"]
            for model in quantifiers
            if wall[f"predict_{model}"] > 0
        }
        fit_s = sum(wall.get(f"fit_snr_{c.label}", 0.0) for c in cases)
        if fit_n and fit_s > 0:
            speed[FIT] = fit_n * n_cases / fit_s
        extra = {
            "encoders": _encoder_block(quantifiers, basis, test, encoders),
            "speed_spectra_per_s": speed,
        }
        evaluation = evaluate_snr_cases(
            cases,
            test.metabolites,
            bootstrap_seed=resolved["bootstrap"]["seed"],
            config=resolved,
            wall_times_s=wall,
            started_at=start,
            title=f"scaloquant reproduce --preset {preset}: scalogram CNN vs spectrum CNN, "
            "and their physics-head models" + (" vs the fit" if fit_n else ""),
            context=_context(first, train is None, n_test, test_seed, snrs, snr_range, fit_n),
            n_boot=n_boot,
            mean_predictor=targets.mean(axis=0),
            curves=curves,
            # the rebuilt signal of Fig. 2 takes every parameter but the amplitudes from the
            # truth: it describes the regression CNNs, not the physics models
            example=signal_example(
                basis, case_tests[0], {m: cases[0].predictions[m] for m in MODELS}
            ),
            pairs=[MODELS, PHYSICS_MODELS],
            extra=extra,
        )
        doc = write_evaluation(evaluation, stage)
    return ReproduceResult(out_dir=Path(out_dir), evaluation=evaluation, metrics=doc)


def _physics_configs(preset: str, seed: int) -> dict[str, Any]:
    """The physics models' training settings: the physics preset of the same name on the
    default simulator, with the run's seed, the step cap of :data:`PHYSICS_TRAIN_STEPS` (no
    time cap then) or the time cap of :data:`PHYSICS_TRAIN_S`, and the polish of
    :data:`PHYSICS_POLISH`."""
    from .train.physics import PhysicsTrainConfig

    cap, polish = PHYSICS_TRAIN_S[preset], PHYSICS_POLISH[preset]
    steps = PHYSICS_TRAIN_STEPS[preset]
    configs = {}
    for model in PHYSICS_MODELS:
        overrides: dict[str, Any] = {"simulation": "default", "seed": int(seed)}
        if steps is not None:
            overrides |= {"max_steps": steps[model], "max_time_s": None}
        elif cap is not None:
            overrides["max_time_s"] = cap
        if polish is not None:
            overrides["polish_iterations"] = polish
        configs[model] = PhysicsTrainConfig.preset(preset, model=model, **overrides)
    return configs


def _encoder_block(
    quantifiers: dict[str, Any], basis: BasisSet, test: SignalSet, by_snr: dict[str, Any]
) -> dict[str, Any]:
    """``encoders`` of ``metrics.json``: the comparison per SNR, the encoders' scalogram
    channels beside the paper's, and what each channel mode cannot see, measured on the first
    test signal (:func:`~scaloquant.evaluate.encoders.channel_blindness`)."""
    from .evaluate.encoders import channel_blindness

    a, b = PHYSICS_MODELS
    settings = dict(quantifiers[a].config.scalogram)
    channels = {
        a: settings["channels"],
        "scalogram_cnn": quantifiers["scalogram_cnn"].config.scalogram["channels"],
    }
    blind = channel_blindness(test.fids[0], settings, basis.dwell_time_s)
    return {
        "a": a,
        "b": b,
        "channels": channels,
        "channel_blindness": blind,
        "blind_below": BLIND_BELOW,
        "by_snr": by_snr,
    }


def _add(wall: dict[str, float], key: str, seconds: float) -> None:
    wall[key] = wall.get(key, 0.0) + seconds


def _snr_words(label: str) -> str:
    return "noiseless" if label == "inf" else f"SNR {label}"


def _reference_fit():
    from .fit.config import FIT_PRESETS

    return FIT_PRESETS["simulated"]


def _fit_config() -> dict[str, Any]:
    return _reference_fit().to_dict()


def _context(
    first: Any,
    fresh: bool,
    n_test: int,
    test_seed: int,
    snrs: Sequence[float],
    snr_range: tuple[float, float] | None,
    fit_n: int,
) -> str:
    """The first paragraph of the report: what was trained and tested, and on which signals."""
    training = "drawn afresh every epoch" if fresh else f"{first.n_train} fixed signals"
    if snr_range is None:
        noise = "noiseless, as in the paper"
    elif snr_range[0] == snr_range[1]:
        noise = f"with noise at SNR {snr_range[0]:g}"
    else:
        noise = f"with noise at an SNR drawn uniformly in [{snr_range[0]:g}, {snr_range[1]:g}]"
    levels = ", ".join(_snr_words(snr_label(s)) for s in snrs)
    # 'with seeded noise added' only where a level has noise (--preset tiny tests noiseless
    # alone: 'at: noiseless (the same signals with seeded noise added)' said both)
    at = (
        f", at: {levels} (the same signals with seeded noise added)"
        if any(np.isfinite(s) for s in snrs)
        else ""
    )
    text = (
        f"Both models were trained on the same simulated signals (training: {training}, "
        f"{noise}; validation: {first.n_val} signals; seed {first.seed}) and evaluated on "
        f"{n_test} held-out test signals (`data/test.h5`, noiseless, seed {test_seed}){at}."
    )
    if fit_n:
        text += (
            f" The classical fit (`scaloquant.fit`, variable projection with Cramér–Rao bounds)"
            f" estimated the first {fit_n} test signals at each SNR; it takes no part in the "
            "paired comparison of the models, which uses every test signal."
        )
    text += (
        " The physics-head models (scalogram_physics, spectrum_physics: the same two CNNs "
        "predicting the fit's nonlinear parameters, amplitudes by non-negative least squares, "
        "then the fit's polish) were trained on fresh signals of the same simulator and SNR "
        "range, with the same seed for both."
    )
    if SIDE_BY_SIDE:
        text += (
            " The physics models' estimates and the fit of each SNR ran side by side (a thread"
            " each, torch's threads shared out among them), so each one's speed was measured"
            " beside the others."
        )
    text += (
        f" Results before the SNR section are at the first SNR ({_snr_words(snr_label(snrs[0]))})."
        " The baseline row predicts the mean of the training targets"
        + (" (here the validation targets, as training data were drawn afresh)." if fresh else ".")
    )
    return text
