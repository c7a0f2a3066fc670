"""Known answers for the Morse wavelet and MATLAB's default scales (values from morse-cwt.md,
MATLAB's documented cwtfreqbounds(1000) = [0.0033, 0.4341]); filters against independent
evaluations: high-precision mpmath and ssqueezepy's gmw filters (optional)."""

import math

import numpy as np
import pytest
from scipy import integrate

from scaloquant.scalogram import morse

GAMMA, BETA = 3.0, 20.0


def test_peak_frequency_and_peak_value():
    w_psi = morse.peak_frequency(GAMMA, BETA)
    assert w_psi == pytest.approx((20 / 3) ** (1 / 3), rel=1e-15)
    assert w_psi == pytest.approx(1.88207, abs=5e-6)
    # L1 normalisation: the peak is 2, and it is the maximum.
    grid = np.linspace(0.01, 6, 20001)
    values = morse.morse_frequency_response(grid)
    assert morse.morse_frequency_response(np.array([w_psi]))[0] == pytest.approx(2.0, rel=1e-15)
    assert values.max() <= 2.0 + 1e-15


def test_zero_for_non_positive_frequencies():
    assert np.all(morse.morse_frequency_response(np.array([-3.0, -1e-9, 0.0])) == 0.0)


def test_time_spread_closed_form_matches_quadrature():
    # Independent route: numerical quadrature of MATLAB's definition.
    def psi(w):
        return morse.morse_frequency_response(np.array([w]))[0]

    def dpsi(w):
        return psi(w) * (BETA / w - GAMMA * w ** (GAMMA - 1))

    num = integrate.quad(lambda w: dpsi(w) ** 2, 0, 8, epsabs=0, epsrel=1e-13, limit=200)[0]
    den = integrate.quad(lambda w: psi(w) ** 2, 0, 8, epsabs=0, epsrel=1e-13, limit=200)[0]
    quad = morse.peak_frequency() * math.sqrt(num / den)
    assert morse.time_spread(GAMMA, BETA) == pytest.approx(quad, rel=1e-11)
    assert morse.time_spread(GAMMA, BETA) == pytest.approx(5.50077, abs=5e-6)


def test_time_spread_other_parameters_match_quadrature():
    g, b = 2.0, 7.0
    w = np.linspace(1e-6, 12, 400001)
    psi = morse.morse_frequency_response(w, g, b)
    dpsi = psi * (b / w - g * w ** (g - 1))
    quad = morse.peak_frequency(g, b) * math.sqrt(
        integrate.simpson(dpsi**2, x=w) / integrate.simpson(psi**2, x=w)
    )
    assert morse.time_spread(g, b) == pytest.approx(quad, rel=1e-8)


def test_smallest_scale_puts_half_peak_at_nyquist():
    w_c = morse.nyquist_level_frequency(GAMMA, BETA, 0.5)
    assert w_c == pytest.approx(2.1677, abs=5e-5)
    assert morse.morse_frequency_response(np.array([w_c]))[0] == pytest.approx(1.0, rel=1e-12)
    smallest, largest = morse.default_scale_span(1536)
    assert smallest == pytest.approx(0.68999, abs=5e-6)
    assert largest == pytest.approx(139.617, abs=5e-4)


@pytest.mark.parametrize(
    ("voices", "expected"),
    [(10, 77), (16, 123), (24, 184), (32, 246), (40, 307), (44, 338), (46, 353), (48, 368)],
)
def test_matlab_scale_counts_for_1536_points(voices, expected):
    smallest, largest = morse.default_scale_span(1536)
    scales = morse.octave_scales(smallest, largest, voices)
    assert len(scales) == expected
    assert scales[0] == smallest
    assert np.allclose(scales[1:] / scales[:-1], 2 ** (1 / voices), rtol=1e-14)


def test_matlab_frequency_bounds_for_1000_points():
    scales = morse.octave_scales(*morse.default_scale_span(1000), 10)
    freqs = morse.scale_to_frequency_cycles(scales)
    assert len(scales) == 71
    # The documented bounds are given to 4 and 5 significant digits.
    assert freqs.min() == pytest.approx(0.003392, abs=5e-7)
    assert freqs.max() == pytest.approx(0.43412, abs=5e-6)
    assert (2 * np.pi * scales / morse.peak_frequency()).min() == pytest.approx(2.3035, abs=5e-5)


def test_span_shorter_than_one_voice_is_widened_to_two_scales():
    smallest, largest = morse.default_scale_span(4)
    assert largest < smallest
    scales = morse.octave_scales(smallest, largest, 10)
    assert np.allclose(scales, smallest * np.array([1, 2**0.1]), rtol=1e-15)


def test_log_spaced_scales_include_both_ends():
    scales = morse.log_spaced_scales(0.7, 140.0, 340)
    assert len(scales) == 340
    assert scales[0] == pytest.approx(0.7, rel=1e-15)
    assert scales[-1] == pytest.approx(140.0, rel=1e-15)
    assert np.allclose(np.diff(np.log(scales)), np.log(200) / 339, rtol=1e-10)


def test_frequency_and_scale_are_inverse():
    scales = np.geomspace(0.7, 140, 9)
    back = morse.frequency_cycles_to_scale(morse.scale_to_frequency_cycles(scales))
    assert np.allclose(back, scales, rtol=1e-15)


@pytest.mark.parametrize("bad", [(0.0, 20.0), (3.0, -1.0), (float("nan"), 20.0)])
def test_bad_parameters_raise(bad):
    with pytest.raises(ValueError, match="gamma > 0 and beta > 0"):
        morse.peak_frequency(*bad)


def test_filters_match_high_precision_evaluation():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    n_fft = 96
    scales = np.array([0.68999, 1.7, 6.3, 30.0])
    filters = morse.morse_filters(scales, n_fft)
    assert filters.shape == (4, n_fft // 2 + 1)
    w_psi = (mpmath.mpf(BETA) / GAMMA) ** (mpmath.mpf(1) / GAMMA)
    for j, s in enumerate(scales):
        for k in range(n_fft // 2 + 1):
            w = mpmath.mpf(s) * 2 * mpmath.pi * k / n_fft
            # Another form of the same formula: 2 (w / w_psi)**beta exp(w_psi**gamma - w**gamma).
            exact = 0 if k == 0 else 2 * (w / w_psi) ** BETA * mpmath.exp(w_psi**GAMMA - w**GAMMA)
            # exp(a) turns an absolute rounding error e of its argument into a relative error
            # e; a = beta ln(w / w_psi) + w_psi**gamma - w**gamma, so e is a few ulps of the
            # largest term (up to ~260 here). Allow 4 ulps of their sum.
            terms = 0 if k == 0 else abs(BETA * mpmath.log(w / w_psi)) + w_psi**GAMMA + w**GAMMA
            rel = 4 * np.finfo(float).eps * (1 + float(terms))
            assert filters[j, k] == pytest.approx(float(exact), rel=rel, abs=1e-300)


def test_filters_match_ssqueezepy_gmw():
    ssqueezepy = pytest.importorskip("ssqueezepy")
    n_fft = 3072
    scales = morse.log_spaced_scales(*morse.default_scale_span(1536), 40)
    wavelet = ssqueezepy.Wavelet(("gmw", {"gamma": 3, "beta": 20}), N=n_fft, dtype="float64")
    theirs = np.asarray(wavelet(scale=scales[:, None], N=n_fft, nohalf=False))
    ours = morse.morse_filters(scales, n_fft)
    half = n_fft // 2
    # ssqueezepy halves the Nyquist bin (MATLAB does not) and its negative bins are zero.
    theirs[:, half] *= 2
    assert np.all(theirs[:, half + 1 :] == 0)
    assert np.allclose(ours, theirs[:, : half + 1], rtol=1e-10, atol=1e-300)
