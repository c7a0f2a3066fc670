"""Training with PyTorch Lightning: settings, data wiring, the LightningModule, checkpoints.

Public API::

    config = TrainConfig.preset("cpu", model="scalogram_cnn")
    result = train_model(config, basis, out_dir)          # -> TrainResult
    loaded = load_model(result.checkpoint_path)           # -> models.LoadedModel
    amplitudes = loaded.quantifier.predict(fids)          # (B, M) numpy

Loading a checkpoint needs no Lightning: :func:`load_model` is
:func:`scaloquant.models.checkpoint.load_model`, re-exported; code that only applies a model
imports it from there.
"""

from ..models.checkpoint import CheckpointMetadata, LoadedModel, load_model, read_checkpoint
from .checkpoint import checkpoint_metadata
from .config import PRESETS, TrainConfig
from .data import (
    SignalBatch,
    SignalDataModule,
    SignalSet,
    read_signal_file,
    seed_sequence,
    simulate_set,
    split_signals,
)
from .module import QuantifierModule
from .run import TrainResult, check_trainer_settings, is_launching_process, train_model

__all__ = [
    "PRESETS",
    "CheckpointMetadata",
    "LoadedModel",
    "QuantifierModule",
    "SignalBatch",
    "SignalDataModule",
    "SignalSet",
    "TrainConfig",
    "TrainResult",
    "checkpoint_metadata",
    "check_trainer_settings",
    "is_launching_process",
    "load_model",
    "read_checkpoint",
    "read_signal_file",
    "seed_sequence",
    "simulate_set",
    "split_signals",
    "train_model",
]
