"""Apply a trained model (``quantify``) or the classical fit (``fit``) to real files.

Public API::

    inputs = read_inputs(["svs.nii.gz"], water=["water.nii.gz"])   # -> [SpectraInput]
    run = quantify_inputs(inputs, load_model("model.ckpt"))        # -> Run (models.load_model)
    run = fit_inputs(inputs, default_basis(), basis_name="default")
    write_run(run, "out/")           # scaloquant.report.write_run: results.csv, maps, ...

Water scaling (mM) is in :mod:`scaloquant.quantify.water`, the options in
:mod:`scaloquant.quantify.options`. The names below load their module on first use (PEP 562), so
that the CLI can read the defaults of :class:`Options` and :class:`WaterScaling` without
importing the fit (torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "COLUMN_DESCRIPTIONS": ".results",
    "Options": ".options",
    "Run": ".run",
    "SpectraInput": ".inputs",
    "SpectraResult": ".results",
    "WaterScaling": ".water",
    "concentrations_mM": ".water",
    "fit_inputs": ".run",
    "metabolite_relaxation_correction": ".water",
    "model_basis": ".run",
    "quantify_inputs": ".run",
    "read_inputs": ".inputs",
    "read_water": ".inputs",
    "relaxation_corrected_water_mM": ".water",
    "signal_per_proton": ".water",
    "tcr_ratios": ".results",
    "water_area": ".water",
}

__all__ = [
    "COLUMN_DESCRIPTIONS",
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
    "read_water",
    "relaxation_corrected_water_mM",
    "signal_per_proton",
    "tcr_ratios",
    "water_area",
]

if TYPE_CHECKING:
    from .inputs import SpectraInput, read_inputs, read_water
    from .options import Options
    from .results import COLUMN_DESCRIPTIONS, SpectraResult, tcr_ratios
    from .run import Run, fit_inputs, model_basis, quantify_inputs
    from .water import (
        WaterScaling,
        concentrations_mM,
        metabolite_relaxation_correction,
        relaxation_corrected_water_mM,
        signal_per_proton,
        water_area,
    )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value
