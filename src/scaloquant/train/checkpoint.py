"""What a checkpoint carries, and loading a :class:`~scaloquant.models.Quantifier` from it alone.

A scaloquant checkpoint is a Lightning ``.ckpt`` (so Lightning can resume or fine-tune from it)
whose ``"scaloquant"`` entry holds plain JSON data:

* ``format`` (layout version), ``scaloquant_version``, ``torch_version``, ``lightning_version``;
* ``quantifier``: :meth:`QuantifierConfig.to_dict` (model kind, metabolites, acquisition grid,
  network shape, scalogram settings, spectrum settings, input-scale mode);
* ``basis``: ``names``, ``content_hash`` (:meth:`BasisSet.content_hash`), ``metadata`` (sequence,
  TE...), ``provenance``;
* ``acquisition``: ``n_points``, ``dwell_time_s``, ``spectrometer_freq_mhz``, ``ppm_reference``,
  ``nucleus``;
* ``train_config`` (:meth:`TrainConfig.to_dict`, including the simulation and scalogram settings
  and the seed), ``seeds`` (how each data stream was seeded), ``data`` (where the data came from);
* ``global_step``/``epoch`` at saving time, and in the exported file ``training`` (best
  validation loss, wall time, steps, epochs) and, for a model with uncertainty,
  ``uncertainty_calibration`` (level, number of validation signals, factor per metabolite).

The input and output normalisations and the uncertainty calibration are buffers of the model and
live in ``state_dict``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .. import __version__
from ..errors import InputFileError
from ..io.atomic import atomic_path
from ..models.quantifier import Quantifier, QuantifierConfig
from ..types import BasisSet
from .module import CHECKPOINT_FORMAT, CHECKPOINT_KEY

_PREFIX = "quantifier."
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
    """The run-independent part of the checkpoint metadata (see the module docstring)."""
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


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a scaloquant checkpoint (tensors and plain data only; no code is unpickled).

    Raises :class:`InputFileError` for a missing, unreadable, corrupt or non-scaloquant file.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise InputFileError(
            f"checkpoint {path} {what}; give the .ckpt file written by scaloquant train"
        )
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load fails in many ways on a foreign file
        raise InputFileError(_unreadable_checkpoint(path, err)) from None
    meta = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or "quantifier" not in meta or "state_dict" not in ckpt:
        raise InputFileError(
            f"{path} is not a scaloquant checkpoint (no '{CHECKPOINT_KEY}' metadata); "
            "use a .ckpt written by scaloquant train"
        )
    if int(meta.get("format", 0)) > CHECKPOINT_FORMAT:
        raise InputFileError(
            f"checkpoint {path} has format {meta['format']}, newer than this scaloquant "
            f"({__version__}) reads; upgrade scaloquant"
        )
    return ckpt


def _unreadable_checkpoint(path: Path, err: Exception) -> str:
    """Why ``torch.load`` failed, in the user's terms (PyTorch's own text is long and speaks of
    its internals: a text file gives ``KeyError: 101``, a pickle "Weights only load failed...")."""
    if isinstance(err, (PermissionError, IsADirectoryError, FileNotFoundError)):
        return f"cannot read checkpoint {path}: {err.strerror or err}; check the file"
    try:
        with open(path, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
    except OSError:
        is_zip = False
    text = str(err).lower()
    if isinstance(err, pickle.UnpicklingError) and "weights only" in text and "global" in text:
        return (
            f"{path} holds Python objects that a scaloquant checkpoint does not (only tensors "
            "and plain data are loaded, for safety); use a .ckpt written by scaloquant train"
        )
    if is_zip:
        return (
            f"checkpoint {path} is damaged or cut short (corrupt: {type(err).__name__}); copy it "
            "again or retrain"
        )
    return (
        f"{path} is not a PyTorch checkpoint (or it is corrupt); give the .ckpt file written by "
        "scaloquant train"
    )


def load_quantifier(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> Quantifier:
    """Rebuild the trained :class:`Quantifier` (eval mode) from a checkpoint file alone.

    ``quantifier.checkpoint_metadata`` holds the checkpoint's ``"scaloquant"`` metadata, e.g.
    ``["basis"]["metadata"]`` (sequence, echo time...) and ``["acquisition"]`` (the grid).
    """
    ckpt = read_checkpoint(path, map_location)
    return quantifier_from_checkpoint(ckpt, path).to(map_location).eval()


def quantifier_from_checkpoint(ckpt: Mapping[str, Any], path: str | os.PathLike) -> Quantifier:
    """The :class:`Quantifier` of a loaded checkpoint dict (``path`` names it in errors)."""
    meta = ckpt[CHECKPOINT_KEY]
    try:
        quantifier = Quantifier(QuantifierConfig.from_dict(meta["quantifier"]))
        state = {
            k[len(_PREFIX) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(_PREFIX)
        }
        quantifier.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError) as err:
        reason = str(err).strip().splitlines()[0][:160]
        raise InputFileError(
            f"checkpoint {path} does not match its own model description ({reason}); "
            "it is damaged: retrain"
        ) from None
    quantifier.checkpoint_metadata = meta
    return quantifier


def calibrate_checkpoint(
    ckpt: dict[str, Any],
    path: str | os.PathLike,
    fids: np.ndarray,
    amplitudes: np.ndarray,
    *,
    level: float = CALIBRATION_LEVEL,
) -> None:
    """Fit the uncertainty calibration of a loaded checkpoint dict on held-out signals
    (:meth:`Quantifier.calibrate`) and store it in the dict: the buffer in ``state_dict``, the
    factors in the metadata. Does nothing for a model without uncertainty."""
    quantifier = quantifier_from_checkpoint(ckpt, path)
    if not quantifier.has_uncertainty:
        return
    factors = quantifier.calibrate(fids, amplitudes, level=level)
    ckpt["state_dict"][_PREFIX + "sd_calibration"] = quantifier.sd_calibration.clone()
    ckpt[CHECKPOINT_KEY]["uncertainty_calibration"] = {
        "method": "per-metabolite factor on the validation set",
        "level": level,
        "n_signals": len(fids),
        "factors": {
            name: float(f) for name, f in zip(quantifier.metabolites, factors, strict=True)
        },
    }
