"""The batched physics model of MRS signals in torch, shared by the fit and the simulator.

Pure functions, batch dimension first, on the device and precision of their inputs (float64 /
complex128 for the fit). :mod:`.model` holds the signal model (basis FIDs, metabolite groups
sharing a Voigt lineshape and a shift, per-metabolite deviations, global phases, the window of
the spectrum); :mod:`.baseline` the baseline designs (Legendre polynomials, penalised cubic
B-splines and the stiffness rule); :mod:`.macromolecules` LCModel's parametric macromolecule and
lipid components; :mod:`.priors` LCModel's soft priors on amplitude ratios (``CHRATO``).
"""

from .baseline import bspline_baseline, legendre_baseline, smoothing_for_ed
from .macromolecules import LCMODEL_COMPONENTS, parametric_components
from .model import (
    lineshape_rates,
    modulated_fids,
    phase_factor,
    synthesize,
    window_columns,
)

__all__ = [
    "LCMODEL_COMPONENTS",
    "bspline_baseline",
    "legendre_baseline",
    "lineshape_rates",
    "modulated_fids",
    "parametric_components",
    "phase_factor",
    "smoothing_for_ed",
    "synthesize",
    "window_columns",
]
