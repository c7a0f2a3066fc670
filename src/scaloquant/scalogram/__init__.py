"""Morse-wavelet scalograms: MATLAB's default Morse filter bank as a batched torch transform.

Pure float64 numpy formulas in :mod:`.morse`, the frozen :class:`ScalogramConfig` with presets in
:mod:`.config`, the torch transform in :mod:`.transform`, plotting axes in :mod:`.axes` and a
direct numpy oracle in :mod:`.reference`. The transform's names are imported on first use (PEP
562): the rest is numpy alone, so that ``scaloquant scalogram``'s parser (its presets and channel
modes) and its refusals of a bad input need not wait for torch (seconds).
"""

from typing import TYPE_CHECKING, Any

from .axes import centre_frequencies_hz, centre_ppm, channel_names, time_axis_ms
from .config import ChannelMode, Padding, ScalogramConfig, preset_names, scales
from .morse import (
    default_scale_span,
    morse_filters,
    morse_frequency_response,
    octave_scales,
    peak_frequency,
    scale_to_frequency_cycles,
    time_spread,
)
from .reference import reference_scalogram

if TYPE_CHECKING:  # for the readers of the code; imported by __getattr__
    from .transform import FilterBank, MorseScalogram, filter_bank, scalogram

#: The names of :mod:`.transform` (torch), imported when first asked for.
_TRANSFORM = ("FilterBank", "MorseScalogram", "filter_bank", "scalogram")

__all__ = [
    "ChannelMode",
    "FilterBank",
    "MorseScalogram",
    "Padding",
    "ScalogramConfig",
    "centre_frequencies_hz",
    "centre_ppm",
    "channel_names",
    "default_scale_span",
    "filter_bank",
    "morse_filters",
    "morse_frequency_response",
    "octave_scales",
    "peak_frequency",
    "preset_names",
    "reference_scalogram",
    "scale_to_frequency_cycles",
    "scales",
    "scalogram",
    "time_axis_ms",
    "time_spread",
]


def __getattr__(name: str) -> Any:
    if name not in _TRANSFORM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import transform

    value = getattr(transform, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_TRANSFORM})
