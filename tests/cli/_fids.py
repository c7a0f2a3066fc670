"""A FID on a basis' grid, shared by the CLI tests (imported by file name: pytest puts this
folder on ``sys.path``)."""

from __future__ import annotations

from scaloquant.types import FID


def fid_on_grid(basis, samples, **kw) -> FID:
    """``samples`` on ``basis``' dwell time, frequency and reference; ``kw`` overrides any."""
    grid = dict(
        dwell_time_s=basis.dwell_time_s,
        spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
        ppm_reference=basis.ppm_reference,
    )
    return FID(samples=samples, **{**grid, **kw})
