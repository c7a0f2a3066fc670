"""Writing checkpoints: Lightning's atomic writer, the run-independent metadata, and the
uncertainty calibration of an exported checkpoint.

What a checkpoint carries, and reading it back without Lightning, is in
:mod:`scaloquant.models.checkpoint`; :mod:`scaloquant.train` re-exports its loader.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .. import __version__
from ..io.atomic import atomic_path
from ..models.checkpoint import (
    CHECKPOINT_KEY,
    STATE_PREFIX,
    quantifier_from_checkpoint,
)
from ..types import BasisSet

#: Central interval whose coverage the post-hoc calibration makes exact on the validation set.
CALIBRATION_LEVEL = 0.95


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic: each ``last.ckpt`` / ``best.ckpt`` is written
    to a hidden temporary file beside it and renamed over it, so that a full disk or a kill
    mid-write leaves the previous complete checkpoint (and no cut-off file filling the disk)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, overwrite=True) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def checkpoint_metadata(
    basis: BasisSet, *, seeds: Mapping[str, Any], data: Mapping[str, Any]
) -> dict[str, Any]:
    """The run-independent part of the checkpoint metadata (the layout is in
    :mod:`scaloquant.models.checkpoint`)."""
    return _json_safe(
        {
            "scaloquant_version": __version__,
            "torch_version": torch.__version__,
            "lightning_version": lightning.__version__,
            "basis": {
                "names": list(basis.names),
                "content_hash": basis.content_hash(),
                "metadata": dict(basis.metadata),
                "provenance": dict(basis.provenance),
            },
            "acquisition": {
                "n_points": basis.n_points,
                "dwell_time_s": basis.dwell_time_s,
                "spectrometer_freq_mhz": basis.spectrometer_freq_mhz,
                "ppm_reference": basis.ppm_reference,
                "nucleus": basis.nucleus,
            },
            "seeds": dict(seeds),
            "data": dict(data),
        }
    )


def calibrate_checkpoint(
    ckpt: Mapping[str, Any],
    path: str | os.PathLike,
    fids: np.ndarray,
    amplitudes: np.ndarray,
    *,
    level: float = CALIBRATION_LEVEL,
) -> dict[str, Any]:
    """A copy of a loaded checkpoint dict with the uncertainty calibration fitted on held-out
    signals (:meth:`Quantifier.calibrate`): the buffer in ``state_dict``, the factors in the
    metadata. ``ckpt`` is left as it was; for a model without uncertainty the copy is the same.
    """
    quantifier = quantifier_from_checkpoint(ckpt, path)
    if not quantifier.has_uncertainty:
        return dict(ckpt)
    factors = quantifier.calibrate(fids, amplitudes, level=level)
    calibration = {
        "method": "per-metabolite factor on the validation set",
        "level": level,
        "n_signals": len(fids),
        "factors": {
            name: float(f) for name, f in zip(quantifier.metabolites, factors, strict=True)
        },
    }
    return {
        **ckpt,
        "state_dict": {
            **ckpt["state_dict"],
            STATE_PREFIX + "sd_calibration": quantifier.sd_calibration.clone(),
        },
        CHECKPOINT_KEY: {**ckpt[CHECKPOINT_KEY], "uncertainty_calibration": calibration},
    }
