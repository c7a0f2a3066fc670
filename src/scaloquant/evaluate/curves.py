"""The training curve of a model: the losses logged while it trained, as the evaluation
figures draw them (:func:`scaloquant.report.evaluation_figures.plot_training_curves`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrainingCurve:
    """Losses logged during training; steps are optimiser steps.

    Attributes
    ----------
    train_step, train_loss : arrays ``(n_train_points,)``.
    val_step, val_loss : arrays ``(n_val_points,)``.
    val_rmse : RMSE of the validation amplitudes in amplitude units, ``(n_val_points,)``, or
        None when the log has none.
    """

    train_step: np.ndarray
    train_loss: np.ndarray
    val_step: np.ndarray
    val_loss: np.ndarray
    val_rmse: np.ndarray | None = None
