"""The report's figures, drawn with matplotlib (imported by this module only; the report's other
modules import it lazily): the fit of one spectrum, LCModel-style, and the small metabolite
maps of an MRSI input. :func:`png_bytes` renders a figure in memory, for the figure files and
the images inlined in ``report.html`` alike.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from ..fit import FitSpectra
from ..fit.measured_mm import MEASURED_MM_NAME
from ..io.atomic import atomic_path
from ..metabolites import has_all, indices_of
from ..signal import axes
from ..signal.axes import WINDOW_PPM_1H
from ..types import BasisSet
from .content import COMBINED

#: Resolution of every PNG.
DPI = 120

#: Components drawn under the fit, when the basis has their parts (Ins: myo-inositol;
#: MM_measured: the measured macromolecule spectrum of ``fit --mm-spectrum``).
COMPONENTS: dict[str, tuple[str, ...]] = {
    **COMBINED,
    "Ins": ("Ins",),
    MEASURED_MM_NAME: (MEASURED_MM_NAME,),
}

_COMPONENT_COLOURS = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:purple",
    "tab:brown",
    "tab:olive",
)


def _tight_bbox(fig: Figure, dpi: float) -> Bbox | str:
    """What ``savefig(bbox_inches="tight")`` crops ``fig`` to at ``dpi``, in inches, padded by
    ``savefig.pad_inches``: the same box, found without savefig's layout pass over the whole
    figure. That pass (every artist's draw, nothing rendered) places the artists before it
    measures them, and took a quarter of a small map's savefig (0.058-0.066 -> 0.046-0.047 s CPU,
    the same bytes: docs/history/fit-log.md "Writing an MRSI run's outputs (session 27, write27)");
    a figure without a layout engine is placed already (:func:`plot_map`'s axes at fixed
    places). A figure with one (:func:`plot_fit`'s constrained layout) needs the pass for its
    layout, so it is left to savefig: ``"tight"``, as is a ``pad_inches`` that is not a
    number."""
    pad = mpl.rcParams["savefig.pad_inches"]
    if fig.get_layout_engine() is not None or not isinstance(pad, (int, float)):
        return "tight"
    canvas, original_dpi = fig.canvas, fig.dpi
    fig.set_dpi(dpi)
    try:
        return fig.get_tightbbox(FigureCanvasAgg(fig).get_renderer()).padded(pad)
    finally:  # the figure as it was given (savefig switches to Agg by itself)
        fig.set_canvas(canvas)
        fig.set_dpi(original_dpi)


def png_bytes(fig: Figure, *, dpi: int = DPI) -> bytes:
    """``fig`` as PNG bytes (Agg, tight bounding box: :func:`_tight_bbox`)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches=_tight_bbox(fig, dpi))
    return buf.getvalue()


def save_png(fig: Figure, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (refusing an existing file unless asked)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches=_tight_bbox(fig, DPI))
    return Path(path)


def plot_basis_spectra(
    basis: BasisSet, title: str, *, ppm_range: tuple[float, float] = WINDOW_PPM_1H
) -> Figure:
    """A figure of every metabolite's real spectrum over ``ppm_range`` (low, high), each scaled
    to its maximum, stacked (``scaloquant basis info --plot``)."""
    n_fft = 2 * basis.n_points  # 2x zero fill: smooth lines for narrow singlets
    acq = basis.acquisition
    ppm = axes.ppm_axis(n_fft, acq.dwell_time_s, acq.spectrometer_freq_mhz, acq.ppm_reference)
    window = (ppm >= ppm_range[0]) & (ppm <= ppm_range[1])
    spectra = basis.spectra(n_fft).real[:, window]
    peak = np.abs(spectra).max(axis=1, keepdims=True)
    spectra = spectra / np.where(peak > 0, peak, 1.0)
    fig = Figure(figsize=(7.0, 1.0 + 0.45 * basis.n_metabolites))
    ax = fig.add_subplot()
    for row, (name, spec) in enumerate(zip(basis.names, spectra, strict=True)):
        offset = (basis.n_metabolites - 1 - row) * 1.1
        ax.plot(ppm[window], spec + offset, lw=0.8, color="black")
        # Labels at the low-ppm edge, where no basis signal of the window lies.
        ax.text(ppm_range[0] + 0.03, offset + 0.15, name, fontsize=8, va="bottom", ha="right")
    ax.set_xlim(ppm_range[1], ppm_range[0])  # reversed, as MRS spectra are read
    ax.set_xlabel("chemical shift (ppm)")
    ax.set_yticks([])
    ax.set_title(f"{title}\nreal spectra, each scaled to its maximum", fontsize=9)
    return fig


def _components(spectra: FitSpectra, names: Sequence[str], window: np.ndarray):
    """(label, real part over ``window``) of each of :data:`COMPONENTS` the basis has."""
    names = list(names)
    out = []
    for label, parts in COMPONENTS.items():
        if names and has_all(parts, names):
            idx = indices_of(parts, names)
            out.append((label, np.real(spectra.metabolites[idx].sum(axis=0))[window]))
    return out


def plot_fit(
    spectra: FitSpectra, *, title: str, model_label: str, names: Sequence[str] = ()
) -> Figure:
    """One spectrum's fit, LCModel-style: the residual on top, then data, fit and baseline,
    then the main components (:data:`COMPONENTS`) offset below; real parts on a reversed ppm
    axis (callers pass the spectra phase-corrected, :func:`scaloquant.fit.result.phase_corrected`).

    Parameters
    ----------
    spectra : one spectrum's :class:`~scaloquant.fit.FitSpectra` (``data`` ``(K,)``,
        ``metabolites`` ``(M, K)``).
    title : the figure title (input and spectrum).
    model_label : what the model is (e.g. the network's amplitudes with a fitted lineshape).
    names : the ``M`` metabolite names of ``spectra.metabolites``; without them no components
        are drawn.

    Points where a curve is NaN (the model of a spectrum fitted over a shorter window than
    the others', ``FitResult.window_ppm``) are left undrawn and out of the scaling. The axis
    spans 0.2-4.2 ppm (:data:`WINDOW_PPM_1H`), widened to the fitted window where that reaches
    beyond (``--ppm-range 0.2 4.5``: its 4.2-4.5 ppm was fitted, and is drawn).
    """
    ppm = spectra.ppm
    window = np.ones(ppm.shape, dtype=bool)  # FitSpectra hold the fitted window only
    low, high = min(WINDOW_PPM_1H[0], float(ppm.min())), max(WINDOW_PPM_1H[1], float(ppm.max()))
    x = ppm[window]
    data, model, baseline, residual = (
        np.real(a)[window]
        for a in (spectra.data, spectra.model, spectra.baseline, spectra.residual)
    )
    components = _components(spectra, names, window)
    fig = Figure(figsize=(8, 5.2 if components else 4.5), layout="constrained")
    ax = fig.subplots()
    top = max(float(np.nanmax(data)), float(np.nanmax(model)))
    span = top - min(float(np.nanmin(data)), float(np.nanmin(baseline)))
    gap = 0.05 * span
    # the residual sits above the spectra, the components below, as in LCModel's plots
    above = top - float(np.nanmin(residual)) + gap
    ax.plot(x, residual + above, color="tab:gray", lw=0.8, label="residual (offset)")
    ax.plot(x, data, color="black", lw=0.9, label="data")
    ax.plot(x, model, color="tab:red", lw=1.1, label=model_label)
    ax.plot(x, baseline, color="tab:blue", lw=0.9, ls="--", label="baseline")
    level = min(float(np.nanmin(data)), float(np.nanmin(baseline))) - gap
    for (label, trace), colour in zip(components, _COMPONENT_COLOURS, strict=False):
        level -= max(float(np.nanmax(trace)), 0.0) + gap
        ax.plot(x, trace + level, color=colour, lw=0.8)
        # labelled at the right end, where none of these components has signal
        ax.text(low, level, f"{label} ", ha="right", va="bottom", fontsize=8, color=colour)
        level += min(float(np.nanmin(trace)), 0.0)
    ax.set_xlim(high, low)  # reversed: chemical shift decreases to the right
    ax.set_xlabel("chemical shift (ppm)")
    ax.set_ylabel("real part, phase-corrected (a.u.)")
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.legend(loc="outside lower center", ncols=4, frameon=False, fontsize=8)
    return fig


@dataclass(frozen=True)
class MapImage:
    """One small map to draw (:func:`map_pngs`).

    Attributes
    ----------
    values : ``(x, y)`` one slice.
    title : the metabolite (e.g. ``"tNAA"`` or ``"tNAA/tCr"``).
    unit : the colour bar's label.
    mask : ``(x, y)`` True where the estimate is unreliable (%SD > 20): crossed out.
    """

    values: np.ndarray
    title: str
    unit: str
    mask: np.ndarray | None = None


class _MapFigure:
    """The figure of :func:`plot_map` for maps of one ``(x, y)`` shape, built once (axes at
    fixed places, the ticks, the colour bar) and drawn again for each map (:meth:`draw`)."""

    def __init__(self, shape: tuple[int, int]):
        # axes at fixed places, not matplotlib's constrained layout (its solver took half of a
        # map's time: 0.34 -> 0.15 s CPU a map, the same picture to a few pixels of margin)
        self.fig = Figure(figsize=(2.6, 2.3))
        ax = self.ax = self.fig.add_axes((0.13, 0.13, 0.64, 0.75))
        self.image = ax.imshow(
            np.zeros(shape).T,
            origin="lower",
            cmap="viridis",
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
        )
        # a tick per voxel (at most 8 per axis), at its centre
        ax.set_xticks(np.unique(np.linspace(0, shape[0] - 1, min(8, shape[0])).round()))
        ax.set_yticks(np.unique(np.linspace(0, shape[1] - 1, min(8, shape[1])).round()))
        ax.set_xlabel("x", fontsize=7, labelpad=1)
        ax.set_ylabel("y", fontsize=7, labelpad=1)
        ax.tick_params(labelsize=6, length=2)
        ax.apply_aspect()  # the image's square voxels set the axes' box: the bar beside it
        box = ax.get_position()
        bar_ax = self.fig.add_axes((box.x1 + 0.04, box.y0, 0.04, box.height))
        self.bar = self.fig.colorbar(self.image, cax=bar_ax)
        self.bar.ax.tick_params(labelsize=6)
        self.crosses = None

    def draw(self, values: np.ndarray, *, title: str, unit: str, mask: np.ndarray | None) -> Figure:
        """Show one map (:class:`MapImage`'s fields) on the figure, in place of the last."""
        finite = values[np.isfinite(values)]
        vmin, vmax = (float(np.min(finite)), float(np.max(finite))) if finite.size else (0.0, 1.0)
        self.image.set_data(values.T)
        self.image.set_clim(vmin, vmax)
        if self.crosses is not None:
            self.crosses.remove()
            self.crosses = None
        if mask is not None and mask.any():
            xs, ys = np.nonzero(mask)
            self.crosses = self.ax.scatter(xs, ys, marker="x", s=18, color="white", linewidths=0.8)
        self.ax.set_title(title, fontsize=9)
        self.bar.set_label(unit, fontsize=7)
        return self.fig


def plot_map(
    values: np.ndarray, *, title: str, unit: str, mask: np.ndarray | None = None
) -> Figure:
    """A small map of one slice, voxel ``x`` to the right and ``y`` up (array order, not a
    radiological view), with a colour bar. Parameters: :class:`MapImage`'s fields."""
    return _MapFigure(values.shape).draw(values, title=title, unit=unit, mask=mask)


def map_pngs(maps: Sequence[MapImage], *, dpi: int = DPI) -> list[bytes]:
    """Each of ``maps`` as PNG bytes: ``png_bytes(plot_map(...), dpi=dpi)`` of each (the same
    bytes), drawn on one figure per shape of map in turn, where a figure each made its axes,
    ticks and colour bar again (the 7 maps of a 32 x 32 slice's report: 0.13-0.15 -> 0.04 s CPU
    for the drawing, docs/history/fit-log.md "Writing an MRSI run's outputs (session 27, write27)")."""
    figures: dict[tuple[int, ...], _MapFigure] = {}
    out = []
    for m in maps:
        if m.values.shape not in figures:
            figures[m.values.shape] = _MapFigure(m.values.shape)
        fig = figures[m.values.shape].draw(m.values, title=m.title, unit=m.unit, mask=m.mask)
        out.append(png_bytes(fig, dpi=dpi))
    return out
