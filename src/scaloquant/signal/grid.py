"""The sampling grid of a FID or a basis set: :class:`Acquisition`.

It sits in ``signal`` (below :mod:`scaloquant.types`, which re-exports it) because the grid is
part of the convention of :mod:`.axes`: the pure functions that compare or convert grids
(:mod:`.match`) need it, and they must not import the data types built on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import axes

#: 1H gyromagnetic ratio / (2 pi), MHz per tesla (CODATA 2018: 42.577 478 MHz/T).
GAMMA_1H_MHZ_PER_T = 42.577478


@dataclass(frozen=True)
class Acquisition:
    """The sampling grid shared by FIDs and basis sets.

    Attributes
    ----------
    n_points : number of complex time-domain samples.
    dwell_time_s : sampling interval in seconds (1 / spectral width).
    spectrometer_freq_mhz : nucleus Larmor frequency in MHz (sets the Hz <-> ppm scale).
    ppm_reference : chemical shift of the receiver frequency (0 Hz), ppm.
    nucleus : e.g. ``"1H"``.
    """

    n_points: int
    dwell_time_s: float
    spectrometer_freq_mhz: float
    ppm_reference: float = axes.DEFAULT_PPM_REFERENCE_1H
    nucleus: str = "1H"

    @classmethod
    def of(cls, grid: Any) -> Acquisition:
        """The grid of any object with these five attributes (an FID, a basis set, a model's
        configuration), as an :class:`Acquisition`."""
        return cls(
            grid.n_points,
            grid.dwell_time_s,
            grid.spectrometer_freq_mhz,
            grid.ppm_reference,
            grid.nucleus,
        )

    def to_dict(self) -> dict[str, Any]:
        """The five fields as plain numbers and a string, in this order (for YAML and JSON
        records: ``train``'s ``data.acquisition``, ``simulate --grid-from``'s ``grid``)."""
        return {
            "n_points": int(self.n_points),
            "dwell_time_s": float(self.dwell_time_s),
            "spectrometer_freq_mhz": float(self.spectrometer_freq_mhz),
            "ppm_reference": float(self.ppm_reference),
            "nucleus": str(self.nucleus),
        }

    @property
    def spectral_width_hz(self) -> float:
        return 1.0 / self.dwell_time_s

    @property
    def field_strength_t(self) -> float:
        """Nominal B0 in tesla for 1H (42.577 MHz/T); other nuclei are not converted."""
        return self.spectrometer_freq_mhz / GAMMA_1H_MHZ_PER_T

    def time_axis_s(self) -> np.ndarray:
        return axes.time_axis_s(self.n_points, self.dwell_time_s)

    def frequency_axis_hz(self) -> np.ndarray:
        return axes.frequency_axis_hz(self.n_points, self.dwell_time_s)

    def ppm_axis(self) -> np.ndarray:
        return axes.ppm_axis(
            self.n_points, self.dwell_time_s, self.spectrometer_freq_mhz, self.ppm_reference
        )

    def describe(self) -> str:
        return (
            f"{self.n_points} points, dwell {self.dwell_time_s * 1e3:g} ms "
            f"({self.spectral_width_hz:g} Hz), {self.spectrometer_freq_mhz:g} MHz "
            f"({self.field_strength_t:.2f} T {self.nucleus}), 0 Hz = {self.ppm_reference:g} ppm"
        )
