"""``scaloquant train``: train one CNN and write ``DIR/models/<model>.ckpt``, ``DIR/logs/<model>/``
and ``DIR/train_config.yaml`` (the layout of ``scaloquant reproduce``).

Settings come from the preset, then ``--config FILE`` (YAML, any ``TrainConfig`` field), then
the flags. The realism flags (``--snr``, ``--phase0-range``, ``--phase1-range``, ``--baseline``)
change the simulation of the training *and* validation signals, so that early stopping and the
uncertainty calibration see data drawn the same way as the training data, and they switch on
fresh training data (unless ``--no-fresh-data``): a network memorises the noise of a fixed noisy
set (``cpu`` preset spectrum CNN, SNR 8-120: RMSE at SNR < 12 of 0.139 on its training signals
against 0.202 on new ones), so the variance head, which learns from training residuals, would
learn that noise hardly matters (95 % intervals covering 76 % at SNR 10).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from .._words import counted
from ..errors import ConfigError, OutputExistsError, OutputWriteError, os_error_message
from ..presets import MODEL_KINDS, PHYSICS_KINDS, PRESETS, SIMULATIONS, UNCERTAINTY_KINDS
from ._common import (
    declare_flag_keys,
    embedded_basis,
    number,
    path_value,
    whole_number,
)

if TYPE_CHECKING:  # torch and the trainer (Lightning) take seconds: a run loads them, not
    # --help nor a refusal of the flags and paths (the handler checks them first)
    from ..train import TrainConfig
    from ..train.physics import PhysicsTrainConfig

#: The ``[MIN, MAX]`` realism flags: (flag, SimulationConfig key, help).
_RANGE_FLAGS = (
    (
        "--snr",
        "snr",
        "add noise at an SNR drawn uniformly from [MIN, MAX] (reference peak height over the "
        "real spectral noise sd; MIN = MAX for one SNR)",
    ),
    ("--phase0-range", "phase0_range_deg", "zero-order phase in degrees"),
    (
        "--phase1-range",
        "phase1_range_deg_per_ppm",
        "first-order phase in degrees per ppm (zero at 4.65 ppm)",
    ),
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a CNN (scalogram or spectrum) or a physics-head model",
        description="Train one CNN on simulated signals (or a simulation file) and save a "
        "checkpoint that carries its input transform and normalisation.",
    )
    p.add_argument(
        "--model",
        default="scalogram_cnn",
        choices=(*MODEL_KINDS, *PHYSICS_KINDS),
        help="which network (default: scalogram_cnn); the *_physics models predict the fit's "
        "nonlinear parameters and solve the amplitudes (scaloquant.models.physics)",
    )
    physics = p.add_argument_group("physics-head models (spectrum_physics, scalogram_physics)")
    physics.add_argument(
        "--basis",
        type=path_value,
        metavar="FILE",
        help="basis set to train for (any format quantify reads; default: the embedded one)",
    )
    physics.add_argument(
        "--simulation",
        choices=SIMULATIONS,
        help="training signals: the invivo preset (docs/invivo-prior.md; default) or the "
        "paper's default simulator (Eq. 1, a damping and a shift per metabolite; the model is "
        "then the fit's per-metabolite one; --snr, --phase0-range, --phase1-range and "
        "--baseline change it)",
    )
    physics.add_argument(
        "--grid-from",
        type=path_value,
        metavar="DATA",
        help="train on the acquisition grid of this data file (points, dwell time, field; a "
        "file that records them, e.g. NIfTI-MRS), the basis resampled to it as the fit does "
        "(default: the basis' own grid)",
    )
    max_steps = physics.add_argument(
        "--max-steps",
        type=whole_number,
        help="optimiser steps (one fresh batch of signals each; default: the preset's); the "
        "quick and cpu presets also cap the wall time (max_time_s; change it with --config)",
    )
    polish_iterations = physics.add_argument(
        "--polish-iterations",
        type=whole_number,
        help="Levenberg-Marquardt iterations after the network, stored as the model's default "
        "(default: 5 with --simulation invivo, 20 with default)",
    )
    p.add_argument(
        "--preset",
        default="quick",
        choices=PRESETS,
        help="settings to start from (default: quick)",
    )
    p.add_argument("--out", required=True, type=path_value, metavar="DIR", help="output folder")
    p.add_argument(
        "--config",
        type=path_value,
        metavar="FILE",
        help="YAML file of TrainConfig fields (PhysicsTrainConfig for the *_physics models) "
        "overriding the preset",
    )
    p.add_argument(
        "--data",
        type=path_value,
        metavar="SIM.h5",
        help="train on this simulation file instead of simulating (implies --no-fresh-data)",
    )
    p.add_argument(
        "--val-data",
        type=path_value,
        metavar="SIM.h5",
        help="validation file (default: a seeded 20%% split of --data, or simulated)",
    )
    p.add_argument(
        "--fresh-data",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw new training signals every epoch (default: the preset's choice)",
    )
    p.add_argument(
        "--uncertainty",
        choices=UNCERTAINTY_KINDS,
        help="per-amplitude standard deviations: gaussian (a log-variance head, calibrated on "
        "the validation set; the amplitudes are the same as without) or none (default: gaussian)",
    )
    realism = p.add_argument_group(
        "simulated training and validation signals (override the preset's noiseless, "
        "phase-free simulation; they imply --fresh-data unless --no-fresh-data)"
    )
    ranges = [
        realism.add_argument(
            flag, dest=key, type=number, nargs=2, metavar=("MIN", "MAX"), help=what
        )
        for flag, key, what in _RANGE_FLAGS
    ]
    realism.add_argument(
        "--baseline", action="store_true", help="add a smooth random baseline (the default one)"
    )
    seed = p.add_argument(
        "--seed", type=whole_number, help="the root of the run's random streams (default: 0)"
    )
    max_epochs = p.add_argument(
        "--max-epochs",
        type=whole_number,
        help="CNNs: epochs at most (default: the preset's); the cpu and quick presets also cap "
        "the wall time (max_time_s; change it with --config)",
    )
    lr = p.add_argument(
        "--lr", type=number, dest="learning_rate", help="learning rate (default: the preset's)"
    )
    batch_size = p.add_argument(
        "--batch-size", type=whole_number, help="signals per optimiser step (default: the preset's)"
    )
    p.add_argument("--devices", help="number of devices or 'auto'")
    p.add_argument("--accelerator", help="cpu, gpu, auto...")
    p.add_argument("--strategy", help="e.g. ddp for multi-GPU/multi-node")
    num_nodes = p.add_argument(
        "--num-nodes", type=whole_number, help="machines of a multi-node run (default: 1)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its last checkpoint"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    declare_flag_keys(
        p,
        {
            **{key: flag for flag, key, _ in _RANGE_FLAGS},
            "seed": "--seed",
            "max_epochs": "--max-epochs",
            "learning_rate": "--lr",
            "batch_size": "--batch-size",
            "num_nodes": "--num-nodes",
            "max_steps": "--max-steps",
            "polish_iterations": "--polish-iterations",
        },
        [*ranges, seed, max_epochs, lr, batch_size, num_nodes, max_steps, polish_iterations],
    )
    p.set_defaults(handler=handle, interrupt_hint=interrupt_hint)


def _last_checkpoint(args: argparse.Namespace) -> Path:
    """Where ``train_model`` keeps the checkpoint an interrupted run resumes from."""
    return args.out / "models" / f".{args.model}.partial" / "last.ckpt"


def interrupt_hint(args: argparse.Namespace) -> str:
    """What an interruption leaves: a checkpoint to continue from, or nothing."""
    last = _last_checkpoint(args)
    if last.is_file():
        return (
            f"the final outputs were not written; the last checkpoint {last} is kept: run the "
            "same command with --resume to continue from it"
        )
    return "no output was written (no checkpoint had been saved yet)"


def _devices(text: str | None) -> int | str | None:
    if text is None:
        return None
    return int(text) if text.strip().isdigit() else text


def simulation_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Simulation keys set by the realism flags."""
    overrides = {
        key: list(getattr(args, key))
        for _, key, _ in _RANGE_FLAGS
        if getattr(args, key) is not None
    }
    if args.baseline:
        from ..simulate import BaselineConfig

        overrides["baseline"] = BaselineConfig().to_dict()
    return overrides


def build_config(args: argparse.Namespace) -> TrainConfig:
    """Preset, then ``--config``, then flags."""
    from ..io.config import read_mapping

    overrides = dict(read_mapping(args.config)) if args.config is not None else {}
    if overrides.get("model", args.model) != args.model:  # refused before torch is imported
        raise ConfigError(
            f"{args.config} sets model {overrides['model']!r} but --model is "
            f"{args.model!r}; make them agree"
        )
    from ..train import TrainConfig

    config = TrainConfig.preset(args.preset, model=args.model)
    if args.config is not None:
        config = config.with_overrides(overrides)
    fresh = args.fresh_data
    simulation = simulation_overrides(args)
    if simulation and fresh is None and args.data is None:
        fresh = True  # see the module docstring: fixed noisy sets are memorised
    if args.data is not None:
        if fresh:
            raise ConfigError("--fresh-data draws its own signals; drop it or drop --data")
        if simulation:
            raise ConfigError(
                "--snr, --phase0-range, --phase1-range and --baseline change simulated signals; "
                "drop them with --data (simulate the file with them instead)"
            )
        fresh = False
    return config.with_overrides(
        {
            "simulation": {**config.simulation, **simulation} if simulation else None,
            "uncertainty": args.uncertainty,
            "seed": args.seed,
            "max_epochs": args.max_epochs,
            "learning_rate": args.learning_rate,
            "batch_size": args.batch_size,
            "devices": _devices(args.devices),
            "accelerator": args.accelerator,
            "strategy": args.strategy,
            "num_nodes": args.num_nodes,
            "fresh_data": fresh,
        }
    )


def _folders(out: Path) -> set[Path]:
    """``out``, the folders under it and its ancestors that exist now."""
    found = {p for p in (out, *out.parents) if p.is_dir()}
    if out.is_dir():
        found.update(p for p in out.rglob("*") if p.is_dir())
    return found


def _remove_new_empty_folders(out: Path, before: set[Path]) -> None:
    """After a failure: remove the folders this run made and left empty (deepest first)."""
    made = sorted(_folders(out) - before, key=lambda p: len(p.parts), reverse=True)
    for folder in made:
        with contextlib.suppress(OSError):  # never hide the error that got us here
            if not any(folder.iterdir()):
                folder.rmdir()


def require_paths(args: argparse.Namespace) -> None:
    """Refuse, before the trainer is imported (Lightning takes seconds), a path of ``args`` that
    does not exist; the readers check the rest (formats, contents). Only the paths of flags the
    model takes: another's flag is refused as such (``_train``, :func:`physics_config`)."""
    from ..paths import SIMULATION_HINT, require_existing, require_file

    physics = args.model in PHYSICS_KINDS
    for path in filter(None, (args.basis, args.grid_from) if physics else ()):
        require_existing(path)
    for path in filter(None, () if physics else (args.data, args.val_data)):
        require_file(path, hint=SIMULATION_HINT)
    if args.config is not None:
        require_file(args.config, "config file ")


def handle(args: argparse.Namespace) -> int:
    """Refuse what can be refused before torch and the trainer are imported (seconds): the
    paths, the output folder, the flags of the other kind of model and ``--config``'s model;
    then train."""
    from ..threads import is_launching_process  # no torch: a refusal stays quick

    require_paths(args)
    if args.out.exists() and not args.out.is_dir():
        # else "File exists" from the first mkdir under it, after the imports and the basis
        raise OutputExistsError(f"{args.out} is a file; give a folder for the outputs")
    # a place that cannot be written (it was 'No such file or directory (/proc/x)' from the
    # first mkdir) and a folder that holds files (they were written beside, session 36) refused
    # as the other commands refuse them, before the imports and the basis; --resume continues
    # in the folder of the interrupted run, and a multi-process run's other processes find
    # the folder the first one made
    _check_out(args, resume=args.resume or not is_launching_process())
    before = _folders(args.out)
    try:
        return _train(args)
    except BaseException:
        if is_launching_process():
            _remove_new_empty_folders(args.out, before)
        raise


def _check_out(args: argparse.Namespace, *, resume: bool) -> None:
    """:func:`~scaloquant.io.atomic.check_output_dir` of ``--out``: a folder that holds files
    is refused unless ``--overwrite`` or ``resume``; where it holds an interrupted run's last
    checkpoint the refusal also names ``--resume``."""
    from ..io.atomic import check_output_dir

    try:
        check_output_dir(args.out, overwrite=args.overwrite or resume)
    except OutputExistsError as err:
        last = _last_checkpoint(args)
        if not last.is_file():
            raise
        raise OutputExistsError(
            f"{err}; or pass --resume to continue the interrupted run from {last}"
        ) from None


#: Flags of the regression CNNs' trainer that a physics-head model does not take.
_REGRESSION_ONLY = (
    ("data", "--data"),
    ("val_data", "--val-data"),
    ("fresh_data", "--fresh-data"),
    ("uncertainty", "--uncertainty"),
    ("snr", "--snr"),
    ("phase0_range_deg", "--phase0-range"),
    ("phase1_range_deg_per_ppm", "--phase1-range"),
    ("max_epochs", "--max-epochs"),
    ("devices", "--devices"),
    ("accelerator", "--accelerator"),
    ("strategy", "--strategy"),
    ("num_nodes", "--num-nodes"),
)


def _train(args: argparse.Namespace) -> int:
    if args.model in PHYSICS_KINDS:
        return _train_physics(args)
    for given, flag in (
        (args.basis, "--basis"),
        (args.grid_from, "--grid-from"),
        (args.simulation, "--simulation"),
        (args.max_steps, "--max-steps"),
        (args.polish_iterations, "--polish-iterations"),
    ):
        if given is not None:
            raise ConfigError(
                f"{flag} is for the physics-head models (--model spectrum_physics or "
                "scalogram_physics); the regression CNNs train on the paper's simulator"
            )
    config = build_config(args)
    import yaml

    from ..io.atomic import check_writable, write_text_atomic
    from ..models.checkpoint import read_checkpoint
    from ..train import (
        check_trainer_settings,
        is_launching_process,
        read_signal_file,
        split_signals,
        train_model,
    )

    check_trainer_settings(config)  # before the output folder is made
    out: Path = args.out
    config_path = out / "train_config.yaml"
    if is_launching_process():
        out.mkdir(parents=True, exist_ok=True)
        check_writable(config_path, overwrite=args.overwrite)
    basis, _ = embedded_basis()  # the regression CNNs train on the paper's basis only
    train_set = val_set = None
    source: dict[str, Any] = {"train": "simulated"}
    if args.data is not None:
        signals = read_signal_file(args.data, basis)
        source = {"train": str(args.data)}
        if args.val_data is None:
            train_set, val_set = split_signals(
                signals, config.n_val / (config.n_train + config.n_val), config.seed
            )
            source["val"] = f"seeded split of {args.data}"
        else:
            train_set = signals
    if args.val_data is not None:
        val_set = read_signal_file(args.val_data, basis)
        source["val"] = str(args.val_data)
    try:
        result = train_model(
            config,
            basis,
            out / "models",
            log_dir=out / "logs",
            train_set=train_set,
            val_set=val_set,
            resume=args.resume,
            overwrite=args.overwrite,
            data_source=source,
        )
    except OSError as err:
        last = _last_checkpoint(args)
        kept = (
            f"; the last checkpoint {last} is kept: once that is fixed, run the same command "
            "with --resume"
            if last.is_file()
            else ""
        )
        raise OutputWriteError(os_error_message(err) + kept) from None
    if not result.is_global_zero:
        return 0
    resolved = {"scaloquant_version": __version__, "data": source, "train": config.to_dict()}
    write_text_atomic(
        config_path, yaml.safe_dump(resolved, sort_keys=False), overwrite=args.overwrite
    )
    print(
        f"{config.model}: best val loss {result.best_val_loss:.4g}, val RMSE "
        f"{result.best_val_rmse:.4g} after {counted(result.steps, 'step')} "
        f"({counted(result.epochs, 'epoch')}, "
        f"{result.wall_time_s:.0f} s); checkpoint {result.checkpoint_path}"
    )
    calibration = read_checkpoint(result.checkpoint_path)["scaloquant"].get(
        "uncertainty_calibration"
    )
    if calibration:
        factors = calibration["factors"].values()
        print(
            f"standard deviations calibrated on {calibration['n_signals']} validation signals "
            f"({100 * calibration['level']:g}% intervals; factors {min(factors):.3g} to "
            f"{max(factors):.3g})"
        )
    return 0


#: Realism flags that a physics-head model takes with ``--simulation default``.
_DEFAULT_SIMULATION_FLAGS = ("snr", "phase0_range_deg", "phase1_range_deg_per_ppm")


def physics_config(args: argparse.Namespace) -> PhysicsTrainConfig:
    """The physics trainer's settings: preset, then ``--config``, then flags; the flags that do
    not apply refused before torch is imported."""
    from ..io.config import read_mapping

    default = args.simulation == "default"
    used = [
        flag
        for key, flag in _REGRESSION_ONLY
        if getattr(args, key, None) not in (None, False)
        and not (default and key in _DEFAULT_SIMULATION_FLAGS)
    ]
    used += ["--baseline"] if args.baseline and not default else []
    used += ["--resume"] if args.resume else []
    if used:
        raise ConfigError(
            f"{', '.join(used)} {'does' if len(used) == 1 else 'do'} not apply to "
            f"{args.model} (it trains on fresh {args.simulation or 'invivo'} signals); drop "
            f"{'it' if len(used) == 1 else 'them'}"
        )
    overrides = dict(read_mapping(args.config)) if args.config is not None else {}
    flags = {
        "seed": args.seed,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "max_steps": args.max_steps,
        "polish_iterations": args.polish_iterations,
        "simulation": args.simulation,
    }
    overrides |= {k: v for k, v in flags.items() if v is not None}
    overrides["model"] = args.model
    from ..train.physics import PhysicsTrainConfig

    return PhysicsTrainConfig.preset(args.preset, **overrides)


def _train_physics(args: argparse.Namespace) -> int:
    config = physics_config(args)
    import yaml

    from ..io.atomic import check_writable, write_text_atomic
    from ..simulate import SimulationConfig
    from ..train.physics import train_physics
    from ._grid import check_grid_file, read_grid_file
    from ._spectra import user_basis_or_default

    out: Path = args.out
    checkpoint = out / "models" / f"{args.model}.ckpt"
    config_path = out / "train_config.yaml"
    basis, _ = user_basis_or_default(args.basis)
    grid_fid = None
    if args.grid_from is not None:
        grid_fid = read_grid_file(args.grid_from, command="train")
        # train takes no acquisition flags: a wrong header is mended by rewriting the file
        check_grid_file(
            grid_fid,
            basis,
            path=args.grid_from,
            basis_path=args.basis,
            field_fix="a --grid-from file rewritten by scaloquant convert with "
            "--spectrometer-freq-mhz and --override-header",
            why="quantify would refuse this file with the model",
            remedy="train",
        )
    acquisition = None if grid_fid is None else grid_fid.acquisition
    checkpoint.parent.mkdir(parents=True, exist_ok=True)  # removed again if left empty
    for path in (checkpoint, config_path):
        check_writable(path, overwrite=args.overwrite)
    simulation_config = None
    if config.simulation == "default":
        simulation_config = SimulationConfig.from_dict(simulation_overrides(args))
    result = train_physics(
        config, basis, checkpoint, acquisition=acquisition, simulation_config=simulation_config
    )
    grid = acquisition or basis.acquisition
    source = {
        "train": f"simulated ({config.simulation})",
        "basis": str(args.basis or "embedded"),
        "grid": str(args.grid_from or "the basis'"),
        # the grid itself and how the basis was brought to it, which only the terminal said
        "acquisition": grid.to_dict(),
        "basis_conversions": list(result.conversions),
    }
    if simulation_config is not None:
        source["simulation"] = simulation_config.to_dict()
    resolved = {"scaloquant_version": __version__, "data": source, "train": config.to_dict()}
    write_text_atomic(
        config_path, yaml.safe_dump(resolved, sort_keys=False), overwrite=args.overwrite
    )
    for sentence in result.conversions:
        print(f"basis: {sentence}")
    print(
        f"{args.model}: best val loss {result.best_val_loss:.4g} after {result.steps} steps "
        f"({result.wall_time_s:.0f} s); checkpoint {result.checkpoint_path}"
    )
    return 0
