"""Band decimation of the fit's model (:mod:`scaloquant.signal.decimate`): known answers.

The decimated FID's FFT must hold the full FID's window bins; the model formed on the
decimated grid (basis decimated once, lineshape applied per sample, edge rows exact) must
match the full model's window bins within :data:`MAX_RELATIVE_ERROR`; and a basis that the
decimation cannot represent must be refused.
"""

from __future__ import annotations

import numpy as np
import pytest

from scaloquant.io import default_basis
from scaloquant.signal import decimate as dm

N = 2048
DWELL = 0.00025


def _window(n: int = N) -> np.ndarray:
    """Signed bins of a 252-bin window below 0 Hz, as 0.2-4.2 ppm lies at 3 T."""
    return np.arange(-280, -28)


def test_lowpass_taps_meet_their_design() -> None:
    taps = dm.lowpass_taps(400.0, 600.0, 4000.0, 80.0, odd=True)
    assert taps.size % 2 == 1
    assert taps.sum() == pytest.approx(1.0)
    freqs = np.fft.fftfreq(1 << 16, d=1 / 4000.0)
    response = np.abs(np.fft.fft(taps, 1 << 16))
    assert np.all(np.abs(response[np.abs(freqs) <= 400.0] - 1) < 2e-4)
    assert response[np.abs(freqs) >= 600.0].max() < 10 ** (-78 / 20)


def test_decimated_fft_holds_the_window_bins() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, N)) + 1j * rng.normal(size=(3, N))
    dec = dm.band_decimation(np.ones((1, N), complex), DWELL, _window(), 60)
    assert dec is not None and dec.factor == 4
    y = dec.decimate(x)
    assert y.shape == (3, N // 4)
    exact = np.fft.fft(x, axis=-1)[..., _window() % N]
    got = np.fft.fft(y, axis=-1)[..., dec.window_bins]
    # white noise has every bin at the same level: the ripple and the aliases, 1e-4 of it
    assert np.abs(got - exact).max() < 1e-3 * np.abs(exact).mean()
    assert np.all(np.diff(dec.window_bins) == 1)  # one run of bins: a view, not a gather


def test_edge_weights_reproduce_the_circular_filter() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, N)) + 1j * rng.normal(size=(2, N))
    dec = dm.band_decimation(np.ones((1, N), complex), DWELL, _window(), 60)
    edges = dec.edge_values(dec.mixed(x)[..., dec.edge_samples])
    np.testing.assert_allclose(edges, dec.decimate(x)[..., dec.edge_rows], atol=1e-9)
    # only the rows whose filter span wraps around the FID's end are edge rows
    c = (dec.taps.size - 1) // 2
    rows = dec.edge_rows * dec.factor
    assert np.all((rows - c < 0) | (rows + c >= N))


@pytest.mark.parametrize(
    ("damping", "gauss", "shift_hz"), [(3.0, 0.0, 0.0), (25.0, 200.0, 12.0), (40.0, 600.0, -15.0)]
)
def test_model_on_the_decimated_grid_matches_the_full_model(damping, gauss, shift_hz) -> None:
    basis = default_basis()
    n = basis.n_points
    ppm = basis.ppm_axis()
    window = np.flatnonzero((ppm >= 0.2) & (ppm <= 4.2))
    unshifted = np.fft.fftshift(np.arange(n))[window]
    signed = np.where(unshifted < n // 2, unshifted, unshifted - n)
    margin = int(np.ceil(dm.MARGIN_PPM * basis.spectrometer_freq_mhz * basis.dwell_time_s * n))
    dec = dm.band_decimation(basis.fids, basis.dwell_time_s, signed, margin)
    assert dec is not None and dec.factor == 4
    t = basis.time_axis_s()
    shape = np.exp((-damping + 2j * np.pi * shift_hz) * t - gauss * t**2)
    exact = np.fft.fft(basis.fids * shape, axis=-1)[..., unshifted]
    z = dec.decimate(basis.fids) * shape[:: dec.factor]
    z[..., dec.edge_rows] = dec.edge_values(
        dec.mixed(basis.fids)[..., dec.edge_samples] * shape[dec.edge_samples]
    )
    got = np.fft.fft(z, axis=-1)[..., dec.window_bins]
    error = np.abs(got - exact).max(-1) / np.abs(exact).max(-1)
    assert error.max() < dm.MAX_RELATIVE_ERROR


def test_a_line_in_the_transition_band_is_refused() -> None:
    """A basis line just beyond the pass band (where the filter is not flat) would reach the
    window with a wrong tail: the check must decline that decimation."""
    t = np.arange(N) * DWELL
    bin_hz = 1 / (N * DWELL)
    window = _window()
    centre = (window.min() + window.max() + 1) // 2
    dec = dm.band_decimation(np.ones((1, N), complex), DWELL, window, 60)
    pass_bins = (window.max() - centre) + 60
    stop_bins = N // dec.factor - pass_bins
    line_hz = (centre + 0.5 * (pass_bins + stop_bins)) * bin_hz  # mid-transition
    fids = np.exp((2j * np.pi * line_hz - 3.0) * t)[None, :]
    chosen = dm.band_decimation(fids, DWELL, window, 60)
    assert chosen is None or chosen.factor < dec.factor
