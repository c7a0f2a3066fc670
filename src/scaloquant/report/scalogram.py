"""A figure of one scalogram for a person to look at: time in ms, frequency in Hz and ppm.

It lives with the other figures in ``report`` so that ``scaloquant.scalogram`` (a pure layer)
never imports matplotlib. The figure is built on a bare ``Figure`` (no pyplot, no global
backend state).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..scalogram.axes import Side, centre_frequencies_hz, channel_names, time_axis_ms
from ..scalogram.config import ScalogramConfig
from ..signal import axes as signal_axes


def _channel_side(config: ScalogramConfig, channel: int) -> tuple[Side, str]:
    """Which sign of f a channel's rows hold, for the ppm axis, and how to label it."""
    if config.channels == "pos_neg":
        return ("positive", "ppm (+f)") if channel == 0 else ("negative", "ppm (-f)")
    # Real-signal transforms hold +f and -f alike; label the side 1H metabolites are on.
    return "negative", "ppm at -f (+f mirrors)"


def _ppm_axis(panel, f_hz, side: Side, spectrometer_freq_mhz: float, ppm_reference: float):
    """A right-hand axis labelling round frequencies (1-2-5 Hz steps) with their ppm.

    ppm is linear in f while the frequency axis is logarithmic (and ppm may be negative), so the
    twin axis repeats the log scale and only relabels ticks.
    """
    twin = panel.twinx()
    twin.set_yscale("log")
    twin.set_ylim(panel.get_ylim())
    decades = 10.0 ** np.arange(np.floor(np.log10(f_hz.min())), np.ceil(np.log10(f_hz.max())) + 1)
    ticks = np.outer(decades, [1, 2, 5]).ravel()
    ticks = ticks[(ticks >= f_hz.min()) & (ticks <= f_hz.max())]
    sign = 1.0 if side == "positive" else -1.0
    ppm = signal_axes.hz_to_ppm(sign * ticks, spectrometer_freq_mhz, ppm_reference)
    twin.set_yticks(ticks, [f"{v:.2f}" for v in ppm])
    twin.minorticks_off()
    return twin


def scalogram_figure(
    data: np.ndarray,
    config: ScalogramConfig,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    *,
    title: str = "",
) -> Figure:
    """One panel per channel: time (ms) across, centre frequency (Hz, log scale) up, with the
    matching chemical shift on a right-hand axis and a colour bar.

    Parameters
    ----------
    data : array ``(C, S, T) = config.output_shape``, as the transform returns for one FID.
    """
    data = np.asarray(data)
    if data.shape != config.output_shape:
        raise ValueError(f"data has shape {data.shape}, the config makes {config.output_shape}")
    t_ms = time_axis_ms(config, dwell_time_s)
    f_hz = centre_frequencies_hz(config, dwell_time_s)
    names = channel_names(config)
    fig = Figure(figsize=(9, 2.6 * config.n_channels + 0.6), layout="constrained")
    if title:
        fig.suptitle(title)
    for c, panel in enumerate(fig.subplots(config.n_channels, 1, sharex=True, squeeze=False)[:, 0]):
        image = data[c]
        if config.channels == "complex":
            bound = float(np.abs(image).max()) or 1.0
            style = {"cmap": "RdBu_r", "vmin": -bound, "vmax": bound}
        else:
            style = {"cmap": "viridis"}
        mesh = panel.pcolormesh(t_ms, f_hz, image, shading="nearest", rasterized=True, **style)
        panel.set_yscale("log")
        panel.set_ylabel("centre frequency |f| (Hz)")
        panel.set_title(names[c])
        side, label = _channel_side(config, c)
        _ppm_axis(panel, f_hz, side, spectrometer_freq_mhz, ppm_reference).set_ylabel(label)
        fig.colorbar(
            mesh, ax=panel, pad=0.08, label="ln(magnitude + epsilon)" if config.log else "magnitude"
        )
    panel.set_xlabel("time (ms)")
    return fig
