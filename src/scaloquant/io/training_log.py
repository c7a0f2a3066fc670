"""Lightning's CSV training log (``metrics.csv``): its rows and the training curve they hold.

The trainer reads its sessions' logs once (:func:`read_log_rows`), writes the merged log and
returns the curve (:func:`training_curve` of those rows) in its result; the curve of a written log
is ``training_curve(read_log_rows(path))``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
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


def read_log_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of one CSV log, as :class:`csv.DictReader` gives them."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def training_curve(rows: Iterable[Mapping[str, str | None]]) -> TrainingCurve:
    """Training and validation loss of log rows (``train/loss``, ``val/loss`` and, when logged,
    ``val/rmse``; rows without a ``step`` are skipped)."""
    train_step, train_loss, val_step, val_loss, val_rmse = [], [], [], [], []
    for row in rows:
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
    rmse = np.array(val_rmse)
    return TrainingCurve(
        np.array(train_step),
        np.array(train_loss),
        np.array(val_step),
        np.array(val_loss),
        rmse if rmse.size and np.all(np.isfinite(rmse)) else None,
    )
