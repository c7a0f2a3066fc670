"""Input transforms that turn complex FIDs into network inputs, as modules saved with the model.

Which time points each model sees
---------------------------------
* Scalogram CNN: the first ``ScalogramConfig.n_points`` samples (the paper: 1536 of 2048; it cut
  the last 512 "to reduce the amount of computation for the CWC calculation").
* Spectrum CNN: by default the FFT of the *whole* FID (2048 points). The paper's frequency-domain
  network stands in for Hatami et al., who fed the spectrum of the full FID; the paper truncated
  only because of the wavelet transform's cost, not to remove information. Set
  ``spectrum_n_points=1536`` for a comparison on exactly the samples the scalogram sees. In the
  default simulation the last 512 samples hold 0.03 % of a signal's energy on average (0.3 % at
  most; measured on 1000 signals), so the choice changes little; the option lets one check.
* An optional ppm window crops the spectrum (e.g. ``(0.2, 4.3)``), which shrinks the input about
  8-fold at 3 T since the basis has no signal outside the metabolite region.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..signal import axes


def spectrum_bins(
    n_points: int,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    ppm_reference: float,
    ppm_range: Sequence[float] | None,
) -> tuple[int, int]:
    """Index range ``[start, stop)`` of the spectrum bins inside ``ppm_range`` (all when None)."""
    if ppm_range is None:
        return 0, n_points
    low, high = sorted(float(p) for p in ppm_range)
    ppm = axes.ppm_axis(n_points, dwell_time_s, spectrometer_freq_mhz, ppm_reference)
    inside = np.flatnonzero((ppm >= low) & (ppm <= high))
    if inside.size < 2:
        raise ConfigError(
            f"ppm range [{low}, {high}] holds {inside.size} spectrum bins; the spectrum spans "
            f"{ppm[0]:.2f} to {ppm[-1]:.2f} ppm"
        )
    return int(inside[0]), int(inside[-1]) + 1


class SpectrumTransform(nn.Module):
    """Complex FID ``(..., n_in)`` -> real ``(..., 2, stop - start)``: real and imaginary parts of
    ``fftshift(fft(fid[..., :n_points]))`` (:mod:`scaloquant.signal.axes` convention), bins
    ``start:stop``.

    The FFT is unitary (``norm="ortho"``), so a FID of unit RMS gives a spectrum of unit RMS.
    """

    def __init__(self, n_points: int, bins: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.n_points = int(n_points)
        self.bins = (0, self.n_points) if bins is None else (int(bins[0]), int(bins[1]))
        if not 0 <= self.bins[0] < self.bins[1] <= self.n_points:
            raise ConfigError(f"spectrum bins {self.bins} do not fit {self.n_points} points")

    @property
    def output_shape(self) -> tuple[int, int]:
        return 2, self.bins[1] - self.bins[0]

    def forward(self, fid: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.fftshift(torch.fft.fft(fid[..., : self.n_points], norm="ortho"), dim=-1)
        spec = spec[..., self.bins[0] : self.bins[1]]
        return torch.stack((spec.real, spec.imag), dim=-2)
