"""The names that ``scaloquant train`` offers: its presets (:mod:`scaloquant.train.config` holds
what each one sets; ``scaloquant reproduce`` trains with them), its model kinds, its uncertainty
heads and the physics-head models' training simulations; and those of ``scaloquant scalogram``:
the scalogram presets and channel modes.

A module of its own, below the networks and the trainer, so that ``train``'s, ``reproduce``'s
and ``scalogram``'s parsers list the names (argparse ``choices``) without importing torch or the
trainer (seconds; Lightning more), or numpy (``scalogram``'s). The modules that act on the names
re-export them from here: :data:`scaloquant.models.MODEL_KINDS`,
:data:`scaloquant.models.physics_config.PHYSICS_KINDS`,
:data:`scaloquant.models.UNCERTAINTY_KINDS`, :data:`scaloquant.train.physics.SIMULATIONS`,
:class:`scaloquant.scalogram.ChannelMode` and :func:`scaloquant.scalogram.preset_names`.
"""

from __future__ import annotations

from typing import Literal, get_args

PresetName = Literal["tiny", "quick", "cpu", "paper"]
#: The preset names, from the smallest to the paper's.
PRESETS: tuple[str, ...] = get_args(PresetName)

ModelKind = Literal["scalogram_cnn", "spectrum_cnn"]
#: The regression CNNs (:class:`scaloquant.models.Quantifier`).
MODEL_KINDS: tuple[str, ...] = get_args(ModelKind)

PhysicsKind = Literal["spectrum_physics", "scalogram_physics"]
#: The physics-head models (:mod:`scaloquant.models.physics`).
PHYSICS_KINDS: tuple[str, ...] = get_args(PhysicsKind)

Uncertainty = Literal["none", "gaussian"]
#: The regression CNNs' uncertainty heads (:mod:`scaloquant.models.uncertainty`).
UNCERTAINTY_KINDS: tuple[str, ...] = get_args(Uncertainty)

Simulation = Literal["invivo", "default"]
#: The training simulations of the physics-head models (:mod:`scaloquant.train.physics`).
SIMULATIONS: tuple[str, ...] = get_args(Simulation)

ScalogramPreset = Literal["paper", "cpu"]
#: The scalogram presets, in the order ``--help`` lists them (what each one sets:
#: :meth:`scaloquant.scalogram.ScalogramConfig.preset`).
SCALOGRAM_PRESETS: tuple[str, ...] = get_args(ScalogramPreset)

ChannelMode = Literal["abs_re_im", "pos_neg", "complex"]
#: The channels of a scalogram (:class:`scaloquant.scalogram.ScalogramConfig`'s ``channels``).
CHANNEL_MODES: tuple[str, ...] = get_args(ChannelMode)
