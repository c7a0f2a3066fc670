"""Classical linear-combination model fitting of MRS spectra with Cramér–Rao lower bounds.

The reference for every learned estimate: the basis' FIDs, each with a non-negative amplitude, an
extra damping and a shift (per metabolite or grouped), a global zero- and first-order phase, an
optional Gaussian broadening and polynomial baseline, fitted over a ppm window in the frequency
domain by variable projection with Levenberg–Marquardt, many spectra in one torch program
(:mod:`scaloquant.fit.batched`). :func:`fit_spectra` fits a batch and returns a :class:`FitResult`
with every amplitude's Cramér–Rao bound as an SD and as a % (LCModel's %SD);
:func:`fit_given_amplitudes` fits only the nonlinear parameters around given amplitudes (a
network's), for its fit figure and as a start (:meth:`FitStart.from_result`) of a full fit.
"""

from .config import FitConfig
from .result import FitResult, FitSpectra, FitStart, phase_corrected
from .spectra import fit_given_amplitudes, fit_spectra, fitted_spectra

__all__ = [
    "FitConfig",
    "FitResult",
    "FitSpectra",
    "FitStart",
    "fit_given_amplitudes",
    "fit_spectra",
    "fitted_spectra",
    "phase_corrected",
]
