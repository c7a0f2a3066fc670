"""The basis resampled to the data's grid keeps every line at its ppm and its area."""

from __future__ import annotations

import numpy as np
import pytest

from _shared import INVIVO
from scaloquant.errors import IncompatibleDataError
from scaloquant.fit.basis_grid import basis_on_grid, basis_reference_from_singlets
from scaloquant.signal import axes
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


def test_a_small_rescaling_is_reported_with_the_digits_that_tell_the_frequencies_apart():
    """The spant Philips file records 127.786142 MHz and its LCModel basis 127.7861 (0.33 ppm
    of the frequency apart): the sentence said "rescaled from 127.786 to 127.786 MHz" and
    "re-labelled 0.5 -> 0.5 ms", as if nothing had changed."""
    basis = lorentzian_basis(2.01, freq_mhz=127.7861, dwell=5e-4, n=1024, ref=4.65)
    _, conversions = basis_on_grid(basis, Acquisition(1024, 5e-4, 127.786142, 4.65))
    assert conversions == (
        "basis rescaled from 127.7861 to 127.78614 MHz keeping chemical shifts (dwell time "
        "re-labelled 0.5 -> 0.4999998 ms)",
    )


def singlet_basis(ref_written: float, ref_read: float, with_cr: bool = True) -> BasisSet:
    """NAA (2.008 ppm) and Cr (3.027 ppm) singlets written with 0 Hz at ``ref_written`` and
    labelled as if 0 Hz were ``ref_read`` (what a ``.BASIS`` without its reference gives)."""
    n, dwell, mhz = 2048, 2.5e-4, 127.75
    t = np.arange(n) * dwell
    names = ("NAA", "Cr") if with_cr else ("NAA", "Glu")
    fids = np.stack(
        [np.exp((2j * np.pi * (p - ref_written) * mhz - np.pi * 2.0) * t) for p in (2.008, 3.027)]
    )
    return BasisSet(names, fids, dwell, mhz, ref_read)


def test_basis_reference_found_from_its_singlets():
    """A basis written with 0 Hz at 4.68 ppm but read as 4.65 (Osprey's .BASIS) is corrected
    to 4.68; one whose singlets sit where they belong, or that lacks Cr, is left alone."""
    out, note = basis_reference_from_singlets(singlet_basis(4.68, 4.65))
    assert out.ppm_reference == pytest.approx(4.68) and len(note) == 1
    assert "4.68" in note[0]
    same = singlet_basis(4.65, 4.65)
    assert basis_reference_from_singlets(same) == (same, ())
    no_cr = singlet_basis(4.68, 4.65, with_cr=False)
    assert basis_reference_from_singlets(no_cr) == (no_cr, ())


@pytest.mark.skipif(not INVIVO.is_dir(), reason="../shared/data/invivo is absent")
def test_osprey_basis_reference_is_4_68_and_lcmodel_bases_4_65():
    """Osprey's LCModel basis puts 0 Hz at 4.68 ppm (its NAA reads 1.978 ppm at 4.65); the
    spant, LCModel (suspect) and embedded bases are at 4.65 and stay untouched."""
    from scaloquant.io import default_basis, read_basis

    osprey = read_basis(
        INVIVO / "philips-press-osprey/basis_philips_press35/3T_PRESS_Philips_35ms_noMM.BASIS"
    )
    assert basis_reference_from_singlets(osprey)[0].ppm_reference == pytest.approx(4.68)
    for basis in (
        default_basis(),
        read_basis(INVIVO / "siemens-press30-suspect/press_30ms_3T.basis"),
        read_basis(INVIVO / "philips-press30-spant/lcmodel_reference/3t.basis"),
    ):
        assert basis_reference_from_singlets(basis)[1] == ()
