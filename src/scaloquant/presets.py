"""The names of the training presets, shared by ``scaloquant train`` (:mod:`scaloquant.train.config`
holds what each one sets) and ``scaloquant reproduce`` (which trains with them).

A module of its own, below both, so that ``reproduce`` and its CLI can list the presets without
importing the trainer (Lightning takes seconds to import).
"""

from __future__ import annotations

from typing import Literal, get_args

PresetName = Literal["tiny", "quick", "cpu", "paper"]
#: The preset names, from the smallest to the paper's.
PRESETS: tuple[str, ...] = get_args(PresetName)
