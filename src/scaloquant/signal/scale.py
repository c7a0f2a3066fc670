"""The scale of a basis set: its signal per proton.

A basis FID simulated for one molecule starts at ``n_protons * u`` for uncoupled spins (coupled
metabolites lose first-point signal to J-evolution by the echo time), so ``u`` is measured on a
singlet-only metabolite: the lines of Cr (else PCr, else sIns) in their band, extrapolated to
``t = 0`` (:func:`scaloquant.signal.water.band_amplitude`), over its proton count. ``u`` differs
between bases by orders of magnitude (1 for the embedded ISMRM 2016 basis, 0.25 for suspect's
Siemens basis, 16 for spant's, 0.009 for Osprey's). Concentrations in mM
(:mod:`scaloquant.quantify.water`) and the parametric macromolecule and lipid components (whose
amplitudes LCModel states in protons, :mod:`scaloquant.physics.macromolecules`), in the fit
(:func:`scaloquant.fit.problem.prepare_basis`) and in the ``invivo`` simulation alike
(:func:`scaloquant.simulate.invivo.render_invivo`), use it. Here on arrays, so that both rooms
share it; :func:`scaloquant.fit.scale.signal_per_proton` takes a basis set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import IncompatibleDataError
from .grid import Acquisition

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
    from .water import band_amplitude

    return band_amplitude(
        fids,
        acquisition.dwell_time_s,
        acquisition.spectrometer_freq_mhz,
        acquisition.ppm_reference,
        band_ppm,
    )


def signal_per_proton(
    names: Sequence[str], fids: np.ndarray, acquisition: Acquisition
) -> tuple[float, str]:
    """``u``, the first-point signal per proton of the basis FIDs ``fids`` ``(M, N)`` named
    ``names`` on ``acquisition``, and the singlet metabolite it was measured on (see the module
    docstring).

    Raises
    ------
    IncompatibleDataError
        ``names`` holds none of :data:`REFERENCE_SINGLETS`.
    """
    names = list(names)
    for name, protons, band in REFERENCE_SINGLETS:
        if name in names:
            fid = fids[names.index(name)]
            return float(abs(_band_amplitude(fid, acquisition, band))) / protons, name
    listed = ", ".join(n for n, *_ in REFERENCE_SINGLETS)
    raise IncompatibleDataError(
        f"the basis set has none of {listed}, whose proton count calibrates its scale; "
        "concentrations in mM cannot be computed (amplitudes and ratios can)"
    )


def component_unit(names: Sequence[str], fids: np.ndarray, acquisition: Acquisition) -> float:
    """The scale of a parametric macromolecule or lipid component's amplitude with these basis
    FIDs: ``u`` (:func:`signal_per_proton`), so that an amplitude counts protons of the basis'
    scale as LCModel states it; 1 (units of the components' relative areas) when the basis has
    no singlet to measure ``u`` on. The fit's components and the simulation's take it."""
    try:
        return signal_per_proton(names, fids, acquisition)[0]
    except IncompatibleDataError:
        return 1.0
