"""Axes of a scalogram for plotting and reading: row frequencies (Hz, ppm) and column times (ms).

Row order: row 0 is the smallest scale, i.e. the HIGHEST centre frequency, as in MATLAB's ``cwt``;
frequency falls with the row index. Column ``t`` is FID sample ``t * decimation``, at
``t * decimation * dwell_time_s`` (the FID's first point is at time 0).

A row's centre frequency ``f > 0`` is the wavelet's peak frequency at that scale. Which signal
frequency that is depends on the channel: ``abs_re_im``/``complex`` channels transform the real
signals ``Re s`` and ``Im s``, whose spectra are symmetric, so a row holds both ``+f`` and ``-f``;
in ``pos_neg`` mode channel 0 holds ``+f`` and channel 1 holds ``-f``. Chemical shifts follow
:mod:`scaloquant.signal.axes` (``ppm = ppm_reference + f / spectrometer_freq_mhz``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..signal import axes
from .config import ScalogramConfig, scales
from .morse import scale_to_frequency_cycles

Side = Literal["positive", "negative"]


def centre_frequencies_hz(config: ScalogramConfig, dwell_time_s: float) -> np.ndarray:
    """Centre frequency of every row in Hz, positive, decreasing; shape ``(n_scales,)``."""
    cycles = scale_to_frequency_cycles(scales(config, dwell_time_s), config.gamma, config.beta)
    return cycles / float(dwell_time_s)


def centre_ppm(
    config: ScalogramConfig,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    *,
    side: Side = "negative",
) -> np.ndarray:
    """Chemical shift of every row for the ``+f`` (``positive``) or ``-f`` (``negative``) side.

    The default is ``negative`` because 1H metabolites (0-4.2 ppm) lie below the water reference
    (4.65 ppm), i.e. at negative receiver frequencies. Shape ``(n_scales,)``.
    """
    sign = {"positive": 1.0, "negative": -1.0}[side]
    freq_hz = sign * centre_frequencies_hz(config, dwell_time_s)
    return axes.hz_to_ppm(freq_hz, spectrometer_freq_mhz, ppm_reference)


def time_axis_ms(config: ScalogramConfig, dwell_time_s: float) -> np.ndarray:
    """Time of every column in ms; shape ``(n_time,)``."""
    samples = np.arange(config.n_time) * config.decimation
    return axes.time_axis_s(config.n_points, dwell_time_s)[samples] * 1e3


def channel_names(config: ScalogramConfig) -> tuple[str, ...]:
    """Short names of the output channels, in order."""
    return {
        "abs_re_im": ("|W[Re s]|", "|W[Im s]|"),
        "pos_neg": ("|W+[s/2]| (+f)", "|W-[s/2]| (-f)"),
        "complex": ("Re W[Re s]", "Im W[Re s]", "Re W[Im s]", "Im W[Im s]"),
    }[config.channels]
