"""Apply a trained model (``quantify``) or the classical fit (``fit``) to real files.

Public API::

    inputs = read_inputs(["svs.nii.gz"], water=["water.nii.gz"])   # -> [SpectraInput]
    run = quantify_inputs(inputs, load_model("model.ckpt"))        # -> Run (models.load_model)
    run = fit_inputs(inputs, default_basis(), basis_name="default")
    write_run(run, "out/")           # scaloquant.report.write_run: results.csv, maps, ...

Water scaling (mM) is in :mod:`scaloquant.quantify.water`.
"""

from ..fit.scale import signal_per_proton
from .fit_run import fit_inputs
from .gather import Options, Run
from .inputs import MMSpectrumFile, SpectraInput, read_inputs, read_mm_spectra, read_water
from .results import COLUMN_DESCRIPTIONS, SpectraResult, tcr_ratios
from .run import model_basis, quantify_inputs
from .water import (
    WaterScaling,
    concentrations_mM,
    metabolite_relaxation_correction,
    relaxation_corrected_water_mM,
    water_area,
)

__all__ = [
    "COLUMN_DESCRIPTIONS",
    "MMSpectrumFile",
    "Options",
    "Run",
    "SpectraInput",
    "SpectraResult",
    "WaterScaling",
    "concentrations_mM",
    "fit_inputs",
    "metabolite_relaxation_correction",
    "model_basis",
    "quantify_inputs",
    "read_inputs",
    "read_mm_spectra",
    "read_water",
    "relaxation_corrected_water_mM",
    "signal_per_proton",
    "tcr_ratios",
    "water_area",
]
