"""A small network configuration shared by the model tests (imported by file name: pytest puts
this folder on ``sys.path``)."""

from __future__ import annotations

from scaloquant.models import QuantifierConfig
from scaloquant.scalogram import ScalogramConfig

#: 32 scales, decimated 16x: a scalogram small enough for unit tests.
SMALL_SCALOGRAM = ScalogramConfig.preset("cpu", n_scales=32, decimation=16)


def small_config(basis, model, **kw) -> QuantifierConfig:
    """A narrow network on ``basis``' grid; ``kw`` overrides any field."""
    base = dict(
        model=model,
        metabolites=basis.names,
        n_points=basis.n_points,
        dwell_time_s=basis.dwell_time_s,
        spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
        ppm_reference=basis.ppm_reference,
        widths=(4, 4, 8, 8, 8, 8),
        scalogram=SMALL_SCALOGRAM.to_dict() if model == "scalogram_cnn" else None,
    )
    return QuantifierConfig(**{**base, **kw})
