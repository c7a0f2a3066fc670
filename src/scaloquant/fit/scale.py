"""The scale of a basis set: its signal per proton.

A basis FID simulated for one molecule starts at ``n_protons * u`` for uncoupled spins (coupled
metabolites lose first-point signal to J-evolution by the echo time), so ``u`` is measured on a
singlet-only metabolite: the lines of Cr (else PCr, else sIns) in their band, extrapolated to
``t = 0`` (:func:`scaloquant.signal.water.band_amplitude`), over its proton count. Concentrations
in mM (:mod:`scaloquant.quantify.water`) and the parametric macromolecule components (whose
amplitudes LCModel states in protons, :mod:`scaloquant.physics.macromolecules`) use it.
"""

from __future__ import annotations

import numpy as np

from ..errors import IncompatibleDataError
from ..types import Acquisition, BasisSet

#: Metabolites made of uncoupled singlets only, with their protons and the band (ppm) that holds
#: their lines (Cr/PCr 3.03 and 3.92, sIns 3.34, with room for another basis' referencing) and
#: no exchangeable NH line (Cr 6.6 ppm in some bases): their lines start at exactly
#: ``protons * u`` at any echo time, so they measure ``u`` (first found is used).
REFERENCE_SINGLETS: tuple[tuple[str, int, tuple[float, float]], ...] = (
    ("Cr", 5, (2.6, 4.3)),
    ("PCr", 5, (2.6, 4.3)),
    ("sIns", 6, (3.0, 3.7)),
)


def _band_amplitude(
    fids: np.ndarray, acquisition: Acquisition, band_ppm: tuple[float, float]
) -> np.ndarray:
    from ..signal.water import band_amplitude

    return band_amplitude(
        fids,
        acquisition.dwell_time_s,
        acquisition.spectrometer_freq_mhz,
        acquisition.ppm_reference,
        band_ppm,
    )


def signal_per_proton(basis: BasisSet) -> tuple[float, str]:
    """``u``, the basis' first-point signal per proton, and the singlet metabolite it was
    measured on (see the module docstring).

    Raises
    ------
    IncompatibleDataError
        The basis holds none of :data:`REFERENCE_SINGLETS`.
    """
    for name, protons, band in REFERENCE_SINGLETS:
        if name in basis.names:
            fid = basis.fids[basis.index(name)]
            return float(abs(_band_amplitude(fid, basis.acquisition, band))) / protons, name
    names = ", ".join(n for n, *_ in REFERENCE_SINGLETS)
    raise IncompatibleDataError(
        f"the basis set has none of {names}, whose proton count calibrates its scale; "
        "concentrations in mM cannot be computed (amplitudes and ratios can)"
    )
