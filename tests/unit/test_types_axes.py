"""Known-answer tests of the internal convention and the frozen types."""

import numpy as np
import pytest

from scaloquant.errors import InvalidDataError, UnknownMetaboliteError
from scaloquant.signal import axes
from scaloquant.types import FID, BasisSet

DWELL_S = 2.5e-4
MHZ = 123.2
N = 2048


def lorentzian_fid(shift_ppm: float, n: int = N, damping_per_s: float = 8.0) -> np.ndarray:
    t = axes.time_axis_s(n, DWELL_S)
    f_hz = axes.ppm_to_hz(shift_ppm, MHZ, 4.65)
    return np.exp((-damping_per_s + 2j * np.pi * f_hz) * t)


def test_positive_frequency_lands_at_higher_ppm():
    fid = FID(lorentzian_fid(2.01), DWELL_S, MHZ, 4.65)
    spec = fid.spectrum()
    peak_ppm = fid.ppm_axis()[np.argmax(spec.real)]
    assert abs(peak_ppm - 2.01) < 1.0 / (N * DWELL_S) / MHZ  # within one bin (0.016 ppm)
    assert np.all(np.diff(fid.ppm_axis()) > 0)


def test_axes_are_consistent():
    f = axes.frequency_axis_hz(N, DWELL_S)
    assert f[N // 2] == 0.0
    assert f[0] == pytest.approx(-2000.0)
    ppm = axes.ppm_axis(N, DWELL_S, MHZ, 4.65)
    assert ppm[N // 2] == pytest.approx(4.65)
    assert axes.hz_to_ppm(axes.ppm_to_hz(3.0, MHZ, 4.65), MHZ, 4.65) == pytest.approx(3.0)
    x = lorentzian_fid(3.0)
    np.testing.assert_allclose(axes.fid_from_spectrum(axes.spectrum(x)), x, atol=1e-12)


def test_fid_is_frozen_and_copies_input():
    data = lorentzian_fid(2.0)
    fid = FID(data, DWELL_S, MHZ)
    data[0] = 99
    assert fid.samples[0] != 99
    with pytest.raises(ValueError):
        fid.samples[0] = 1
    with pytest.raises(AttributeError):
        fid.dwell_time_s = 1.0  # type: ignore[misc]
    assert fid.acquisition.spectral_width_hz == pytest.approx(4000.0)
    assert fid.acquisition.field_strength_t == pytest.approx(2.894, abs=1e-3)


def test_fid_takes_a_handed_over_array_and_copies_any_other():
    data = lorentzian_fid(2.0).astype(np.complex128)
    data.setflags(write=False)  # read-only and owning its memory: handed over, kept as is
    assert FID(data, DWELL_S, MHZ).samples is data
    # a read-only view of a writable array is copied (the writable one could change it)
    source = lorentzian_fid(2.0).astype(np.complex128)
    view = source[:]
    view.setflags(write=False)
    fid = FID(view, DWELL_S, MHZ)
    assert fid.samples is not view
    source[0] = 99
    assert fid.samples[0] != 99
    # a FID made from another's samples shares them (both read-only), reshaped too
    assert FID(fid.samples, DWELL_S, MHZ).samples is fid.samples
    grid = FID(np.stack([data, data]).reshape(2, 1, -1), DWELL_S, MHZ)
    flat = FID(grid.samples.reshape(2, -1), DWELL_S, MHZ)
    assert np.shares_memory(flat.samples, grid.samples)
    with pytest.raises(ValueError):
        flat.samples.setflags(write=True)  # its owner is read-only
    # a read-only reshape of a writable array is copied
    writable = np.stack([data, data])
    frozen_view = writable.reshape(2, 1, -1)
    frozen_view.setflags(write=False)
    assert not np.shares_memory(FID(frozen_view, DWELL_S, MHZ).samples, writable)
    # other dtypes are copied into complex128
    assert FID(data.astype(np.complex64), DWELL_S, MHZ).samples.dtype == np.complex128


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fid_rejects_non_finite_samples(bad):
    data = lorentzian_fid(2.0)
    data[10] = bad
    with pytest.raises(InvalidDataError, match="NaN or Inf"):
        FID(data, DWELL_S, MHZ)


@pytest.mark.parametrize("dwell, mhz", [(0.0, MHZ), (-1.0, MHZ), (DWELL_S, 0.0), (DWELL_S, np.nan)])
def test_fid_rejects_bad_acquisition(dwell, mhz):
    with pytest.raises(InvalidDataError):
        FID(lorentzian_fid(2.0), dwell, mhz)


def test_basis_subset_index_and_hash():
    fids = np.stack([lorentzian_fid(p) for p in (2.0, 3.0, 3.2)])
    basis = BasisSet(("NAA", "Cr", "Cho"), fids, DWELL_S, MHZ)
    sub = basis.subset(["Cho", "NAA"])
    assert sub.names == ("Cho", "NAA")
    np.testing.assert_array_equal(sub.fids[1], basis.fids[0])
    assert basis.truncated(1536).n_points == 1536
    assert basis.content_hash() != sub.content_hash()
    assert basis.content_hash() == BasisSet(basis.names, fids, DWELL_S, MHZ).content_hash()
    with pytest.raises(UnknownMetaboliteError, match="NAA, Cr, Cho"):
        basis.index("Glx")


def test_basis_rejects_duplicates_and_mismatched_names():
    fids = np.stack([lorentzian_fid(2.0)] * 2)
    with pytest.raises(InvalidDataError, match="duplicate"):
        BasisSet(("NAA", "NAA"), fids, DWELL_S, MHZ)
    with pytest.raises(InvalidDataError, match="names"):
        BasisSet(("NAA",), fids, DWELL_S, MHZ)
