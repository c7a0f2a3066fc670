"""The fit figure of one spectrum; it lives in :mod:`scaloquant.report.figures` with the
report's other figures."""

from __future__ import annotations

from ..report.figures import PPM_RANGE, plot_fit

__all__ = ["PPM_RANGE", "plot_fit"]
