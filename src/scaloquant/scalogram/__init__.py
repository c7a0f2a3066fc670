"""Morse-wavelet scalograms: MATLAB's default Morse filter bank as a batched torch transform.

Pure float64 numpy formulas in :mod:`.morse`, the frozen :class:`ScalogramConfig` with presets in
:mod:`.config`, the torch transform in :mod:`.transform`, plotting axes in :mod:`.axes` and a
direct numpy oracle in :mod:`.reference`.
"""

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
from .transform import FilterBank, MorseScalogram, filter_bank, scalogram

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
