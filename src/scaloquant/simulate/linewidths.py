"""Line widths of the ``invivo`` draws: Voigt width conversions and the basis' own lines.

A draw fixes the total width of a rendered singlet; the Gaussian part that gives it is solved on
the basis' own singlet, measured once per basis on its grid (:func:`basis_lines`,
:class:`BasisLines`), or from the Voigt approximation where the basis has no singlet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..metabolites import canonical
from ..signal import lineshapes, snr_fwhm
from ..types import BasisSet
from .config import Range
from .prior import InvivoPrior

#: Olivero & Longbothum, JQSRT 1977;17:233: Voigt FWHM ~ 0.5346 fL + sqrt(0.2166 fL^2 + fG^2),
#: better than 0.02 %.
_VOIGT_C1, _VOIGT_C2 = 0.5346, 0.2166


def voigt_fwhm_hz(lorentzian_fwhm_hz, gaussian_fwhm_hz):
    """Voigt FWHM from its parts (Olivero & Longbothum 1977, better than 0.02 %)."""
    fl = np.asarray(lorentzian_fwhm_hz, dtype=np.float64)
    fg = np.asarray(gaussian_fwhm_hz, dtype=np.float64)
    return _VOIGT_C1 * fl + np.sqrt(_VOIGT_C2 * fl**2 + fg**2)


def gaussian_fwhm_for_voigt_hz(voigt_fwhm, lorentzian_fwhm_hz):
    """Gaussian FWHM that with ``lorentzian_fwhm_hz`` gives ``voigt_fwhm`` (0 if narrower)."""
    fv = np.asarray(voigt_fwhm, dtype=np.float64)
    fl = np.asarray(lorentzian_fwhm_hz, dtype=np.float64)
    return np.sqrt(np.maximum((fv - _VOIGT_C1 * fl) ** 2 - _VOIGT_C2 * fl**2, 0.0) * (fv > fl))


def gauss_per_s2_from_fwhm_hz(fwhm_hz):
    """``beta`` of ``exp(-beta t^2)`` whose line is ``fwhm_hz`` wide: ``g^2`` of
    :func:`scaloquant.signal.lineshapes.gaussian_damping_from_fwhm_hz`."""
    return np.square(lineshapes.gaussian_damping_from_fwhm_hz(fwhm_hz))


#: Singlets whose rendered width :func:`basis_lines` measures, in this order: (name, window ppm).
WIDTH_SINGLETS: tuple[tuple[str, Range], ...] = (("NAA", (1.9, 2.1)), ("Cr", (2.9, 3.1)))
#: Rows (metabolite dampings) and columns (Gaussian widths) of :class:`BasisLines`' table.
_WIDTH_TABLE_DAMPINGS, _WIDTH_TABLE_GAUSSIANS = 5, 65


@dataclass(frozen=True)
class BasisLines:
    """What a draw needs of the grid its signals will be rendered on (:func:`basis_lines`).

    Attributes
    ----------
    spectrometer_freq_mhz : the grid's field: the prior's ppm ranges are converted to Hz at it.
    linewidth_hz : the basis' lines taken as Lorentzians this wide, Hz, where there is no table.
    damping_per_s : (A,) metabolite dampings ``alpha`` of the table's rows, increasing, A >= 2.
    gaussian_fwhm_hz : (G,) Gaussian widths of its columns, increasing from 0.
    singlet_fwhm_hz : (A, G) FWHM (Hz) of the basis' own singlet (:data:`WIDTH_SINGLETS`)
        rendered on the grid under ``exp(-alpha t)`` and the Gaussian, as
        :func:`~.invivo.render_invivo` renders it, non-decreasing along G; the three are None
        where the basis has no such singlet or it was not measured.
    """

    spectrometer_freq_mhz: float
    linewidth_hz: float
    damping_per_s: np.ndarray | None = None
    gaussian_fwhm_hz: np.ndarray | None = None
    singlet_fwhm_hz: np.ndarray | None = None

    def __post_init__(self) -> None:
        table = (self.damping_per_s, self.gaussian_fwhm_hz, self.singlet_fwhm_hz)
        if all(x is None for x in table):
            return
        if any(x is None for x in table) or np.shape(self.singlet_fwhm_hz) != (
            np.size(self.damping_per_s),
            np.size(self.gaussian_fwhm_hz),
        ):
            raise ValueError("the width table needs (A,) dampings, (G,) Gaussians, (A, G) widths")
        if np.size(self.damping_per_s) < 2:
            raise ValueError("the width table needs at least 2 dampings")

    def gaussian_fwhm_for(self, total_fwhm_hz, damping_per_s) -> np.ndarray:
        """(n,) Gaussian FWHM (Hz) that gives the basis' singlet a total FWHM of
        ``total_fwhm_hz`` under the damping ``damping_per_s`` (n,) each; 0 where the target is
        narrower than the damping alone allows.

        From the table: the Gaussian width is interpolated linearly along each row, then
        between rows (dampings outside the rows take the nearest row). Without a table: the
        Voigt width (:func:`gaussian_fwhm_for_voigt_hz`) with the Lorentzian part
        ``linewidth_hz + alpha / pi``.
        """
        target = np.asarray(total_fwhm_hz, dtype=np.float64)
        alpha = np.asarray(damping_per_s, dtype=np.float64)
        if self.singlet_fwhm_hz is None:
            return gaussian_fwhm_for_voigt_hz(
                target, self.linewidth_hz + lineshapes.lorentzian_fwhm_hz(alpha)
            )
        rows = np.stack(
            [np.interp(target, w, self.gaussian_fwhm_hz) for w in self.singlet_fwhm_hz]
        )  # (A, n)
        a = self.damping_per_s
        pos = np.interp(alpha, a, np.arange(a.size, dtype=np.float64))
        lo = np.minimum(pos.astype(np.int64), a.size - 2)
        frac = pos - lo
        cols = np.arange(target.size)
        return (1.0 - frac) * rows[lo, cols] + frac * rows[lo + 1, cols]


def basis_lines(basis: BasisSet, prior: InvivoPrior) -> BasisLines:
    """Measure :class:`BasisLines` of ``basis`` on its own grid for ``prior``'s draws.

    The basis' lines have widths of their own (the embedded basis' NAA 2.2 Hz, Osprey's 1.1 Hz,
    spant's 1.3 Hz, suspect's 2.3 Hz, of Lorentzian or Gaussian shape), and the grid's length
    truncates them: rather than a model of that, the total width of the first singlet of
    :data:`WIDTH_SINGLETS` in ``basis`` is measured (:func:`scaloquant.signal.snr_fwhm.fwhm_ppm`,
    no baseline removal: it is alone) on ``A`` dampings spanning the prior's metabolite T2 and
    ``G`` Gaussian widths from 0 to the prior's widest singlet, so that a drawn width is the
    rendered one. Without such a singlet, the lines are taken as ``prior.basis_linewidth_hz``
    wide Lorentzians. Cost: ``A G`` zero-filled transforms (0.04 s on 1024 points, 0.4 s on
    8192, on 2 busy cores), once per basis.
    """
    sf = basis.spectrometer_freq_mhz
    names = [canonical(x) for x in basis.names]
    found = [(names.index(n), w) for n, w in WIDTH_SINGLETS if n in names]
    if not found:
        return BasisLines(sf, prior.basis_linewidth_hz)
    index, window = found[0]
    t2_lo, t2_hi = prior.metabolite_t2_range_s
    dampings = np.linspace(1.0 / t2_hi, 1.0 / t2_lo, _WIDTH_TABLE_DAMPINGS)
    gaussians = np.linspace(0.0, prior.singlet_fwhm_range_ppm[1] * sf, _WIDTH_TABLE_GAUSSIANS)
    t = basis.acquisition.time_axis_s()
    gauss = lineshapes.gaussian_decay(
        lineshapes.gaussian_damping_from_fwhm_hz(gaussians)[:, None], t
    )  # (G, N)
    table = (
        np.stack(
            [
                snr_fwhm.fwhm_ppm(
                    basis.fids[index] * np.exp(-a * t) * gauss,
                    basis.dwell_time_s,
                    sf,
                    basis.ppm_reference,
                    window,
                    remove_baseline=False,
                )
                for a in dampings
            ]
        )
        * sf
    )
    if not np.isfinite(table).all():
        return BasisLines(sf, prior.basis_linewidth_hz)
    # the widths grow with the Gaussian; the running maximum keeps the reading's last digits
    # from making a row step back
    return BasisLines(
        sf, prior.basis_linewidth_hz, dampings, gaussians, np.maximum.accumulate(table, axis=1)
    )
