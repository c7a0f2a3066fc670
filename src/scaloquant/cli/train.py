"""``scaloquant train``: train one CNN and write ``DIR/models/<model>.ckpt``, ``DIR/logs/<model>/``
and ``DIR/train_config.yaml`` (the layout of ``scaloquant reproduce``).

Settings come from the preset, then ``--config FILE`` (YAML, any ``TrainConfig`` field), then
the flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from .. import __version__
from ..errors import ConfigError, InputFileError
from ..io import default_basis
from ..io.atomic import check_writable, write_text_atomic
from ..models.quantifier import MODEL_KINDS
from ..train import (
    PRESETS,
    TrainConfig,
    is_launching_process,
    read_signal_file,
    split_signals,
    train_model,
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the scalogram CNN or the spectrum CNN",
        description="Train one CNN on simulated signals (or a simulation file) and save a "
        "checkpoint that carries its input transform and normalisation.",
    )
    # choices are checked by the library, so a wrong name gets scaloquant's one-line error
    p.add_argument(
        "--model",
        default="scalogram_cnn",
        metavar="{" + ",".join(MODEL_KINDS) + "}",
        help="which network (default: scalogram_cnn)",
    )
    p.add_argument(
        "--preset",
        default="quick",
        metavar="{" + ",".join(PRESETS) + "}",
        help="settings to start from (default: quick)",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML file of TrainConfig fields overriding the preset",
    )
    p.add_argument(
        "--data",
        type=Path,
        metavar="SIM.h5",
        help="train on this simulation file instead of simulating (implies --no-fresh-data)",
    )
    p.add_argument(
        "--val-data",
        type=Path,
        metavar="SIM.h5",
        help="validation file (default: a seeded 20%% split of --data, or simulated)",
    )
    p.add_argument(
        "--fresh-data",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw new training signals every epoch (default: the preset's choice)",
    )
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--max-epochs",
        type=int,
        help="the cpu and quick presets also cap the wall time (max_time_s; change it with --config)",
    )
    p.add_argument("--lr", type=float, dest="learning_rate", help="learning rate")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--devices", help="number of devices or 'auto'")
    p.add_argument("--accelerator", help="cpu, gpu, auto...")
    p.add_argument("--strategy", help="e.g. ddp for multi-GPU/multi-node")
    p.add_argument("--num-nodes", type=int)
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its last checkpoint"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(handler=handle)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputFileError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise InputFileError(
            f"config file {path} is not valid YAML ({type(err).__name__}); fix it"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of TrainConfig fields")
    return data


def _devices(text: str | None) -> int | str | None:
    if text is None:
        return None
    return int(text) if text.strip().isdigit() else text


def build_config(args: argparse.Namespace) -> TrainConfig:
    """Preset, then ``--config``, then flags."""
    config = TrainConfig.preset(args.preset, model=args.model)
    if args.config is not None:
        overrides = _read_yaml(args.config)
        if overrides.get("model", args.model) != args.model:
            raise ConfigError(
                f"{args.config} sets model {overrides['model']!r} but --model is "
                f"{args.model!r}; make them agree"
            )
        config = config.with_overrides(overrides)
    fresh = args.fresh_data
    if args.data is not None:
        if fresh:
            raise ConfigError("--fresh-data draws its own signals; drop it or drop --data")
        fresh = False
    return config.with_overrides(
        {
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


def handle(args: argparse.Namespace) -> int:
    config = build_config(args)
    out: Path = args.out
    config_path = out / "train_config.yaml"
    if is_launching_process():
        out.mkdir(parents=True, exist_ok=True)
        check_writable(config_path, overwrite=args.overwrite)
    basis = default_basis()
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
    if not result.is_global_zero:
        return 0
    resolved = {"scaloquant_version": __version__, "data": source, "train": config.to_dict()}
    write_text_atomic(
        config_path, yaml.safe_dump(resolved, sort_keys=False), overwrite=args.overwrite
    )
    print(
        f"{config.model}: best val loss {result.best_val_loss:.4g}, val RMSE "
        f"{result.best_val_rmse:.4g} after {result.steps} steps ({result.epochs} epochs, "
        f"{result.wall_time_s:.0f} s); checkpoint {result.checkpoint_path}"
    )
    return 0
