"""The basis resampled to the data's grid keeps every line at its ppm and its area."""

from __future__ import annotations

import numpy as np
import pytest

from scaloquant.errors import IncompatibleDataError
from scaloquant.signal import axes
from scaloquant.signal.basis_grid import basis_on_grid
from scaloquant.types import Acquisition, BasisSet


def lorentzian_basis(ppm: float, freq_mhz=123.261703, dwell=2.5e-4, n=2048, ref=4.65):
    t = np.arange(n) * dwell
    f = (ppm - ref) * freq_mhz
    fid = np.exp((2j * np.pi * f - np.pi * 2.0) * t)  # 2 Hz FWHM
    return BasisSet(("X",), fid[None], dwell, freq_mhz, ref)


def peak_ppm_and_area(basis: BasisSet) -> tuple[float, float]:
    n_fft = 16 * basis.n_points
    spec = axes.spectrum(basis.fids[0], n_fft).real
    ppm = axes.ppm_axis(n_fft, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    return float(ppm[np.argmax(spec)]), float(basis.fids[0, 0].real)


def test_philips_grid_keeps_a_201_ppm_line_at_its_ppm_and_area():
    """4000 Hz / 2048 points / 123.26 MHz -> 2000 Hz / 1024 points / 127.79 MHz, 4.7 ppm
    reference: the peak stays within 0.002 ppm (a quarter of the 16x zero-filled bin) and the
    area (first point) within 1e-3."""
    basis = lorentzian_basis(2.01)
    target = Acquisition(1024, 5e-4, 127.786142, 4.7)
    out, conversions = basis_on_grid(basis, target)
    assert out.acquisition == target
    assert len(conversions) == 4
    ppm, area = peak_ppm_and_area(out)
    assert ppm == pytest.approx(2.01, abs=2e-3)
    assert area == pytest.approx(1.0, rel=1e-3)
    full_area = np.sum(axes.spectrum(out.fids[0]).real) / out.n_points
    assert full_area == pytest.approx(1.0, rel=1e-2)


def test_same_grid_is_returned_unchanged_and_other_fields_refused():
    basis = lorentzian_basis(2.01)
    same, conversions = basis_on_grid(basis, basis.acquisition)
    assert same is basis and conversions == ()
    with pytest.raises(IncompatibleDataError, match="field"):
        basis_on_grid(basis, Acquisition(2048, 2.5e-4, 297.2))
    with pytest.raises(IncompatibleDataError, match="31P"):
        basis_on_grid(basis, Acquisition(2048, 2.5e-4, 123.261703, nucleus="31P"))
