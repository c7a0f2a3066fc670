"""Training with PyTorch Lightning: settings, data wiring, the LightningModule, checkpoints.

Public API::

    config = TrainConfig.preset("cpu", model="scalogram_cnn")
    result = train_model(config, basis, out_dir)          # -> TrainResult
    quantifier = load_quantifier(result.checkpoint_path)  # -> models.Quantifier
    amplitudes = quantifier.predict(fids)                 # (B, M) numpy
"""

from .checkpoint import checkpoint_metadata, load_quantifier, read_checkpoint
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
    "QuantifierModule",
    "SignalBatch",
    "SignalDataModule",
    "SignalSet",
    "TrainConfig",
    "TrainResult",
    "checkpoint_metadata",
    "check_trainer_settings",
    "is_launching_process",
    "load_quantifier",
    "read_checkpoint",
    "read_signal_file",
    "seed_sequence",
    "simulate_set",
    "split_signals",
    "train_model",
]
