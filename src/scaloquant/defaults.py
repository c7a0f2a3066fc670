"""Defaults that a fast front end reads without loading numpy: one place for each, used by the
library (:class:`scaloquant.quantify.Options`, :class:`scaloquant.quantify.WaterScaling`,
:func:`scaloquant.simulate.simulate_dataset`) and by the CLI's flags (``scaloquant quantify
--help`` and ``simulate --help`` stay fast because this module imports nothing).

Water scaling: the ISMRM 2016 fitting challenge's tissue and relaxation values (its README), with
CSF from Ernst, Kreis & Ross (J Magn Reson B 1993;102:1-8, water content) and about 2 s of T2 at
3 T; see :mod:`scaloquant.quantify.water`.
"""

from __future__ import annotations

#: Tissue classes of the per-tissue water-scaling values, in their order.
TISSUES: tuple[str, str, str] = ("GM", "WM", "CSF")
#: Volume fractions of GM, WM and CSF in the voxel.
TISSUE_FRACTIONS: tuple[float, float, float] = (0.6, 0.4, 0.0)
#: Water content of GM, WM and CSF, g/ml.
WATER_CONTENT_G_PER_ML: tuple[float, float, float] = (0.78, 0.65, 0.97)
#: Water T2 of GM, WM and CSF, ms.
WATER_T2_MS: tuple[float, float, float] = (110.0, 80.0, 2030.0)
#: T2 of every metabolite, ms.
METABOLITE_T2_MS = 160.0
#: Echo time of data and water reference when neither the file nor the basis states one, ms.
ECHO_TIME_MS = 30.0
#: Fit figures drawn at most per run (for the flagged spectra, then those of highest SNR).
MAX_FIGURES = 16
#: Fit figures drawn per MRSI input by ``fit`` (voxels at evenly spaced ranks of the fit
#: residual: best, quartiles, median, worst); its maps are what a user of a slice reads first.
MRSI_FIGURES = 5
#: Signals per chunk that :func:`scaloquant.simulate.simulate_dataset` makes and ``scaloquant
#: simulate`` writes at a time (about 32 MB of complex128 FIDs of 2048 points); the data do not
#: depend on it. Here, not in the simulator (torch), so that ``simulate``'s parser reads it.
SIMULATION_CHUNK_SIZE = 2048
