"""The fit figure of one spectrum: data, model and residual on a reversed ppm axis."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..fit import FitSpectra

#: Chemical-shift window drawn (the fit's default window).
PPM_RANGE = (0.2, 4.2)


def plot_fit(spectra: FitSpectra, *, title: str, model_label: str) -> Figure:
    """Real parts of one spectrum's data, model and residual (drawn above them), LCModel-style.

    Parameters
    ----------
    spectra : one spectrum's :class:`~scaloquant.fit.FitSpectra` (``data`` of shape ``(K,)``).
    title : the figure title (file and spectrum).
    model_label : what the model is (e.g. the network's amplitudes with a fitted lineshape).
    """
    ppm = spectra.ppm
    window = (ppm >= PPM_RANGE[0]) & (ppm <= PPM_RANGE[1])
    data, model, residual = (
        np.real(a)[window] for a in (spectra.data, spectra.model, spectra.residual)
    )
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    # the residual sits above the spectra, as in LCModel's plots, so the curves do not overlap
    top = max(float(np.max(data)), float(np.max(model)))
    offset = top - float(np.min(residual)) + 0.05 * (top - float(np.min(data)))
    ax.plot(ppm[window], data, color="black", lw=0.9, label="data")
    ax.plot(ppm[window], model, color="tab:red", lw=1.1, label=model_label)
    ax.plot(ppm[window], residual + offset, color="tab:gray", lw=0.8, label="residual (offset)")
    ax.set_xlim(PPM_RANGE[1], PPM_RANGE[0])  # reversed: chemical shift decreases to the right
    ax.set_xlabel("chemical shift (ppm)")
    ax.set_ylabel("real part of spectrum (a.u.)")
    ax.set_title(title)
    fig.legend(loc="outside lower center", ncols=3, frameon=False, fontsize=8)
    return fig
