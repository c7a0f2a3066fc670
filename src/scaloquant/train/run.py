"""``train_model``: one training run with Lightning, from settings to an exported checkpoint.

Files (``model`` is ``config.model``)
-------------------------------------
* ``out_dir/<model>.ckpt``: the checkpoint with the best validation loss, written atomically at
  the end (:mod:`scaloquant.train.checkpoint` lists its contents); a model with uncertainty gets
  its calibration factors fitted on the validation set first.
* ``log_dir/<model>/metrics.csv``: Lightning's CSV log (``train/loss`` per logged step,
  ``val/loss`` and ``val/rmse`` per validation), copied atomically at the end.
* ``log_dir/<model>/data_streams.json``: per rank, the seed key of its data stream and a
  fingerprint of the first batch of every epoch (shows that ranks drew different data).
* ``out_dir/.<model>.partial/``: Lightning's working folder (``last.ckpt``, ``best.ckpt``, the live
  CSV log of each session). It survives an interruption so that ``resume=True`` continues from ``last.ckpt``; it is
  removed after a successful run.

Resuming: ``last.ckpt`` is written at every validation, so an interruption loses at most
``val_check_interval`` steps. Weights, optimiser, schedule, step and epoch counters and the
early-stopping state are restored; a run resumed in the middle of an epoch starts that epoch's
data over (Lightning warns about it), so it is not bit-identical to an uninterrupted run unless
the checkpoint fell on an epoch boundary (``val_check_interval`` a multiple of the epoch length).

Multi-process runs (``strategy="ddp"``): Lightning re-runs the command in one process per extra
device. Only the launching process checks and writes outputs; every process builds the same data
and normalisation from the same seed, and draws its own fresh batches.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import logging
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from ..errors import ConfigError, IncompatibleDataError, InputFileError, OutputExistsError
from ..io.atomic import atomic_path, check_writable, write_text_atomic
from ..io.training_log import TrainingCurve, read_log_rows, training_curve
from ..models.checkpoint import CHECKPOINT_KEY
from ..models.quantifier import Quantifier
from ..seeds import FRESH_KEY, NORM_KEY, TRAIN_KEY, VAL_KEY, seed_sequence
from ..threads import is_launching_process
from ..types import BasisSet, SignalSet
from .checkpoint import AtomicCheckpointIO, calibrate_checkpoint, checkpoint_metadata
from .config import TrainConfig
from .data import (
    SignalDataModule,
    draw_signals,
    for_training,
    network_inputs,
    simulate_set,
)
from .module import QuantifierModule

#: Training signals used to fit the normalisation (enough for stable means and deviations).
N_NORMALISATION = 2000
#: Largest size of the network inputs of the training and validation sets that
#: :func:`train_model` computes once and keeps instead of recomputing them in every epoch
#: (:class:`~scaloquant.train.data.SignalDataModule`'s ``inputs``; fixed sets on the CPU only):
#: the ``quick`` scalogram CNN's take 442 MB, the ``cpu`` preset's (2 x 128 x 384, 10,000
#: signals) 3.9 GB and stay recomputed.
INPUT_CACHE_BYTES = 1 << 30


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_model`.

    ``best_val_loss``/``best_val_rmse`` are those of the exported checkpoint; ``wall_time_s`` covers
    data preparation and training in this call; ``epochs``/``steps`` count completed epochs and
    optimizer steps (including those before a resume). ``is_global_zero`` is False in the extra
    processes of a multi-process run, which write nothing. ``curve`` is the training curve of
    ``log_csv_path`` (every session of a resumed run), read from the logs once; None in the extra
    processes.
    """

    checkpoint_path: Path
    log_csv_path: Path
    best_val_loss: float
    best_val_rmse: float
    wall_time_s: float
    epochs: int
    steps: int
    is_global_zero: bool = True
    curve: TrainingCurve | None = None


def _as_signal_set(data: Any, basis: BasisSet, what: str) -> SignalSet:
    """A given set or a user's ``(fids, amplitudes)`` pair, checked against ``basis`` and cast
    for training (a pair gets the basis's names and grid)."""
    if isinstance(data, SignalSet):
        fids, amplitudes = data.fids, data.amplitudes
    else:
        try:
            fids, amplitudes = data
        except (TypeError, ValueError):
            raise ConfigError(f"{what} must be a (fids, amplitudes) pair") from None
        fids, amplitudes = np.asarray(fids), np.asarray(amplitudes)
    if fids.ndim == 2 and fids.shape[1] != basis.n_points:
        raise IncompatibleDataError(
            f"{what} has {fids.shape[1]}-point FIDs but the basis has {basis.n_points}; "
            "simulate the data with this basis"
        )
    if amplitudes.ndim == 2 and amplitudes.shape[1] != basis.n_metabolites:
        raise IncompatibleDataError(
            f"{what} has {amplitudes.shape[1]} amplitude columns but the basis has "
            f"{basis.n_metabolites} metabolites ({', '.join(basis.names)})"
        )
    if not isinstance(data, SignalSet):
        data = SignalSet(fids, amplitudes, basis.names, basis.acquisition)
    return for_training(data)


def _subset(signals: SignalSet, n: int) -> SignalSet:
    # evenly spaced rows, in case a user's file is ordered by some parameter
    idx = np.unique(np.linspace(0, len(signals) - 1, min(n, len(signals))).round().astype(int))
    return signals.take(idx)


def _prepare_outputs(paths: list[Path], work_dir: Path, *, resume: bool, overwrite: bool) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        check_writable(path, overwrite=overwrite)
    last = work_dir / "last.ckpt"
    if resume:
        if not last.is_file():
            raise InputFileError(
                f"nothing to resume: {last} does not exist; run without --resume to start afresh"
            )
    elif work_dir.exists():
        if not overwrite:
            raise OutputExistsError(
                f"an interrupted run left {work_dir}; pass --resume to continue it or "
                "--overwrite to start over"
            )
        shutil.rmtree(work_dir)  # our own working folder, named by us


def _keeps_inputs(config: TrainConfig, quantifier: Quantifier, n_signals: int) -> bool:
    """Whether to compute the network inputs of the fixed sets once (:data:`INPUT_CACHE_BYTES`):
    on the CPU in one process at full precision only (a GPU computes the transform faster
    than it would receive the inputs; mixed precision runs it under autocast)."""
    on_cpu = config.accelerator == "cpu" or (
        config.accelerator == "auto"
        and not torch.cuda.is_available()
        and not torch.backends.mps.is_available()
    )
    size = n_signals * math.prod(quantifier.input_shape) * 4  # float32
    return (
        on_cpu
        and _world_size(config) == 1
        and config.precision in ("32", "32-true")
        and size <= INPUT_CACHE_BYTES
    )


def _world_size(config: TrainConfig) -> int:
    devices = config.devices
    per_node = devices if isinstance(devices, int) else 1
    if isinstance(devices, (list, tuple)):
        per_node = len(devices)
    return max(1, per_node) * config.num_nodes


def _check_validation_runs(config: TrainConfig, steps_per_epoch: int) -> None:
    """Refuse a run that would end before its first validation (which keeps the checkpoint),
    naming the flags that lengthen it: ``val_check_interval`` has none, and a preset's may
    outlast a small ``--data`` file (``tiny``: 4 epochs, the first validation at step 64)."""
    interval = config.val_check_interval
    if config.max_steps > 0:
        total = config.max_steps
        longer = f"max_steps: {interval} in the --config file"  # no CNN flag sets it
    elif config.max_epochs is not None:
        total = config.max_epochs * steps_per_epoch
        longer = (
            f"{config.max_epochs} epochs of {steps_per_epoch} batches of {config.batch_size} "
            f"now: --max-epochs {math.ceil(interval / steps_per_epoch)}, more training signals "
            "or a smaller --batch-size"
        )
    else:
        return  # only a time limit: cannot tell in advance
    if total < interval:
        raise ConfigError(
            f"training stops after {total} steps, before the first validation at step "
            f"{interval}, which keeps the checkpoint: train longer ({longer}) or validate "
            f"sooner (val_check_interval: {total} or less in a --config file)"
        )


def _build_trainer(
    config: TrainConfig, work_dir: Path, log_dir: Path, progress: bool, extra: Sequence[Callback]
) -> tuple[L.Trainer, ModelCheckpoint, EarlyStopping | None]:
    checkpoint = ModelCheckpoint(
        dirpath=work_dir,
        filename="best",
        monitor="val/loss",
        mode="min",
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    callbacks: list[Any] = [checkpoint, *extra]
    early = None
    if config.early_stopping_patience is not None:
        early = EarlyStopping(
            monitor="val/loss",
            mode="min",
            patience=config.early_stopping_patience,
            check_on_train_epoch_end=False,
        )
        callbacks.append(early)
    # one CSV per session (Lightning's CSV logger empties an existing log folder), merged at the end
    session = len(list((work_dir / "logs").glob("session_*")))
    loggers: list[Any] = [CSVLogger(work_dir, name="logs", version=f"session_{session}")]
    if importlib.util.find_spec("tensorboard") is not None:  # optional extra
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(log_dir / config.model, name="tensorboard", version=""))
    trainer = L.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        precision=config.precision,
        deterministic=config.deterministic,
        max_epochs=-1 if config.max_epochs is None else config.max_epochs,
        max_steps=config.max_steps,
        max_time=None if config.max_time_s is None else timedelta(seconds=config.max_time_s),
        val_check_interval=config.val_check_interval,
        check_val_every_n_epoch=None,  # count val_check_interval in iterations across epochs
        num_sanity_val_steps=0,
        log_every_n_steps=min(10, config.val_check_interval),
        callbacks=callbacks,
        logger=loggers,
        enable_progress_bar=progress,
        enable_model_summary=False,
        use_distributed_sampler=False,  # SignalDataModule shards by rank itself
        default_root_dir=work_dir,
        plugins=[AtomicCheckpointIO()],
    )
    return trainer, checkpoint, early


def check_trainer_settings(config: TrainConfig) -> None:
    """Refuse hardware settings Lightning cannot use (``accelerator``, ``devices``,
    ``strategy``, ``num_nodes``) within milliseconds, before any output or data is made, with
    one line that names the setting (Lightning's own messages are long and speak of
    ``Trainer(...)``).

    Raises
    ------
    ConfigError
        E.g. ``--accelerator gpu`` without a GPU, ``--devices 0``, ``--strategy nonsense``.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)  # no "GPU available: ..." lines for this throwaway trainer
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            L.Trainer(
                accelerator=config.accelerator,
                devices=config.devices,
                strategy=config.strategy,
                num_nodes=config.num_nodes,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
            )
    except (MisconfigurationException, ValueError, TypeError, RuntimeError) as err:
        text = " ".join(str(err).split())
        low = text.lower()
        if "strategy" in low:
            what = f"--strategy {config.strategy!r} is not a strategy Lightning knows"
            advice = "use auto, ddp, ddp_spawn or fsdp"
        elif "num_nodes" in low:
            what = f"--num-nodes must be a whole number >= 1, got {config.num_nodes}"
            advice = "give 1 for one machine"
        elif "devices" in low:
            what = (
                f"--devices {config.devices!r} is not valid for --accelerator {config.accelerator}"
            )
            advice = "give a number >= 1 or auto"
        elif any(word in low for word in ("gpu", "cuda", "mps", "tpu", "accelerator")):
            what = f"--accelerator {config.accelerator}: no such device here ({text[:100]})"
            advice = "use --accelerator cpu (or auto)"
        else:
            what = f"Lightning refused the trainer settings ({text[:160]})"
            advice = "check --accelerator, --devices, --strategy and --num-nodes"
        raise ConfigError(f"{what}; {advice}") from None
    finally:
        logging.disable(previous)


def _gather_data_streams(module: QuantifierModule, config: TrainConfig) -> list[dict[str, Any]]:
    key = (
        [config.seed, FRESH_KEY, "epoch", module.global_rank, "batch"]
        if config.fresh_data
        else [config.seed, TRAIN_KEY, "shuffle by DistributedSampler(seed, epoch)"]
    )
    mine = {
        "rank": module.global_rank,
        "seed_key": key,
        "first_batch_fingerprint": {str(k): v for k, v in module.data_fingerprints.items()},
    }
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        gathered: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(gathered, mine)
        return gathered
    return [mine]


def _export_checkpoint(
    best_path: Path,
    target: Path,
    training: Mapping[str, Any],
    val: SignalSet,
    *,
    overwrite: bool,
) -> None:
    best = torch.load(best_path, map_location="cpu", weights_only=True)
    best = {**best, CHECKPOINT_KEY: {**best[CHECKPOINT_KEY], "training": dict(training)}}
    ckpt = calibrate_checkpoint(best, best_path, val.fids, val.amplitudes)
    with atomic_path(target, overwrite=overwrite) as tmp:
        torch.save(ckpt, tmp)


def train_model(
    config: TrainConfig,
    basis: BasisSet,
    out_dir: str | os.PathLike,
    *,
    train_set: Any = None,
    val_set: Any = None,
    progress: bool | None = None,
    log_dir: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    data_source: Mapping[str, Any] | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train ``config.model`` on signals of ``basis`` and export its best checkpoint.

    Parameters
    ----------
    config : the settings (``TrainConfig.preset(...)`` or your own).
    basis : the basis set; outputs follow its metabolite order.
    out_dir : folder of ``<model>.ckpt`` (created if missing).
    train_set, val_set : ``(fids complex (n, N), amplitudes (n, M))`` or None to simulate them
        from ``config`` (seeded; with ``config.fresh_data`` the training signals are drawn anew
        every epoch and ``train_set`` must be None).
    progress : Lightning's progress bar; None: only when stderr is a terminal.
    log_dir : folder of ``<model>/metrics.csv`` (default ``out_dir/logs``).
    resume : continue an interrupted run from ``out_dir/.<model>.partial/last.ckpt``.
    overwrite : replace existing outputs (otherwise :class:`OutputExistsError` before training).
    data_source : facts about where the data came from, stored in the checkpoint.
    callbacks : extra Lightning callbacks (custom logging, monitoring).
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    log_dir = out_dir / "logs" if log_dir is None else Path(log_dir)
    ckpt_path = out_dir / f"{config.model}.ckpt"
    csv_path = log_dir / config.model / "metrics.csv"
    streams_path = log_dir / config.model / "data_streams.json"
    work_dir = out_dir / f".{config.model}.partial"
    if progress is None:
        progress = sys.stderr.isatty()
    if config.fresh_data and train_set is not None:
        raise ConfigError(
            "fresh_data draws its own training signals; give no training set or "
            "turn fresh_data off (--no-fresh-data)"
        )
    simulation = config.simulation_config()
    if config.uncertainty != "none" and not config.fresh_data and simulation.snr is not None:
        warnings.warn(
            "training the uncertainty on a fixed set of noisy signals: the network memorises "
            "their noise and the standard deviations come out too small at low SNR; set "
            "fresh_data (--fresh-data) for noisy training (see scaloquant.train.data)",
            UserWarning,
            stacklevel=2,
        )
    check_trainer_settings(config)
    if is_launching_process():
        _prepare_outputs(
            [ckpt_path, csv_path, streams_path], work_dir, resume=resume, overwrite=overwrite
        )

    val = (
        _as_signal_set(val_set, basis, "the validation set")
        if val_set is not None
        else simulate_set(basis, simulation, config.n_val, config.seed, VAL_KEY)
    )
    if config.fresh_data:
        train = None
        norm_set = draw_signals(
            basis,
            simulation,
            min(config.n_train, N_NORMALISATION),
            np.random.default_rng(seed_sequence(config.seed, NORM_KEY)),
        )
    else:
        train = (
            _as_signal_set(train_set, basis, "the training set")
            if train_set is not None
            else simulate_set(basis, simulation, config.n_train, config.seed, TRAIN_KEY)
        )
        norm_set = _subset(train, N_NORMALISATION)
    n_train = config.n_train if train is None else len(train)
    if config.batch_size > n_train:
        raise ConfigError(f"batch_size {config.batch_size} exceeds the {n_train} training signals")
    L.seed_everything(config.seed, workers=True, verbose=False)
    quantifier = Quantifier(config.quantifier_config(basis))
    kept = len(val) + (0 if train is None else len(train))
    datamodule = SignalDataModule(
        basis=basis,
        train=train,
        val=val,
        simulation=simulation,
        batch_size=config.batch_size,
        eval_batch_size=config.eval_batch_size,
        seed=config.seed,
        n_train=config.n_train,
        num_workers=config.num_workers,
        # computed in setup(), after the normalisation below
        inputs=partial(network_inputs, quantifier)
        if _keeps_inputs(config, quantifier, kept)
        else None,
    )
    _check_validation_runs(config, datamodule.train_batches_per_epoch(_world_size(config)))

    quantifier.fit_normalisation(
        torch.from_numpy(norm_set.fids), torch.from_numpy(norm_set.amplitudes)
    )
    amplitude_std = torch.from_numpy(norm_set.amplitudes).double().std(0)
    amplitude_std = torch.where(amplitude_std > 0, amplitude_std, torch.ones_like(amplitude_std))
    seeds = {
        "seed": config.seed,
        "model_init": "lightning.seed_everything(seed)",
        "train_set": "fresh"
        if config.fresh_data
        else ("given" if train_set is not None else [config.seed, TRAIN_KEY]),
        "fresh_batches": [config.seed, FRESH_KEY, "epoch", "rank", "batch"]
        if config.fresh_data
        else None,
        "val_set": "given" if val_set is not None else [config.seed, VAL_KEY],
        "normalisation": [config.seed, NORM_KEY] if config.fresh_data else "training set",
    }
    source = {"n_train": n_train, "n_val": len(val), **dict(data_source or {})}
    module = QuantifierModule(
        quantifier,
        config,
        amplitude_std,
        checkpoint_metadata(basis, seeds=seeds, data=source),
    )
    trainer, checkpoint, early = _build_trainer(config, work_dir, log_dir, progress, callbacks)
    with warnings.catch_warnings():
        # the signals are in memory or cheap to draw: worker processes are optional here
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # the CSV log lives in the same working folder as the checkpoints
        warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
        try:
            trainer.fit(
                module, datamodule=datamodule, ckpt_path=work_dir / "last.ckpt" if resume else None
            )
        except SystemExit:
            # Lightning exits on Ctrl+C; turn it back into an interruption for our caller
            if trainer.interrupted:
                _drop_unresumable(work_dir)
                raise KeyboardInterrupt from None
            raise
        except KeyboardInterrupt:
            _drop_unresumable(work_dir)
            raise
    streams = _gather_data_streams(module, config)
    result = TrainResult(
        checkpoint_path=ckpt_path,
        log_csv_path=csv_path,
        best_val_loss=float("nan")
        if checkpoint.best_model_score is None
        else float(checkpoint.best_model_score),
        best_val_rmse=float("nan"),
        wall_time_s=time.perf_counter() - start,
        epochs=int(trainer.current_epoch),
        steps=int(trainer.global_step),
        is_global_zero=trainer.is_global_zero,
    )
    if not trainer.is_global_zero:
        return result
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    if best is None or not best.is_file():
        raise ConfigError(
            "training ended before any validation (its time limit came first): validate "
            "sooner or give it longer (val_check_interval or max_time_s in a --config file)"
        )
    rows = _read_csv_logs(
        sorted(
            (work_dir / "logs").glob("session_*/metrics.csv"),
            key=lambda p: int(p.parent.name.split("_")[1]),
        )
    )
    best_rmse = _best_rmse(rows)
    result = dataclasses.replace(result, best_val_rmse=best_rmse, curve=training_curve(rows))
    training = {
        "best_val_loss": result.best_val_loss,
        "best_val_rmse": best_rmse,
        "wall_time_s": result.wall_time_s,
        "epochs": result.epochs,
        "steps": result.steps,
        "stopped_early": early is not None and early.wait_count >= early.patience,
    }
    _export_checkpoint(best, ckpt_path, training, val, overwrite=overwrite)
    with atomic_path(csv_path, overwrite=overwrite) as tmp:
        _write_csv(rows, tmp)
    write_text_atomic(
        streams_path,
        json.dumps({"world_size": trainer.world_size, "ranks": streams}, indent=2) + "\n",
        overwrite=overwrite,
    )
    shutil.rmtree(work_dir, ignore_errors=True)
    return result


def _drop_unresumable(work_dir: Path) -> None:
    """After an interruption: keep the working folder only when it holds a checkpoint to
    resume from (``last.ckpt``); otherwise it is of no use and would block the next run."""
    if is_launching_process() and not (work_dir / "last.ckpt").is_file():
        shutil.rmtree(work_dir, ignore_errors=True)


def _read_csv_logs(paths: list[Path]) -> list[dict[str, str]]:
    """Rows of Lightning CSV logs, in session order."""
    return [row for path in paths for row in read_log_rows(path)]


def _write_csv(rows: list[dict[str, str]], path: Path) -> None:
    columns = ["epoch", "step"]
    columns += sorted({k for row in rows for k in row} - set(columns))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _best_rmse(rows: list[dict[str, str]]) -> float:
    """``val/rmse`` of the validation with the lowest ``val/loss``."""
    best_loss, best_rmse = float("inf"), float("nan")
    for row in rows:
        loss, rmse = row.get("val/loss", ""), row.get("val/rmse", "")
        if loss and rmse and float(loss) < best_loss:
            best_loss, best_rmse = float(loss), float(rmse)
    return best_rmse
