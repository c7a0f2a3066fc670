"""Parametric macromolecule and lipid components at LCModel's positions, for bases without a
measured macromolecule spectrum.

Each component is a sum of Gaussian lines (ppm, FWHM in ppm, relative area), as LCModel
simulates them by default when ``NSIMUL`` > 0: the ``CHSIMU`` entries of LCModel 6.3 (``DATA
chsimu`` in ``LCModel.f``, BSD-3, checked against ``../shared/peers/lcmodel/source``; Lip13 is its
default pair Lip13a + Lip13b, both at 1.28 ppm). Centre and width are the manual's starting values; LCModel lets each line move and
broaden slightly under priors, here the group's shared shift, damping and Gaussian do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

#: name -> ((ppm, FWHM ppm, relative area), ...), LCModel 6.3's default CHSIMU; read-only: the
#: fit and the ``invivo`` simulation both take it.
LCMODEL_COMPONENTS: Mapping[str, tuple[tuple[float, float, float], ...]] = MappingProxyType(
    {
        "MM09": ((0.91, 0.14, 3.0),),
        "MM12": ((1.21, 0.15, 2.0),),
        "MM14": ((1.43, 0.17, 2.0),),
        "MM17": ((1.67, 0.15, 2.0),),
        "MM20": ((2.08, 0.15, 1.33), (2.25, 0.20, 0.33), (1.95, 0.15, 0.33), (3.00, 0.20, 0.40)),
        "Lip09": ((0.89, 0.14, 3.0),),
        "Lip13": ((1.28, 0.15, 2.0), (1.28, 0.089, 2.0)),
        "Lip20": ((2.04, 0.15, 1.33), (2.25, 0.15, 0.67), (2.80, 0.20, 0.87)),
    }
)

#: The macromolecule and the lipid components of :data:`LCMODEL_COMPONENTS`, in its order.
MM_COMPONENTS = tuple(n for n in LCMODEL_COMPONENTS if n.startswith("MM"))
LIPID_COMPONENTS = tuple(n for n in LCMODEL_COMPONENTS if n.startswith("Lip"))


def parametric_components(
    names: tuple[str, ...],
    n_points: int,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    table: Mapping[str, tuple[tuple[float, float, float], ...]] | None = None,
) -> np.ndarray:
    """FIDs ``(len(names), n_points)`` of the named :data:`LCMODEL_COMPONENTS`, internal
    convention, each line ``area exp(2 pi i f t) exp(-beta t^2)`` with ``f`` its frequency (Hz)
    and ``beta = (pi FWHM_hz / 2)^2 / ln 2`` (a Gaussian line of that FWHM). The first point,
    the spectral area, is the sum of the relative areas. ``table``: another table of the same
    form to take the components from (default :data:`LCMODEL_COMPONENTS`)."""
    table = LCMODEL_COMPONENTS if table is None else table
    t = np.arange(n_points) * dwell_time_s
    out = np.zeros((len(names), n_points), dtype=np.complex128)
    for i, name in enumerate(names):
        for ppm, fwhm_ppm, area in table[name]:
            f_hz = (ppm - ppm_reference) * spectrometer_freq_mhz
            beta = (math.pi * fwhm_ppm * spectrometer_freq_mhz / 2) ** 2 / math.log(2)
            out[i] += area * np.exp(2j * np.pi * f_hz * t - beta * t**2)
    return out
