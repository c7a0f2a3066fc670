"""Reading a scaloquant checkpoint: the trained :class:`Quantifier` and its typed metadata,
without the trainer (no Lightning import: ``quantify``, ``export`` and ``evaluate`` need only
torch).

A scaloquant checkpoint is a Lightning ``.ckpt`` (so Lightning can resume or fine-tune from it;
:mod:`scaloquant.train` writes it) whose ``"scaloquant"`` entry holds plain JSON data:

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

The network's weights are under ``state_dict`` with the prefix ``quantifier.`` (the attribute of
the LightningModule); the input and output normalisations and the uncertainty calibration are
buffers of the model and live there too.

Public API::

    loaded = load_model("model.ckpt")             # -> LoadedModel
    amplitudes = loaded.quantifier.predict(fids)  # (B, M) numpy
    loaded.metadata.acquisition["n_points"]       # CheckpointMetadata
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch

from .. import __version__
from ..errors import ConfigError, InputFileError
from ..paths import CHECKPOINT_HINT, require_file
from .quantifier import Quantifier, QuantifierConfig

if TYPE_CHECKING:
    from .physics import PhysicsQuantifier  # noqa: F401 (annotations)

#: Key of scaloquant's metadata in a checkpoint.
CHECKPOINT_KEY = "scaloquant"
#: Version of the metadata layout; bump on incompatible change. 2: ``quantifier`` may hold
#: ``uncertainty`` (older scaloquant would call such a checkpoint damaged).
CHECKPOINT_FORMAT = 2
#: Prefix of the :class:`Quantifier`'s keys in the checkpoint's ``state_dict``.
STATE_PREFIX = "quantifier."

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _no_entries() -> Mapping[str, Any]:
    return _EMPTY


def _frozen(value: Any) -> Mapping[str, Any]:
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) else _EMPTY


def _optional(value: Any) -> Mapping[str, Any] | None:
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) else None


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class CheckpointMetadata:
    """The ``"scaloquant"`` entry of a checkpoint (see the module docstring), read-only.

    Each mapping field is a read-only view of the checkpoint's JSON data (missing ones are
    empty); ``training`` and ``uncertainty_calibration`` are None when the file lacks them (a
    checkpoint saved during training, a model without uncertainty). :meth:`to_dict` gives the
    whole entry back as written.
    """

    format: int
    quantifier: Mapping[str, Any]
    basis: Mapping[str, Any] = field(default_factory=_no_entries)
    acquisition: Mapping[str, Any] = field(default_factory=_no_entries)
    train_config: Mapping[str, Any] = field(default_factory=_no_entries)
    seeds: Mapping[str, Any] = field(default_factory=_no_entries)
    data: Mapping[str, Any] = field(default_factory=_no_entries)
    scaloquant_version: str | None = None
    torch_version: str | None = None
    lightning_version: str | None = None
    global_step: int | None = None
    epoch: int | None = None
    training: Mapping[str, Any] | None = None
    uncertainty_calibration: Mapping[str, Any] | None = None
    #: The entry as read (every key, also those this version does not know).
    raw: Mapping[str, Any] = field(default_factory=_no_entries, repr=False, compare=False)

    @classmethod
    def from_dict(cls, meta: Mapping[str, Any]) -> CheckpointMetadata:
        """Read the ``"scaloquant"`` entry of a checkpoint dict (``KeyError`` without
        ``quantifier``)."""
        return cls(
            format=int(meta.get("format", 0)),
            quantifier=_frozen(meta["quantifier"]),
            basis=_frozen(meta.get("basis")),
            acquisition=_frozen(meta.get("acquisition")),
            train_config=_frozen(meta.get("train_config")),
            seeds=_frozen(meta.get("seeds")),
            data=_frozen(meta.get("data")),
            scaloquant_version=meta.get("scaloquant_version"),
            torch_version=meta.get("torch_version"),
            lightning_version=meta.get("lightning_version"),
            global_step=_int_or_none(meta.get("global_step")),
            epoch=_int_or_none(meta.get("epoch")),
            training=_optional(meta.get("training")),
            uncertainty_calibration=_optional(meta.get("uncertainty_calibration")),
            raw=MappingProxyType(dict(meta)),
        )

    @property
    def basis_metadata(self) -> Mapping[str, Any]:
        """The training basis' own metadata (sequence, ``echo_time_ms``...); empty if unknown."""
        return _frozen(self.basis.get("metadata"))

    def to_dict(self) -> dict[str, Any]:
        """The entry as a plain dict (a shallow copy of what was read)."""
        return dict(self.raw)


@dataclass(frozen=True)
class LoadedModel:
    """A trained :class:`Quantifier` (eval mode) with the metadata of the checkpoint it came
    from."""

    quantifier: Quantifier | PhysicsQuantifier
    metadata: CheckpointMetadata


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a scaloquant checkpoint dict (tensors and plain data only; no code is unpickled).

    Raises :class:`InputFileError` for a missing, unreadable, corrupt or non-scaloquant file.
    """
    path = require_file(path, "checkpoint ", CHECKPOINT_HINT)
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


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the trained :class:`Quantifier` or physics-head model (eval mode, on ``map_location``) from a
    checkpoint file alone, with the checkpoint's metadata.

    Raises :class:`InputFileError` for a file that is not a readable scaloquant checkpoint or
    whose weights do not match its own model description.
    """
    ckpt = read_checkpoint(path, map_location)
    quantifier = quantifier_from_checkpoint(ckpt, path).to(map_location).eval()
    try:
        metadata = CheckpointMetadata.from_dict(ckpt[CHECKPOINT_KEY])
    except (TypeError, ValueError) as err:
        raise InputFileError(
            f"checkpoint {path} has unreadable metadata ({err}); it is damaged: retrain"
        ) from None
    return LoadedModel(quantifier, metadata)


def _new_model(description: Mapping[str, Any]) -> Quantifier | PhysicsQuantifier:
    """An untrained model of the checkpoint's ``quantifier`` description: a regression
    :class:`Quantifier` or a :class:`~scaloquant.models.physics.PhysicsQuantifier` (whose basis
    is a buffer, loaded with the weights)."""
    from .physics import PhysicsQuantifier
    from .physics_config import PHYSICS_KINDS, PhysicsQuantifierConfig

    if description.get("model") in PHYSICS_KINDS:
        return PhysicsQuantifier(PhysicsQuantifierConfig.from_dict(description))
    return Quantifier(QuantifierConfig.from_dict(description))


def quantifier_from_checkpoint(
    ckpt: Mapping[str, Any], path: str | os.PathLike
) -> Quantifier | PhysicsQuantifier:
    """The :class:`Quantifier` of a loaded checkpoint dict (``path`` names it in errors); the
    dict is left as it was (the weights are copied into the new model)."""
    meta = ckpt[CHECKPOINT_KEY]
    try:
        quantifier = _new_model(meta["quantifier"])
        state = {
            k[len(STATE_PREFIX) :]: v
            for k, v in ckpt["state_dict"].items()
            if k.startswith(STATE_PREFIX)
        }
        quantifier.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError, ConfigError) as err:
        reason = str(err).strip().splitlines()[0][:160]
        raise InputFileError(
            f"checkpoint {path} does not match its own model description ({reason}); "
            "it is damaged: retrain"
        ) from None
    return quantifier
